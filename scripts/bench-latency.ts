/**
 * `npm run bench:latency`: every tool that talks to S3, through a proxy that adds a round trip of
 * DELAYS ms (default "20,80") to each S3 request (test/helpers/network-proxy.ts: half each way, one
 * more for a new connection, optionally BANDWIDTH bytes/s shared by all connections). For each
 * call: wall time, S3 requests, and sequential round trips (the longest chain of requests each sent
 * after the previous one was answered), next to the tool's floor: the fewest round trips the call
 * can take, written here with what they are. Also wall time / delay (what a user feels, including
 * the server's CPU on this machine), the CPU of the server and of this process (s3rver and the two
 * proxies: the stand-ins for S3 and the network) during the call, and the server's peak RSS growth.
 *
 * Desktop mode over stdio, one server process; the data is written before the measured calls,
 * without delay. RUNS (default 3) calls per scenario, medians reported; ONLY=<part of a label> runs
 * only the matching scenarios; QUILT_MCP_TEST_ENTRY=<dir>/index.js benches another build (e.g. the
 * previous one, for before/after figures); BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" passes node options
 * to the server (profiling). BENCH_SMOKE=1: one delay of 5 ms, one run, small data.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectStdio, s3Env, type Harness } from '../test/helpers/mcp.js';
import { startS3 } from '../test/helpers/s3.js';
import { sequentialRoundTrips, startNetworkProxy } from '../test/helpers/network-proxy.js';

const SMOKE = process.env.BENCH_SMOKE === '1';
const DELAYS = (process.env.DELAYS ?? (SMOKE ? '5' : '20,80')).split(',').map(Number);
const RUNS = SMOKE ? 1 : Number(process.env.RUNS ?? 3);
const BANDWIDTH = process.env.BANDWIDTH ? Number(process.env.BANDWIDTH) : undefined;
const SMALL = SMOKE ? 20 : 200;
const MANY = SMOKE ? 50 : 1000;
const PACKAGES = SMOKE ? 5 : 30;
const NODE_ARGS = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const REG = 'bench-registry';
const DATA = 'bench-data';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
/** CPU time of a process so far (utime + stime, USER_HZ = 100 on Linux). */
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const rssKiB = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

interface Scenario {
  label: string;
  /** The fewest sequential round trips, and what they are. */
  floor: string;
  /** The call, given the run number (writes use a fresh name per run). */
  run: (h: Harness, i: number) => Promise<unknown>;
}

async function tool(h: Harness, name: string, args: Record<string, unknown>) {
  const r = (await h.client.callTool({ name, arguments: args }, undefined, { timeout: 600_000 })) as CallToolResult;
  if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content)}`);
  return r;
}

const csv = (i: number) => `id,value\n${i},${'x'.repeat(900)}\n`;
const texts = (n: number, run: number) => Array.from({ length: n }, (_, i) => ({ logical_key: `docs/note-${i}.md`, text: `# note ${i} of run ${run}\n` }));

function scenarios(hashes: { a: string; b: string }): Scenario[] {
  return [
    { label: 'bucket_objects_list', floor: '1 (the listing)', run: (h) => tool(h, 'bucket_objects_list', { bucket: DATA, prefix: 'small/', max_keys: 100 }) },
    { label: 'bucket_object_info', floor: '1 (HEAD)', run: (h) => tool(h, 'bucket_object_info', { uri: `s3://${DATA}/small/obj-0000.csv` }) },
    { label: 'bucket_object_text', floor: '1 (GET)', run: (h) => tool(h, 'bucket_object_text', { uri: `s3://${DATA}/small/obj-0000.csv` }) },
    { label: 'bucket_object_fetch', floor: '1 (GET)', run: (h) => tool(h, 'bucket_object_fetch', { uri: `s3://${DATA}/bin/blob.bin` }) },
    { label: 'bucket_object_link', floor: '1 (HEAD; the region is known after the first call)', run: (h) => tool(h, 'bucket_object_link', { uri: `s3://${DATA}/small/obj-0000.csv` }) },
    {
      label: 'bucket_objects_put, 10 objects',
      floor: '1 (all PUTs at once)',
      run: (h, i) => tool(h, 'bucket_objects_put', { bucket: DATA, items: Array.from({ length: 10 }, (_, k) => ({ key: `put/${i}/f-${k}.txt`, text: `file ${k}` })) }),
    },
    { label: 'bucket_list', floor: '1 (ListBuckets)', run: (h) => tool(h, 'bucket_list', {}) },
    { label: 'discover_permissions, 2 buckets', floor: '2 (list and start an upload; HEAD and abort)', run: (h) => tool(h, 'discover_permissions', { buckets: [REG, DATA] }) },
    { label: `package_list, ${PACKAGES} packages`, floor: '2 (the listing; every latest pointer at once)', run: (h) => tool(h, 'package_list', { bucket: REG, prefix: 'pkg/' }) },
    { label: `package_browse, ${SMALL} entries, by name`, floor: '2 (latest pointer; manifest)', run: (h) => tool(h, 'package_browse', { bucket: REG, name: 'bench/browse' }) },
    { label: `package_browse, ${SMALL} entries, by top hash`, floor: '1 (manifest)', run: (h) => tool(h, 'package_browse', { bucket: REG, name: 'bench/browse', hash_or_tag: hashes.a }) },
    { label: 'package_diff, two revisions by name and tag', floor: '2 (both pointers; both manifests)', run: (h) => tool(h, 'package_diff', { bucket: REG, name: 'bench/browse', from: hashes.a.slice(0, 10), to: 'latest' }) },
    {
      label: 'package_create, 20 text entries',
      floor: '5 (latest and workflow config; the 20 objects; manifest; timestamp pointer; latest)',
      run: (h, i) => tool(h, 'package_create', { bucket: REG, name: `bench/create-${i}`, entries: texts(20, i) }),
    },
    {
      label: 'package_update, 1 text entry added',
      floor: '6 (latest and workflow config; base manifest; the object; manifest; timestamp pointer; latest)',
      // A package per run: updates of one package within a second would also measure the search for a free timestamp second.
      run: (h, i) => tool(h, 'package_update', { bucket: REG, name: `bench/update-${i}`, add: [{ logical_key: `added/run-${i}.txt`, text: `run ${i}` }] }),
    },
    {
      label: `package_create_from_s3, ${SMALL} objects`,
      floor: `${Math.ceil(SMALL / 64) + 4} (latest, workflow config and listing; ${Math.ceil(SMALL / 64)} of objects read 64 at a time; manifest; timestamp pointer; latest)`,
      run: (h, i) => tool(h, 'package_create_from_s3', { bucket: REG, name: `bench/small-${i}`, source_uri_prefix: `s3://${DATA}/small/` }),
    },
    {
      label: `package_create_from_s3, ${SMALL} objects with S3 SHA-256 checksums`,
      floor: `${Math.ceil(SMALL / 64) + 4} (as above, the checksums read instead of the bytes)`,
      run: (h, i) => tool(h, 'package_create_from_s3', { bucket: REG, name: `bench/sums-${i}`, source_uri_prefix: `s3://${DATA}/sums/` }),
    },
    {
      label: `package_create_from_s3, ${MANY} objects`,
      floor: `${Math.ceil(MANY / 64) + 4} (latest, workflow config and listing; ${Math.ceil(MANY / 64)} of objects read 64 at a time; manifest; timestamp pointer; latest)`,
      run: (h, i) => tool(h, 'package_create_from_s3', { bucket: REG, name: `bench/many-${i}`, source_uri_prefix: `s3://${DATA}/many/` }),
    },
    {
      label: 'package_delete, a package of 3 revisions',
      floor: '4 (listing; its pointers at once; latest; the timestamp pointers at once)',
      run: (h, i) => tool(h, 'package_delete', { bucket: REG, name: `bench/doomed-${i}` }),
    },
    {
      label: 'search_catalog without a catalog, 2 buckets',
      floor: '2 (the listings; the matching packages\' latest pointers)',
      run: (h) => tool(h, 'search_catalog', { query: 'pkg', buckets: [REG, DATA] }),
    },
    { label: 'search_suggest without a catalog, 2 buckets', floor: '3 (the listings; latest pointers; manifest headers)', run: (h) => tool(h, 'search_suggest', { query: 'pkg', buckets: [REG, DATA] }) },
    { label: 'resources/read a package', floor: '2 (latest pointer; manifest)', run: (h) => h.client.readResource({ uri: `quilt+s3://${REG}#package=bench/browse` }) },
    {
      label: 'resources/read a package entry',
      floor: '3 (latest pointer; manifest; the object)',
      run: (h) => h.client.readResource({ uri: `quilt+s3://${REG}#package=bench/browse&path=obj-0000.csv` }),
    },
    { label: 'resources/list', floor: '3 (ListBuckets; the registry listings; latest pointers)', run: (h) => h.client.listResources() },
  ];
}

async function main() {
  const s3 = await startS3({ buckets: [REG, DATA] });
  const net = await startNetworkProxy(s3.endpoint, { delayMs: 0, connectMs: 0 });
  process.once('SIGINT', () => void s3.close().finally(() => process.exit(130)));
  let h: Harness | undefined;
  try {
    // The data, written straight to the local S3.
    const puts: Array<() => Promise<unknown>> = [];
    for (let i = 0; i < SMALL; i++) puts.push(() => s3.put(DATA, `small/obj-${String(i).padStart(4, '0')}.csv`, csv(i)));
    for (let i = 0; i < SMALL; i++) puts.push(() => s3.putWithChecksum(DATA, `sums/obj-${String(i).padStart(4, '0')}.csv`, Buffer.from(csv(i))));
    for (let i = 0; i < MANY; i++) puts.push(() => s3.put(DATA, `many/part-${i % 10}/obj-${String(i).padStart(4, '0')}.csv`, csv(i)));
    // bucket_object_fetch takes binary objects (text goes to bucket_object_text).
    puts.push(() => s3.put(DATA, 'bin/blob.bin', Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 7919) % 256))));
    // A few at a time: s3rver is one process on a shared machine.
    for (let i = 0; i < puts.length; i += 25) await Promise.all(puts.slice(i, i + 25).map((put) => put()));

    h = await connectStdio(s3Env(net.endpoint, { MCP_LOG_LEVEL: 'error' }), [], NODE_ARGS);
    const pid = h.pid!;
    const made = await tool(h, 'package_create_from_s3', { bucket: REG, name: 'bench/browse', source_uri_prefix: `s3://${DATA}/small/` });
    const a = (made.structuredContent as { top_hash: string }).top_hash;
    const upd = await tool(h, 'package_update', { bucket: REG, name: 'bench/browse', add: [{ logical_key: 'extra.txt', text: 'x' }], remove: ['obj-0001.csv'] });
    const b = (upd.structuredContent as { top_hash: string }).top_hash;
    for (let i = 0; i < RUNS * DELAYS.length; i++) await tool(h, 'package_create', { bucket: REG, name: `bench/update-${i}`, entries: [{ logical_key: 'a.txt', text: 'a' }] });
    const named = '.quilt/named_packages';
    const pointers = (name: string, revisions: number) => [
      ...Array.from({ length: revisions }, (_, r) => s3.put(REG, `${named}/${name}/${1_700_000_000 + r}`, a)),
      s3.put(REG, `${named}/${name}/latest`, a),
    ];
    await Promise.all(Array.from({ length: PACKAGES }, (_, p) => pointers(`pkg/p-${p}`, 3)).flat());
    const runsTotal = RUNS * DELAYS.length;
    await Promise.all(Array.from({ length: runsTotal }, (_, i) => pointers(`bench/doomed-${i}`, 3)).flat());
    // Warm: the SDK loaded, the bucket regions known.
    await tool(h, 'bucket_objects_list', { bucket: DATA, max_keys: 1 });
    await tool(h, 'bucket_object_link', { uri: `s3://${DATA}/small/obj-0000.csv` });

    const all = scenarios({ a, b }).filter((s) => !process.env.ONLY || s.label.includes(process.env.ONLY));
    console.log(`quilt-mcp against S3 with added latency (node ${process.version}; server ${process.env.QUILT_MCP_TEST_ENTRY ?? 'dist/index.js'}; ${RUNS} run(s), medians${BANDWIDTH ? `; link ${BANDWIDTH} B/s` : ''})`);
    let run = 0;
    for (const delayMs of DELAYS) {
      net.set({ delayMs, bytesPerSecond: BANDWIDTH });
      console.log(`\n## ${delayMs} ms per S3 request\n`);
      console.log('| tool | wall time | S3 requests | sequential round trips | wall / delay | server CPU | stand-ins\' CPU | peak RSS growth | the floor |');
      console.log('|---|---|---|---|---|---|---|---|---|');
      const base = run;
      for (const s of all) {
        const rows: { ms: number; requests: number; chain: number; growth: number; cpu: number; standIns: number }[] = [];
        for (let i = 0; i < RUNS; i++) {
          const n = net.exchanges.length;
          const before = rssKiB(pid, 'VmRSS');
          writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
          const cpu = cpuMs(pid);
          const own = process.cpuUsage();
          const t = performance.now();
          await s.run(h, base + i);
          const ms = performance.now() - t;
          // The last answer may still be on its way out of the proxy.
          while (net.inFlight() > 0) await new Promise((r) => setTimeout(r, 5));
          const calls = net.exchanges.slice(n);
          if (process.env.BENCH_DEBUG) console.error(s.label, calls.map((c) => `${c.method} ${c.url.split('?')[0]} ${c.status}`).join('\n  '));
          rows.push({ ms, requests: calls.length, chain: sequentialRoundTrips(calls), growth: (rssKiB(pid, 'VmHWM') - before) / 1024, cpu: cpuMs(pid) - cpu, standIns: ((u) => (u.user + u.system) / 1000)(process.cpuUsage(own)) });
        }
        const ms = median(rows.map((r) => r.ms));
        const cell = (xs: number[]) => (Math.min(...xs) === Math.max(...xs) ? String(xs[0]) : `${Math.min(...xs)}-${Math.max(...xs)}`);
        console.log(
          `| ${s.label} | ${ms.toFixed(0)} ms | ${cell(rows.map((r) => r.requests))} | ${cell(rows.map((r) => r.chain))} | ${delayMs ? (ms / delayMs).toFixed(1) : '-'} | ${median(rows.map((r) => r.cpu))} ms | ${median(rows.map((r) => r.standIns)).toFixed(0)} ms | +${Math.max(...rows.map((r) => r.growth)).toFixed(1)} MiB | ${s.floor} |`,
        );
      }
      run += RUNS;
    }
  } finally {
    await h?.close();
    await net.close();
    await s3.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
