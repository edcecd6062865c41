/**
 * `npm run bench:packages`: package tools on large manifests, and checksum throughput.
 * - browse, diff and update of ENTRIES-entry manifests (default 100,000), then browse and diff of
 *   BIG-entry manifests (default 1,000,000; BIG=0 skips), through the built server (stdio, s3rver
 *   writing to a temp directory that is removed at the end), each with its time and the server's
 *   peak RSS growth during that call (VmHWM reset through /proc/<pid>/clear_refs before each call),
 *   next to the target;
 * - sha2-256-chunked against plain node:crypto sha256 over the same bytes, in memory.
 * RUNS (default 5), UPDATE_RUNS (3) and BIG_RUNS (3) tune the repeats; ONLY=<part of a label> runs
 * only the matching scenarios. QUILT_MCP_TEST_ENTRY=<dir>/index.js benches another build
 * (e.g. the previous one, for before/after figures). BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"
 * passes node options to the server processes (profiling).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { chunkedHashOf, chunkedHashOfStream } from '../src/core/chunked-hash.js';
import { entryLine, headerLine, TopHasher, type ManifestEntry, type ManifestHeader } from '../src/packages/manifest.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { call, connectStdio, s3Env } from '../test/helpers/mcp.js';
import { startS3 } from '../test/helpers/s3.js';

const ENTRIES = Number(process.env.ENTRIES ?? 100_000);
const BIG = Number(process.env.BIG ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 5);
const BUCKET = 'bench-registry';
const NODE_ARGS = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

const status = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
/** Minor page faults so far (field 10 of /proc/<pid>/stat): first touches of fresh memory, slow in VMs. */
const minorFaults = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[7]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const keyOf = (i: number) => `group-${String(i % 100).padStart(3, '0')}/sub-${i % 7}/file-${String(i).padStart(6, '0')}.csv`;

/** Entries of a synthetic package, generated straight in walk order (so nothing is sorted or held). */
function* entriesOf(n: number, salt: string): Generator<ManifestEntry> {
  // Keys are group-GGG/sub-S/file-IIIIII.csv with G = i % 100, S = i % 7: walk order is by G, then
  // S, then i (zero-padded), so each (G, S) visits its i in increasing order.
  for (let g = 0; g < 100; g++) {
    for (let s = 0; s < 7; s++) {
      let i = g;
      while (i < n && i % 7 !== s) i += 100;
      for (; i < n; i += 700) {
        const key = keyOf(i);
        const mark = i % 1000 === 0 ? salt : '';
        yield {
          logical_key: key,
          physical_keys: [`s3://bench-data/${key}?versionId=v${i}${mark}`],
          size: 1000 + (i % 5000),
          hash: { type: 'sha2-256-chunked', value: createHash('sha256').update(`${key}${mark}`).digest('base64') },
          meta: { user_meta: { index: i, label: `sample ${i}` } },
        };
      }
    }
  }
}

/** Writes an n-entry manifest and its `latest` pointer; the body is built in ~1 MiB pieces. */
async function put(s3: Awaited<ReturnType<typeof startS3>>, name: string, n: number, salt: string) {
  const header: ManifestHeader = { version: 'v0', message: `bench ${salt}`, user_meta: { entries: n } };
  const hasher = new TopHasher(header);
  const pieces: Buffer[] = [];
  let text = headerLine(header);
  for (const e of entriesOf(n, salt)) {
    hasher.add(e); // also checks that entriesOf keeps walk order
    text += entryLine(e);
    if (text.length >= 1 << 20) {
      pieces.push(Buffer.from(text));
      text = '';
    }
  }
  pieces.push(Buffer.from(text));
  const body = Buffer.concat(pieces);
  pieces.length = 0;
  const hash = hasher.digest();
  await s3.put(BUCKET, `.quilt/packages/${hash}`, body);
  await s3.put(BUCKET, `.quilt/named_packages/${name}/latest`, hash);
  return { hash, bytes: body.length };
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

type Args = Record<string, unknown> | ((run: number) => Record<string, unknown>);

async function main() {
  const s3 = await startS3({ buckets: [BUCKET] });
  // s3rver writes to a temp directory; remove it on Ctrl-C too.
  process.once('SIGINT', () => void s3.close().finally(() => process.exit(130)));
  /**
   * Median time of `runs` calls in a fresh server (so one call's heap growth does not hide the
   * next one's), and the largest peak RSS growth of a call over the RSS before it.
   */
  const timed = async (tool: string, args: Args, runs = RUNS) => {
    const h = await connectStdio(s3Env(s3.endpoint, { MCP_LOG_LEVEL: 'error' }), [], NODE_ARGS);
    try {
      const pid = h.pid!;
      await call(h.client, 'auth_status');
      const ms: number[] = [];
      const growths: number[] = [];
      const faults: number[] = [];
      for (let i = 0; i < runs; i++) {
        const before = status(pid, 'VmRSS');
        writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
        const flt = minorFaults(pid);
        const t = performance.now();
        const r = (await h.client.callTool({ name: tool, arguments: typeof args === 'function' ? args(i) : args }, undefined, { timeout: 600_000 })) as CallToolResult;
        if (r.isError) throw new Error(JSON.stringify(r.content));
        ms.push(performance.now() - t);
        growths.push(status(pid, 'VmHWM') - before);
        faults.push(minorFaults(pid) - flt);
      }
      return { ms: median(ms), growth: Math.max(...growths), growths, faults: median(faults) };
    } finally {
      await h.close();
    }
  };
  /** Runs and prints one scenario, unless ONLY (a piece of its label) names others. */
  const scenario = async (what: string, tool: string, args: Args, runs = RUNS, target = '') => {
    if (process.env.ONLY && !what.includes(process.env.ONLY)) return;
    report(what, await timed(tool, args, runs), target);
  };
  const report = (what: string, r: { ms: number; growth: number; growths: number[]; faults: number }, target = '') =>
    console.log(
      `${what}: median ${r.ms.toFixed(0)} ms; peak RSS +${r.growth.toFixed(1)} MiB (per call: ${r.growths.map((g) => g.toFixed(0)).join(', ')}); ${r.faults} minor page faults${target ? `  [target ${target}]` : ''}`,
    );
  try {
    const a = await put(s3, 'bench/big', ENTRIES, 'a');
    const b = await put(s3, 'bench/big2', ENTRIES, 'b');
    console.log(`manifest: ${ENTRIES} entries, ${mib(a.bytes)}`);
    await scenario('package_browse top level', 'package_browse', { bucket: BUCKET, name: 'bench/big', limit: 100 });
    await scenario('package_browse recursive page of 1000', 'package_browse', { bucket: BUCKET, name: 'bench/big', path: 'group-042/', recursive: true, limit: 1000 });
    await scenario(`package_diff of two ${ENTRIES}-entry revisions`, 'package_diff', { bucket: BUCKET, name: 'bench/big', from: a.hash, to: b.hash });
    // Revisions on top of the package, each adding one file, replacing one and removing a folder.
    const update = (i: number) => ({
      bucket: BUCKET,
      name: 'bench/big',
      add: [
        { logical_key: `added-${i}.txt`, text: 'x' },
        { logical_key: keyOf(1234 + i), text: 'y' },
      ],
      remove: [`group-050/sub-${i % 7}/`],
    });
    await scenario(`package_update of a ${ENTRIES}-entry package (add, replace, remove a folder)`, 'package_update', update, Number(process.env.UPDATE_RUNS ?? 3), '< 1000 ms, < +100 MiB');

    if (BIG > 0) {
      const c = await put(s3, 'bench/huge', BIG, 'a');
      const d = await put(s3, 'bench/huge2', BIG, 'b');
      console.log(`manifest: ${BIG} entries, ${mib(c.bytes)}`);
      const runs = Number(process.env.BIG_RUNS ?? Math.min(RUNS, 3));
      await scenario(`package_browse top level of ${BIG} entries`, 'package_browse', { bucket: BUCKET, name: 'bench/huge', limit: 100 }, runs, '< +150 MiB');
      await scenario(`package_browse recursive page of 1000 under group-042/ of ${BIG} entries`, 'package_browse', { bucket: BUCKET, name: 'bench/huge', path: 'group-042/', recursive: true, limit: 1000 }, runs, '< +150 MiB');
      await scenario(`package_diff of two ${BIG}-entry revisions`, 'package_diff', { bucket: BUCKET, name: 'bench/huge', from: c.hash, to: d.hash }, runs, 'bounded (not proportional to entries)');
    }
  } finally {
    await s3.close();
  }

  const data = Buffer.alloc(512 * 1024 * 1024, 7);
  for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
  const rate = (fn: () => void) => {
    const ms: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      fn();
      ms.push(performance.now() - t);
    }
    return data.length / 1024 / 1024 / (median(ms) / 1000);
  };
  const plain = rate(() => createHash('sha256').update(data).digest());
  const chunkedRate = rate(() => chunkedHashOf(data));
  console.log(`checksum over 512 MiB in memory: node:crypto sha256 ${plain.toFixed(0)} MiB/s, sha2-256-chunked ${chunkedRate.toFixed(0)} MiB/s`);
  // As S3 delivers it: 64 KiB pieces through the incremental hasher.
  async function* pieces() {
    for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
  }
  let t = performance.now();
  await chunkedHashOfStream(pieces(), data.length);
  const streamed = data.length / 1024 / 1024 / ((performance.now() - t) / 1000);
  t = performance.now();
  const sha = createHash('sha256');
  for await (const p of pieces()) sha.update(p);
  sha.digest();
  const plainStreamed = data.length / 1024 / 1024 / ((performance.now() - t) / 1000);
  console.log(`checksum over 512 MiB in 64 KiB pieces: node:crypto sha256 ${plainStreamed.toFixed(0)} MiB/s, sha2-256-chunked ${streamed.toFixed(0)} MiB/s`);
}

main().catch((err: unknown) => {
  console.error('bench failed:', err);
  process.exit(1);
});
