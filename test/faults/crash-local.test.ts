/**
 * Crash consistency of a local registry (`file:///dir`, desktop mode): the server is killed with
 * SIGKILL at a random moment of package_create (text entries, and a folder of local files),
 * package_update and package_delete, then the registry checker (test/helpers/registry-check.ts)
 * walks the folder: every pointer names an existing manifest, `latest` has its timestamp pointer
 * and is the revision before or the one being made, every file of the registry's own that a
 * manifest names exists. Then the call sent again to a server that is up completes.
 *
 * A local write has no requests to count, so the random point is a time: a fraction (drawn from
 * the seed) of how long the same write takes without a crash, on a server already warm. Each
 * trial prints its seed; CRASH_TRIALS sets how many per write (default 3), CRASH_SEED replays one
 * (the moment of a replay is the same fraction of that run's clean time, not the same instruction).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connectStdio, isolatedEnv, type Harness } from '../helpers/mcp.js';
import { checkRegistry, localRegistry } from '../helpers/registry-check.js';
import { completedAgain, random, trialOutcome } from '../helpers/seeded.js';

const TRIALS_PER_WRITE = Number(process.env.CRASH_TRIALS ?? 3);
const ONLY_SEED = process.env.CRASH_SEED === undefined ? undefined : Number(process.env.CRASH_SEED);

const root = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-crash-local-'));
const regDir = path.join(root, 'registry');
const srcDir = path.join(root, 'source');
const REG = pathToFileURL(regDir).href;
const env = () => isolatedEnv({ QUILT_MCP_ROOTS: root });

const texts = (n: number, tag = 'line') => Array.from({ length: n }, (_, i) => ({ logical_key: `f${String(i).padStart(3, '0')}.txt`, text: `${tag} ${i}\n` }));

interface Write {
  id: string;
  tool: string;
  args(name: string): Record<string, unknown>;
  prepare?(name: string): Promise<void>;
}

const WRITES: Write[] = [
  { id: 'create', tool: 'package_create', args: (name) => ({ bucket: REG, name, entries: texts(150), message: 'crash test' }) },
  { id: 'create-folder', tool: 'package_create', args: (name) => ({ bucket: REG, name, source_uri_prefix: pathToFileURL(srcDir).href + '/', message: 'a folder' }) },
  {
    id: 'update',
    tool: 'package_update',
    args: (name) => ({ bucket: REG, name, message: 'second', add: texts(100, 'added').map((e) => ({ ...e, logical_key: `new/${e.logical_key}` })), meta: { stage: 2 } }),
    prepare: async (name) => void (await must('package_create', { bucket: REG, name, entries: texts(20), message: 'first' })),
  },
  {
    id: 'delete',
    tool: 'package_delete',
    args: (name) => ({ bucket: REG, name }),
    prepare: async (name) => {
      await must('package_create', { bucket: REG, name, entries: texts(3), message: 'first' });
      await must('package_update', { bucket: REG, name, add: [{ logical_key: 'more.txt', text: 'more\n' }], message: 'second' });
    },
  },
];

let healthy: Harness;
/** Per write: how long it takes on a warm server, and the revision it makes (null: none). */
const clean = new Map<string, { ms: number; hash: string | null }>();
const log: string[] = [];

async function must(tool: string, args: Record<string, unknown>) {
  const r = await call(healthy.client, tool, args);
  if (r.isError) throw new Error(`${tool} failed: ${r.text}`);
  return r;
}

const latestOf = async (name: string) => (await localRegistry(regDir).readPointer(name, 'latest')) ?? null;

/** A server with its modules loaded and the registry opened once, so that the timed write is the write. */
async function warmServer(): Promise<Harness> {
  const h = await connectStdio(env());
  await call(h.client, 'package_list', { bucket: REG });
  return h;
}

beforeAll(async () => {
  mkdirSync(regDir, { recursive: true });
  mkdirSync(path.join(srcDir, 'sub'), { recursive: true });
  for (let i = 0; i < 60; i++) writeFileSync(path.join(srcDir, i % 3 ? '' : 'sub', `s${i}.csv`), `id,value\n${i},${i * i}\n`);
  healthy = await connectStdio(env());
  for (const w of WRITES) {
    const name = `clean/${w.id}`;
    await w.prepare?.(name);
    const victim = await warmServer();
    const t0 = performance.now();
    const r = await call(victim.client, w.tool, w.args(name));
    const ms = performance.now() - t0;
    await victim.close();
    if (r.isError) throw new Error(`${w.id} fails without a crash: ${r.text}`);
    clean.set(w.id, { ms, hash: w.tool === 'package_delete' ? null : (r.data.top_hash as string) });
  }
}, 120_000);

afterAll(async () => {
  if (log.length) console.log(`Local registry crash trials (SIGKILL at a seeded moment of a write; replay one with CRASH_SEED=<seed>):\n${log.join('\n')}`);
  await healthy?.close();
  rmSync(root, { recursive: true, force: true });
});

async function trial(w: Write, seed: number): Promise<string[]> {
  const rand = random(seed);
  const { ms, hash } = clean.get(w.id)!;
  const at = rand() * ms * 1.1;
  const name = `t${seed}/${w.id}`;
  await w.prepare?.(name);
  const before = await latestOf(name);
  const victim = await warmServer();
  const killer = setTimeout(() => process.kill(victim.pid!, 'SIGKILL'), at);
  const outcome = await call(victim.client, w.tool, w.args(name)).then(
    (r) => (r.isError ? `error: ${r.text.slice(0, 120)}` : 'answered before the kill'),
    () => 'killed',
  );
  clearTimeout(killer);
  await victim.close().catch(() => undefined);

  const problems: string[] = [];
  const registry = localRegistry(regDir);
  const after = await latestOf(name);
  problems.push(...(await checkRegistry(registry, { names: [name], expect: [{ name, latest: [before, hash] }] })));
  const again = await call(healthy.client, w.tool, w.args(name));
  if (!completedAgain(w.tool, again, hash)) problems.push(`the call sent again failed: ${again.text.slice(0, 300)}`);
  problems.push(...(await checkRegistry(registry, { names: [name], expect: [{ name, latest: [hash] }] })));
  // A killed writer's temporary files are its only leftovers, inside .quilt/.tmp (never in a listed folder).
  const stray = readdirSync(path.join(regDir, '.quilt'), { recursive: true }).map(String).filter((f) => /\.tmp|tmp-/.test(f) && !f.startsWith('.tmp'));
  if (stray.length) problems.push(`temporary files outside .quilt/.tmp: ${stray.slice(0, 3).join(', ')}`);
  log.push(
    `seed=${String(seed).padEnd(11)} ${w.id.padEnd(14)} killed at ${Math.round(at)}/${Math.round(ms)} ms: ${outcome}; ${trialOutcome({ before, after, made: hash }, again, problems)}`,
  );
  return problems.map((p) => `seed ${seed} (${w.id}, at ${Math.round(at)} of ${Math.round(ms)} ms): ${p}`);
}

describe('crash consistency of a local registry: SIGKILL during package writes, then a walk of the folder', () => {
  for (const w of WRITES) {
    it(`${w.id}: every crash leaves a consistent registry, and the call sent again completes`, async () => {
      const first = ONLY_SEED ?? Date.now() % 1_000_000_000;
      const seeds = ONLY_SEED !== undefined ? [ONLY_SEED] : Array.from({ length: TRIALS_PER_WRITE }, (_, i) => first + i);
      const problems: string[] = [];
      for (const seed of seeds) problems.push(...(await trial(w, seed)));
      expect(problems).toEqual([]);
    }, 60_000 + TRIALS_PER_WRITE * 30_000);
  }
});
