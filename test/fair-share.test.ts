/**
 * The pieces that keep one caller from taking what every caller shares, on their own: the fair
 * limiter (slots per process and per caller, served in turn), the sort that gives the event loop
 * back, and the workflow checker (a worker thread with a deadline and a small heap).
 */
import { describe, expect, it } from 'vitest';
import { FairLimiter } from '../src/core/fair-limiter.js';
import { sortInTurns } from '../src/core/turns.js';
import { CheckWorker } from '../src/packages/workflow-worker.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('FairLimiter', () => {
  const harness = (limiter: FairLimiter) => {
    const started: string[] = [];
    const gates = new Map<string, () => void>();
    const job = (key: string, id: string) =>
      limiter.run(key, async () => {
        started.push(id);
        await new Promise<void>((resolve) => gates.set(id, resolve));
        return id;
      });
    const finish = async (...ids: string[]) => {
      for (const id of ids) gates.get(id)!();
      await tick();
    };
    return { started, job, finish };
  };

  it('runs at most `total` at once and `perKey` per caller', async () => {
    const limiter = new FairLimiter({ total: 3, perKey: 2, waitMs: 10_000, what: 'things' });
    const { started, job, finish } = harness(limiter);
    // Bob asks for five, then alice for two: bob's others wait for his own slots.
    const runs = [job('bob', 'b1'), job('bob', 'b2'), job('bob', 'b3'), job('bob', 'b4'), job('bob', 'b5'), job('alice', 'a1'), job('alice', 'a2')];
    await tick();
    expect(started).toEqual(['b1', 'b2', 'a1']);
    expect(limiter.inProgress).toBe(3);
    // Bob is at his two: a freed slot goes to alice.
    await finish('a1');
    expect(started).toEqual(['b1', 'b2', 'a1', 'a2']);
    await finish('b1');
    expect(started.at(-1)).toBe('b3');
    await finish('b2', 'a2');
    expect(started.at(-1)).toBe('b4');
    expect(limiter.inProgress).toBe(2);
    await finish('b3');
    await finish('b4', 'b5');
    expect(await Promise.all(runs)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5', 'a1', 'a2']);
    expect(limiter.inProgress).toBe(0);
  });

  it('gives a freed slot to the waiting caller with the least running, though another waited longer', async () => {
    const limiter = new FairLimiter({ total: 2, perKey: 2, waitMs: 10_000, what: 'things' });
    const { started, job, finish } = harness(limiter);
    const runs = [job('bob', 'b1'), job('bob', 'b2'), job('bob', 'b3'), job('alice', 'a1')];
    await tick();
    expect(started).toEqual(['b1', 'b2']);
    await finish('b1');
    expect(started).toEqual(['b1', 'b2', 'a1']);
    await finish('b2', 'a1');
    await finish('b3');
    await Promise.all(runs);
  });

  it('refuses work that waited too long, and withdraws cancelled work', async () => {
    const limiter = new FairLimiter({ total: 1, perKey: 1, waitMs: 50, what: 'package reads' });
    let release!: () => void;
    const first = limiter.run('bob', () => new Promise<void>((r) => (release = r)));
    await expect(limiter.run('bob', async () => 'never')).rejects.toMatchObject({
      code: 'throttled',
      message: 'This server is busy with other package reads: this call waited 0 s for its turn.',
    });
    const abort = new AbortController();
    const cancelled = limiter.run('alice', async () => 'never', abort.signal);
    abort.abort();
    await expect(cancelled).rejects.toMatchObject({ code: 'cancelled' });
    release();
    await first;
    // A failed job frees its slot too.
    await expect(limiter.run('bob', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await limiter.run('bob', async () => 'next')).toBe('next');
    expect(limiter.inProgress).toBe(0);
  });
});

describe('sortInTurns', () => {
  it('sorts as the stable Array sort does, at every size', async () => {
    for (const n of [0, 1, 2, 4095, 4096, 4097, 8193, 30_000]) {
      const items = Array.from({ length: n }, (_, i) => ({ k: (i * 7919) % Math.max(1, Math.floor(n / 3)), i }));
      const want = [...items].sort((a, b) => a.k - b.k);
      const got = await sortInTurns([...items], (a, b) => a.k - b.k);
      expect(got.map((x) => x.i), String(n)).toEqual(want.map((x) => x.i));
    }
  });

  it('gives the event loop back while it sorts', async () => {
    const items = Array.from({ length: 200_000 }, (_, i) => `key-${(i * 104729) % 200_000}`);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await sortInTurns(items, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    clearInterval(timer);
    expect(items.slice(0, 3)).toEqual(['key-0', 'key-1', 'key-10']);
    expect(ticks).toBeGreaterThan(2);
  });
});

describe('the workflow checker', () => {
  // The built worker (npm test builds first); tests of src/ in process would have no worker to start.
  const entry = new URL('../dist/packages/workflow-worker-main.js', import.meta.url);
  const schema = (text: string) => ({ id: 's', url: 's3://b/.quilt/s.json', text });

  it('checks in a worker, and stops a check at its deadline without the event loop noticing', async () => {
    const checker = new CheckWorker(entry, 500);
    const ok = await checker.run('alice', { op: 'check', schema: schema('{"type":"object","required":["a"]}'), data: { a: 1 }, what: 'Metadata' });
    expect(ok).toBeNull();
    await expect(checker.run('alice', { op: 'check', schema: schema('{"type":"object","required":["a"]}'), data: {}, what: 'Metadata' })).rejects.toMatchObject({
      code: 'invalid_input',
      message: "Workflow check failed: Metadata failed validation: (root) must have required property 'a'.",
    });
    // Pairwise comparisons of 20,000 arrays: seconds of work, stopped at 0.5 s.
    const x = Array.from({ length: 20_000 }, (_, i) => [i]);
    let longest = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      longest = Math.max(longest, performance.now() - last);
      last = performance.now();
    }, 5);
    const started = performance.now();
    await expect(
      checker.run('bob', { op: 'check', schema: schema('{"properties":{"x":{"uniqueItems":true}}}'), data: { x }, what: 'Metadata' }),
    ).rejects.toMatchObject({ code: 'too_large', message: 'Checking Metadata (schema "s") took longer than 0.5 s, so it was stopped.' });
    clearInterval(timer);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(longest).toBeLessThan(250);
    expect(checker.stats.deadlines).toBe(1);
    // A new worker takes the next check.
    expect(await checker.run('alice', { op: 'check', schema: schema('true'), data: {}, what: 'Metadata' })).toBeNull();
  }, 30_000);

  it("counts a check's deadline from when a new worker has loaded its modules, not from its cold start", async () => {
    // A worker that takes a second to start, and a 500 ms deadline a trivial check meets 10 times
    // over once the worker is ready. The deadline used to start at the post: a busy machine refused
    // trivial checks on a cold worker.
    const checker = new CheckWorker(new URL('./helpers/slow-start-worker.mjs', import.meta.url), 500);
    const started = performance.now();
    expect(await checker.run('alice', { op: 'check', schema: schema('{"type":"object"}'), data: {}, what: 'Metadata' })).toBeNull();
    expect(performance.now() - started).toBeGreaterThan(1_000);
    expect(checker.stats.deadlines).toBe(0);
  }, 60_000);

  it("serves callers in turn, and refuses a check past a caller's four waiting", async () => {
    const checker = new CheckWorker(entry, 2_000);
    const slow = { op: 'check' as const, schema: schema('{"properties":{"x":{"uniqueItems":true}}}'), data: { x: Array.from({ length: 2_500 }, (_, i) => [i]) }, what: 'Metadata' };
    const order: string[] = [];
    const mark = (id: string) => (v: unknown) => {
      order.push(id);
      return v;
    };
    // One runs, four wait; a sixth is refused.
    const bobs = Array.from({ length: 5 }, (_, i) => checker.run('bob', slow).then(mark(`b${i}`)));
    await expect(checker.run('bob', slow)).rejects.toMatchObject({ code: 'throttled', message: '4 of your workflow checks are already waiting on this server.' });
    const alice = checker.run('alice', { op: 'check', schema: schema('true'), data: {}, what: 'Metadata' }).then(mark('a'));
    await Promise.all([...bobs, alice]);
    // Bob's first was running; alice's went next, before bob's other four.
    expect(order.indexOf('a')).toBeLessThanOrEqual(1);
    expect(order).toHaveLength(6);
  }, 60_000);

  it('a config parsed in the worker comes back as the chosen workflow only', async () => {
    const checker = new CheckWorker(entry);
    const text = ['version: "1"', 'default_workflow: w', 'workflows:', '  w:', '    name: W', '    metadata_schema: m', '  v: {}', 'schemas:', '  m:', '    url: s3://b/m.json', '  n:', '    url: s3://b/n.json'].join('\n');
    expect(await checker.run('alice', { op: 'select', text, where: 'config.yml', bucket: 'b', workflow: undefined })).toEqual({
      id: 'w',
      spec: { name: 'W', metadata_schema: 'm' },
      schemaUrls: { m: 's3://b/m.json' },
    });
    await expect(checker.run('alice', { op: 'select', text, where: 'config.yml', bucket: 'b', workflow: 'x' })).rejects.toMatchObject({ message: 'Workflow check failed: b has no workflow "x".', hint: 'Use one of: w, v.' });
  });
});
