/** The concurrency helpers behind the calls' round trips: bounded maps, the process's slots, errors in order. */
import { describe, expect, it } from 'vitest';
import { Slots, allInOrder, mapBounded } from '../src/core/concurrency.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('mapBounded', () => {
  it('keeps at most `limit` in flight and the results in order', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapBounded([5, 1, 4, 2, 3], 2, async (x) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, x));
      inFlight--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });

  it('starts nothing new after a failure, and throws it', async () => {
    const started: number[] = [];
    const run = mapBounded([0, 1, 2, 3, 4, 5, 6, 7], 2, async (x) => {
      started.push(x);
      await tick();
      if (x === 1) throw new Error('item 1 failed');
      return x;
    });
    await expect(run).rejects.toThrow('item 1 failed');
    await tick();
    // 0 and 1 ran together; 2 started when 0 finished; nothing after 1 failed.
    expect(started).toEqual([0, 1, 2]);
  });
});

describe('Slots', () => {
  it('runs at most `size` at once and hands a freed slot to the longest waiter', async () => {
    const slots = new Slots(2);
    const order: string[] = [];
    const gates = new Map<string, () => void>();
    const job = (name: string) =>
      slots.run(async () => {
        order.push(`start ${name}`);
        await new Promise<void>((r) => gates.set(name, r));
        order.push(`end ${name}`);
      });
    const jobs = ['a', 'b', 'c', 'd'].map(job);
    await tick();
    expect(order).toEqual(['start a', 'start b']);
    gates.get('b')!();
    await tick();
    // c waited first, so it gets b's slot; a newcomer queues behind d.
    const late = job('e');
    await tick();
    expect(order).toEqual(['start a', 'start b', 'end b', 'start c']);
    gates.get('a')!();
    await tick();
    expect(order.slice(-2)).toEqual(['end a', 'start d']);
    for (const g of ['c', 'd']) gates.get(g)!();
    await tick();
    gates.get('e')!();
    await Promise.all([...jobs, late]);
    expect(order.filter((o) => o.startsWith('start'))).toEqual(['start a', 'start b', 'start c', 'start d', 'start e']);
  });

  it('frees the slot when the callback fails', async () => {
    const slots = new Slots(1);
    await expect(slots.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(slots.run(async () => 'next')).resolves.toBe('next');
  });
});

describe('allInOrder', () => {
  it('throws the first failure in argument order, whichever failed first in time', async () => {
    const slowFailure = new Promise((_, reject) => setTimeout(() => reject(new Error('first argument')), 20));
    const fastFailure = Promise.reject(new Error('second argument'));
    await expect(allInOrder([slowFailure, fastFailure])).rejects.toThrow('first argument');
  });

  it('returns every value when all succeed', async () => {
    await expect(allInOrder([Promise.resolve(1), Promise.resolve('two')])).resolves.toEqual([1, 'two']);
  });
});
