/**
 * How many S3 round trips the package tools wait for one after another, through the latency proxy
 * (test/helpers/network-proxy.ts) in front of s3rver, with the built server over stdio. Counts, not
 * times: the round trip is long (100 ms) next to the CPU a call spends between requests, so a
 * count only grows when the code waits where it need not. The bounds are issue 26's targets;
 * `npm run bench:latency` measures times and every tool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetworkProxy, sequentialRoundTrips, type NetworkProxy } from './helpers/network-proxy.js';
import { call, connectStdio, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const REG = 'rt-registry';
const DATA = 'rt-data';
let s3: LocalS3;
let net: NetworkProxy;
let h: Harness;
let first: string;

beforeAll(async () => {
  s3 = await startS3({ buckets: [REG, DATA] });
  for (let i = 0; i < 100; i += 25) await Promise.all(Array.from({ length: 25 }, (_, k) => s3.put(DATA, `src/f-${String(i + k).padStart(3, '0')}.csv`, `${i + k}\n`)));
  net = await startNetworkProxy(s3.endpoint, { delayMs: 0, connectMs: 0 });
  h = await connectStdio(s3Env(net.endpoint));
  // Loaded and connected before the counting starts.
  const base = await call(h.client, 'package_create', { bucket: REG, name: 'rt/base', entries: [{ logical_key: 'a.txt', text: 'a' }] });
  expect(base.isError, base.text).toBe(false);
  first = base.data.top_hash as string;
  net.set({ delayMs: 100 });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await net?.close();
  await s3?.close();
});

/** The call's result, and the round trips it waited for one after another. */
async function measured(tool: string, args: Record<string, unknown>) {
  const n = net.exchanges.length;
  const r = await call(h.client, tool, args);
  expect(r.isError, r.text).toBe(false);
  while (net.inFlight() > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  return { r, roundTrips: sequentialRoundTrips(net.exchanges.slice(n)), requests: net.exchanges.length - n };
}

describe('round trips of the package tools (100 ms each)', () => {
  it('package_create of 20 text entries: reads, objects, manifest, timestamp pointer, latest', async () => {
    const entries = Array.from({ length: 20 }, (_, i) => ({ logical_key: `docs/${i}.md`, text: `# ${i}` }));
    const { roundTrips, requests } = await measured('package_create', { bucket: REG, name: 'rt/create', entries });
    expect(requests).toBe(27);
    expect(roundTrips).toBeLessThanOrEqual(6);
  });

  it('package_update adding a text entry: within 6', async () => {
    const { roundTrips } = await measured('package_update', { bucket: REG, name: 'rt/base', add: [{ logical_key: 'b.txt', text: 'b' }] });
    expect(roundTrips).toBeLessThanOrEqual(6);
  });

  it('package_create_from_s3 of 100 objects: one request per object, 64 at a time', async () => {
    const { r, roundTrips, requests } = await measured('package_create_from_s3', { bucket: REG, name: 'rt/prefix', source_uri_prefix: `s3://${DATA}/src/` });
    expect(r.data.entries).toBe(100);
    // latest, workflow config, listing; 100 GETs; manifest, timestamp read and write, latest read and write.
    expect(requests).toBe(108);
    expect(roundTrips).toBeLessThanOrEqual(15);
  });

  it('package_browse, package_list and package_diff: within 3', async () => {
    expect((await measured('package_browse', { bucket: REG, name: 'rt/base' })).roundTrips).toBeLessThanOrEqual(3);
    expect((await measured('package_list', { bucket: REG })).roundTrips).toBeLessThanOrEqual(3);
    // A hash prefix (found by a listing) against latest (a pointer): both resolved at once, then both manifests.
    expect((await measured('package_diff', { bucket: REG, name: 'rt/base', from: first.slice(0, 10), to: 'latest' })).roundTrips).toBeLessThanOrEqual(3);
  });
});
