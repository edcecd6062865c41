/**
 * `npm run bench:packages`: package tools on large manifests, and checksum throughput.
 * - browse and diff of 100,000-entry manifests through the built server (stdio, s3rver), with the
 *   server's peak RSS (VmHWM) before and after;
 * - sha2-256-chunked against plain node:crypto sha256 over the same bytes, in memory.
 * ENTRIES (default 100000) and RUNS (default 5) tune it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chunkedHashOf, chunkedHashOfStream } from '../src/packages/chunked-hash.js';
import { manifestLines, topHash, type ManifestEntry, type ManifestHeader } from '../src/packages/manifest.js';
import { call, connectStdio, s3Env } from '../test/helpers/mcp.js';
import { startS3 } from '../test/helpers/s3.js';

const ENTRIES = Number(process.env.ENTRIES ?? 100_000);
const RUNS = Number(process.env.RUNS ?? 5);
const BUCKET = 'bench-registry';

const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function manifest(n: number, salt: string): { header: ManifestHeader; entries: ManifestEntry[] } {
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < n; i++) {
    const dir = `group-${String(i % 100).padStart(3, '0')}/sub-${String(i % 7)}`;
    const key = `${dir}/file-${String(i).padStart(6, '0')}.csv`;
    entries.push({
      logical_key: key,
      physical_keys: [`s3://bench-data/${key}?versionId=v${i}${i % 1000 === 0 ? salt : ''}`],
      size: 1000 + (i % 5000),
      hash: { type: 'sha2-256-chunked', value: createHash('sha256').update(`${key}${i % 1000 === 0 ? salt : ''}`).digest('base64') },
      meta: { user_meta: { index: i, label: `sample ${i}` } },
    });
  }
  return { header: { version: 'v0', message: `bench ${salt}`, user_meta: { entries: n } }, entries };
}

async function put(s3: Awaited<ReturnType<typeof startS3>>, name: string, salt: string) {
  const { header, entries } = manifest(ENTRIES, salt);
  const hash = topHash(header, entries);
  const body = Buffer.from(Array.from(manifestLines(header, entries)).join(''));
  await s3.put(BUCKET, `.quilt/packages/${hash}`, body);
  await s3.put(BUCKET, `.quilt/named_packages/${name}/latest`, hash);
  return { hash, bytes: body.length };
}

async function main() {
  const s3 = await startS3({ buckets: [BUCKET] });
  const a = await put(s3, 'bench/big', 'a');
  const b = await put(s3, 'bench/big2', 'b');
  console.log(`manifest: ${ENTRIES} entries, ${(a.bytes / 1024 / 1024).toFixed(1)} MiB`);
  const h = await connectStdio(s3Env(s3.endpoint, { MCP_LOG_LEVEL: 'error' }));
  try {
    const pid = h.pid!;
    await call(h.client, 'auth_status');
    const base = peakRss(pid);
    const timed = async (tool: string, args: Record<string, unknown>, runs = RUNS) => {
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        const r = await call(h.client, tool, args);
        if (r.isError) throw new Error(r.text);
        ms.push(performance.now() - t);
      }
      return ms;
    };
    const browse = await timed('package_browse', { bucket: BUCKET, name: 'bench/big', limit: 100 });
    const afterBrowse = peakRss(pid);
    const deep = await timed('package_browse', { bucket: BUCKET, name: 'bench/big', path: 'group-042/', recursive: true, limit: 1000 });
    const diff = await timed('package_diff', { bucket: BUCKET, name: 'bench/big', from: a.hash, to: b.hash });
    const afterDiff = peakRss(pid);
    // One revision on top of the 100k-entry package: loads, re-hashes and rewrites every entry.
    const update = await timed('package_update', { bucket: BUCKET, name: 'bench/big', add: [{ logical_key: 'added.txt', text: 'x' }] }, 1);
    const afterUpdate = peakRss(pid);
    console.log(`server peak RSS after start: ${base.toFixed(1)} MiB`);
    console.log(`package_browse top level: median ${median(browse).toFixed(0)} ms; peak RSS ${afterBrowse.toFixed(1)} MiB (+${(afterBrowse - base).toFixed(1)})`);
    console.log(`package_browse recursive page of 1000: median ${median(deep).toFixed(0)} ms`);
    console.log(`package_update adding one file to ${ENTRIES} entries: ${median(update).toFixed(0)} ms; peak RSS ${afterUpdate.toFixed(1)} MiB (+${(afterUpdate - base).toFixed(1)})`);
    console.log(`package_diff of two ${ENTRIES}-entry revisions: median ${median(diff).toFixed(0)} ms; peak RSS ${afterDiff.toFixed(1)} MiB (+${(afterDiff - base).toFixed(1)})`);
  } finally {
    await h.close();
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
