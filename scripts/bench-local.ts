/**
 * `npm run bench:local`: local data on the desktop (issue 22), through the built server over stdio
 * (no AWS: quilt3's local registry in a temp data directory), on the same machine and bytes:
 * 1. hashing a folder: package_create of a folder into the local registry, against plain SHA-256
 *    of the same files (node:crypto in 1 MiB reads, and `sha256sum` when there is one), warm cache;
 * 2. a folder of 10,000 small files packaged, with the server's peak RSS growth during the call;
 * 3. package_install of 1 GiB (8 files of 128 MiB) against `cp -r` of the same files.
 * Targets: 1 at 0.8x or better of plain SHA-256; 2 under 100 MiB; 3 at 0.5x or better of cp.
 * GIB=<n> scales the sizes; RUNS (default 3) repeats each, the median is reported. Linux (/proc).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, connectStdio, isolatedEnv } from '../test/helpers/mcp.js';
import { SMOKE, fmt } from './bench-lib.js';

const MiB = 1024 * 1024;
const SCALE = SMOKE ? 1 / 64 : Number(process.env.GIB ?? 1);
const RUNS = SMOKE ? 1 : Number(process.env.RUNS ?? 3);
const FILES_10K = SMOKE ? 200 : 10_000;

const status = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function writeRandom(file: string, size: number): void {
  // Distinct bytes per file, made fast (a random block repeated with the file's name mixed in).
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 32) createHash('sha256').update(`${file}:${i}`).digest().copy(block, i);
  const fd = openSync(file, 'w');
  try {
    for (let done = 0; done < size; done += block.length) writeFileSync(fd, block.subarray(0, Math.min(block.length, size - done)));
  } finally {
    closeSync(fd);
  }
}

function filesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesOf(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Plain SHA-256 of each file, 1 MiB reads into one buffer (what the hasher does, minus the chunking). */
function plainSha256(files: string[]): void {
  const buf = Buffer.allocUnsafe(MiB);
  for (const f of files) {
    const h = createHash('sha256');
    const fd = openSync(f, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    h.digest();
  }
}

const timed = (fn: () => unknown) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

async function main() {
  const work = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'bench-local-')));
  const env = isolatedEnv({ QUILT_MCP_ROOTS: work, MCP_LOG_LEVEL: 'warning' });
  const h = await connectStdio(env);
  const pid = h.pid!;
  const hasSha256sum = spawnSync('sha256sum', ['--version']).status === 0;
  console.log(`bench:local on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}${SMOKE ? ' (smoke: small sizes, figures mean nothing)' : ''}`);
  try {
    // 1. Hashing a folder.
    const folder = path.join(work, 'hash');
    const fileSize = Math.max(1, Math.round(64 * MiB * SCALE));
    mkdirSync(folder);
    for (let i = 0; i < 16; i++) writeRandom(path.join(folder, `f${String(i).padStart(2, '0')}.bin`), fileSize);
    const files = filesOf(folder);
    const bytes = files.length * fileSize;
    plainSha256(files); // warm the page cache
    const plain = median(Array.from({ length: RUNS }, () => timed(() => plainSha256(files))));
    const cli = hasSha256sum ? median(Array.from({ length: RUNS }, () => timed(() => execFileSync('sha256sum', files, { maxBuffer: 64 * MiB })))) : undefined;
    const ours: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const r = await call(h.client, 'package_create', { bucket: 'local', name: `bench/hash${i}`, source_uri_prefix: folder });
      ours.push(performance.now() - t);
      if (r.isError) throw new Error(r.text);
    }
    const pc = median(ours);
    const rate = (ms: number) => `${((bytes / MiB / ms) * 1000).toFixed(0)} MiB/s`;
    console.log(`\n1. Hashing a folder: ${files.length} files, ${(bytes / MiB).toFixed(0)} MiB (warm cache), median of ${RUNS}`);
    console.log(`   plain SHA-256 (node:crypto, 1 MiB reads)  ${fmt(plain)}  ${rate(plain)}`);
    if (cli !== undefined) console.log(`   sha256sum                                 ${fmt(cli)}  ${rate(cli)}`);
    console.log(`   package_create of the folder (local)      ${fmt(pc)}  ${rate(pc)}  = ${(plain / pc).toFixed(2)}x plain SHA-256 (target 0.8x or better)`);

    // 2. 10,000 files.
    const many = path.join(work, 'many');
    for (let d = 0; d < 100; d++) {
      mkdirSync(path.join(many, `d${d}`), { recursive: true });
      for (let i = 0; i < FILES_10K / 100; i++) writeFileSync(path.join(many, `d${d}`, `f${i}.csv`), `id,value\n${d},${i}\n`.repeat(20));
    }
    await call(h.client, 'package_list', { bucket: 'local' }); // warm
    const before = status(pid, 'VmRSS');
    writeFileSync(`/proc/${pid}/clear_refs`, '5'); // VmHWM := current RSS
    const t2 = performance.now();
    const r2 = await call(h.client, 'package_create', { bucket: 'local', name: 'bench/many', source_uri_prefix: many, max_objects: 100_000 });
    const ms2 = performance.now() - t2;
    if (r2.isError) throw new Error(r2.text);
    const growth = status(pid, 'VmHWM') - before;
    console.log(`\n2. A folder of ${FILES_10K.toLocaleString('en-US')} files into the local registry: ${fmt(ms2)}; server RSS ${before.toFixed(0)} MiB before, peak growth ${growth.toFixed(1)} MiB (target under 100 MiB)`);

    // 3. Install 1 GiB against cp.
    const big = path.join(work, 'big');
    mkdirSync(big);
    const bigSize = Math.max(1, Math.round(128 * MiB * SCALE));
    for (let i = 0; i < 8; i++) writeRandom(path.join(big, `part${i}.bin`), bigSize);
    const made = await call(h.client, 'package_create', { bucket: 'local', name: 'bench/big', source_uri_prefix: big });
    if (made.isError) throw new Error(made.text);
    const cps: number[] = [];
    const installs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const cpDest = path.join(work, `cp${i}`);
      cps.push(timed(() => execFileSync('cp', ['-r', big, cpDest])));
      rmSync(cpDest, { recursive: true, force: true });
      const dest = path.join(work, `inst${i}`);
      const t = performance.now();
      const r = await call(h.client, 'package_install', { bucket: 'local', name: 'bench/big', dest });
      installs.push(performance.now() - t);
      if (r.isError) throw new Error(r.text);
      rmSync(dest, { recursive: true, force: true });
    }
    const cp = median(cps);
    const inst = median(installs);
    const total = 8 * bigSize;
    const rate3 = (ms: number) => `${((total / MiB / ms) * 1000).toFixed(0)} MiB/s`;
    console.log(`\n3. Install of ${(total / MiB).toFixed(0)} MiB (8 files), median of ${RUNS}`);
    console.log(`   cp -r           ${fmt(cp)}  ${rate3(cp)}`);
    console.log(`   package_install ${fmt(inst)}  ${rate3(inst)}  = ${(cp / inst).toFixed(2)}x cp (target 0.5x or better; it also hashes every byte)`);
  } finally {
    await h.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error('bench:local failed:', err);
  process.exit(1);
});
