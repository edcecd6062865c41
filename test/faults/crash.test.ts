/**
 * Crash consistency (issue 23): the server is killed with SIGKILL at a random point of a package
 * write (package_create, package_update, package_delete, and package_create in copy mode), then a
 * checker walks the registry (test/helpers/registry-check.ts): every pointer names an existing
 * manifest, `latest` names a revision that has its timestamp pointer and is either the one before
 * the write or the one the write was making, and every object a pointed-to manifest names in the
 * registry exists. Then the same call, sent again to a server that is up, completes.
 *
 * The random point is a request: the k-th S3 request of the write (k drawn from 1..n, n the
 * requests of the same write without a crash), so every stage of the commit is hit, from the
 * first read to `latest`. The process dies as that request reaches the network proxy in front of
 * S3, and the request either goes on to S3 or is lost with the process, as the seed draws: what
 * a process killed mid-request leaves is up to S3. Each trial prints its seed; CRASH_TRIALS sets
 * how many per write (default 3), CRASH_SEED replays one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connectStdio, s3Env, type Harness } from '../helpers/mcp.js';
import { startNetworkProxy, type NetworkProxy } from '../helpers/network-proxy.js';
import { checkRegistry, s3Registry } from '../helpers/registry-check.js';
import { startS3, type LocalS3 } from '../helpers/s3.js';
import { completedAgain, random, trialOutcome } from '../helpers/seeded.js';

const BUCKET = 'crash';
const TRIALS_PER_WRITE = Number(process.env.CRASH_TRIALS ?? 3);
const ONLY_SEED = process.env.CRASH_SEED === undefined ? undefined : Number(process.env.CRASH_SEED);


interface Write {
  id: string;
  tool: string;
  /** The call for a package of this name. */
  args(name: string): Record<string, unknown>;
  /** The package's state before the write, made on the healthy server. */
  prepare?(name: string): Promise<void>;
}

const texts = (n: number) => Array.from({ length: n }, (_, i) => ({ logical_key: `f${String(i).padStart(2, '0')}.txt`, text: `line ${i}\n` }));

const WRITES: Write[] = [
  { id: 'create', tool: 'package_create', args: (name) => ({ bucket: BUCKET, name, entries: texts(12), message: 'crash test' }) },
  {
    id: 'create-copy',
    tool: 'package_create',
    args: (name) => ({
      bucket: BUCKET,
      name,
      copy: true,
      message: 'copied',
      entries: [0, 1, 2, 3, 4].map((i) => ({ logical_key: `src-${i}.csv`, s3_uri: `s3://${BUCKET}/sources/s${i}.csv` })),
    }),
  },
  {
    id: 'update',
    tool: 'package_update',
    args: (name) => ({ bucket: BUCKET, name, message: 'second', add: texts(6).map((e) => ({ ...e, logical_key: `new/${e.logical_key}` })), meta: { stage: 2 } }),
    prepare: async (name) => void (await must(healthy, 'package_create', { bucket: BUCKET, name, entries: texts(4), message: 'first' })),
  },
  {
    id: 'delete',
    tool: 'package_delete',
    args: (name) => ({ bucket: BUCKET, name }),
    prepare: async (name) => {
      await must(healthy, 'package_create', { bucket: BUCKET, name, entries: texts(3), message: 'first' });
      await must(healthy, 'package_update', { bucket: BUCKET, name, add: [{ logical_key: 'more.txt', text: 'more\n' }], message: 'second' });
    },
  },
];

let s3: LocalS3;
let net: NetworkProxy;
/** A server that is never killed: prepares state and sends the calls again after a crash. */
let healthy: Harness;
/** Per write: S3 requests without a crash, and the revision it makes (null: none). */
const clean = new Map<string, { requests: number; hash: string | null }>();
const log: string[] = [];

async function must(h: Harness, tool: string, args: Record<string, unknown>) {
  const r = await call(h.client, tool, args);
  if (r.isError) throw new Error(`${tool} failed: ${r.text}`);
  return r;
}

const latestOf = async (name: string) => (await s3Registry(s3.client, BUCKET).readPointer(name, 'latest')) ?? null;

beforeAll(async () => {
  s3 = await startS3({ buckets: [BUCKET] });
  for (let i = 0; i < 5; i++) await s3.put(BUCKET, `sources/s${i}.csv`, `id,value\n${i},${i * 3}\n`, 'text/csv');
  net = await startNetworkProxy(s3.endpoint, { delayMs: 0, connectMs: 0 });
  healthy = await connectStdio(s3Env(s3.endpoint));
  // Each write once, through the proxy, without a crash: how many requests it sends, what it makes.
  for (const w of WRITES) {
    const name = `clean/${w.id}`;
    await w.prepare?.(name);
    const victim = await connectStdio(s3Env(net.endpoint));
    const before = net.exchanges.length;
    const r = await must(victim, w.tool, w.args(name));
    await victim.close();
    clean.set(w.id, { requests: net.exchanges.length - before, hash: w.tool === 'package_delete' ? null : (r.data.top_hash as string) });
  }
}, 120_000);

afterAll(async () => {
  if (log.length) console.log(`Crash trials (SIGKILL at the k-th S3 request of a write; replay one with CRASH_SEED=<seed>):\n${log.join('\n')}`);
  await healthy?.close();
  await net?.close();
  await s3?.close();
});

/** One trial: prepare, start a server, kill it at the drawn request, check, send the call again elsewhere, check. */
async function trial(w: Write, seed: number): Promise<string[]> {
  const rand = random(seed);
  const { requests, hash } = clean.get(w.id)!;
  const k = 1 + Math.floor(rand() * requests);
  const reachesS3 = rand() < 0.5;
  const name = `t${seed}/${w.id}`;
  await w.prepare?.(name);
  const before = await latestOf(name);
  const victim = await connectStdio(s3Env(net.endpoint));
  let seen = 0;
  let killed = false;
  net.set(() => {
    seen++;
    if (seen !== k || killed) return { delayMs: 0, connectMs: 0 };
    killed = true;
    process.kill(victim.pid!, 'SIGKILL');
    return { delayMs: 0, connectMs: 0, fault: reachesS3 ? undefined : { kind: 'reset-before' } };
  });
  const outcome = await call(victim.client, w.tool, w.args(name)).then(
    (r) => (r.isError ? `error: ${r.text.slice(0, 120)}` : 'answered'),
    () => 'killed',
  );
  await victim.close().catch(() => undefined);
  // What the killed process had sent finishes (or not) before the registry is read.
  for (const t = Date.now(); net.inFlight() > 0 && Date.now() - t < 10_000; ) await new Promise((r) => setTimeout(r, 20));
  net.set({ delayMs: 0, connectMs: 0 });

  const problems: string[] = [];
  const registry = s3Registry(s3.client, BUCKET);
  const after = await latestOf(name);
  problems.push(...(await checkRegistry(registry, { names: [name], expect: [{ name, latest: [before, hash] }] })));
  // The same call again, on a server that is up: it completes.
  const again = await call(healthy.client, w.tool, w.args(name));
  if (!completedAgain(w.tool, again, hash)) problems.push(`the call sent again failed: ${again.text.slice(0, 300)}`);
  problems.push(...(await checkRegistry(registry, { names: [name], expect: [{ name, latest: [hash] }] })));
  log.push(
    `seed=${String(seed).padEnd(11)} ${w.id.padEnd(12)} killed at request ${String(k).padStart(2)}/${requests} (${reachesS3 ? 'it reached S3' : 'lost with the process'}): ${outcome}; ${trialOutcome({ before, after, made: hash }, again, problems)}`,
  );
  return problems.map((p) => `seed ${seed} (${w.id}, request ${k}/${requests}, ${reachesS3 ? 'reached S3' : 'lost'}): ${p}`);
}

describe('crash consistency: SIGKILL during package writes, then a walk of the registry', () => {
  for (const w of WRITES) {
    it(`${w.id}: every crash leaves a consistent registry, and the call sent again completes`, async () => {
      // Seeds from the time (printed), unless one is replayed.
      const first = ONLY_SEED ?? (Date.now() % 1_000_000_000);
      const seeds = ONLY_SEED !== undefined ? [ONLY_SEED] : Array.from({ length: TRIALS_PER_WRITE }, (_, i) => first + i);
      const problems: string[] = [];
      for (const seed of seeds) problems.push(...(await trial(w, seed)));
      expect(problems).toEqual([]);
    }, 60_000 + TRIALS_PER_WRITE * 20_000);
  }
});
