/**
 * Runs `fn` over `items` with at most `limit` in flight, keeping order in the results. After a
 * failure no new item is started (those in flight finish); the first failure is thrown.
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        next = items.length;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Runs callbacks with the same key one at a time, in call order (a per-process mutex per key). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** At most `size` callbacks at once; the others wait in arrival order. */
export class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used < this.size) this.used++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot jump the queue.
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    }
  }
}

/**
 * S3 requests one call keeps in flight for its bulk work (reading sources, uploading objects,
 * reading pointers, listing prefixes). What a user waits for is round trips: at 20-80 ms each, 64
 * at a time turn 1,000 objects into 16 round trips, and stay under S3's per-prefix request rates
 * (3,500 writes and 5,500 reads per second) down to ~12-18 ms per request.
 */
export const CALL_CONCURRENCY = 64;

/**
 * The process's share of S3 bulk requests, all calls and tenants together: a call runs
 * CALL_CONCURRENCY requests at a time only while few others are busy, and each call's next request
 * queues behind the others' (first come, first served), so a large call cannot starve a small one.
 * Also what the S3 clients' socket pools are sized for (aws/clients.ts).
 */
export const PROCESS_S3_SLOTS = 256;
const s3Slots = new Slots(PROCESS_S3_SLOTS);

/** Runs one piece of S3 bulk work within the process's share. `fn` must not wait for another slot. */
export const inS3Slot = <T>(fn: () => Promise<T>): Promise<T> => s3Slots.run(fn);

/**
 * mapBounded for S3 bulk work: CALL_CONCURRENCY at a time, each item within the process's share.
 * `fn` must not wait for another slot (no mapS3 inside mapS3): slots held while waiting for more
 * could deadlock the process.
 */
export function mapS3<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  return mapBounded(items, CALL_CONCURRENCY, (item, i) => s3Slots.run(() => fn(item, i)));
}

/**
 * Promise.all for requests issued together whose failures have an order of precedence: throws the
 * error of the first failing one in argument order (as soon as those before it have succeeded), so
 * which error a caller sees does not depend on timing. Later failures go unreported, not unhandled.
 */
export async function allInOrder<T extends readonly unknown[]>(promises: readonly [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T> {
  for (const p of promises) p.catch(() => undefined);
  const out: unknown[] = [];
  for (const p of promises) out.push(await p);
  return out as unknown as T;
}

/**
 * Local file work (reading, hashing, writing files) one call keeps in flight, and the process's
 * share of it: a disk gains little past a few reads at once, and the hashing is the event loop's.
 * Kept apart from the S3 slots, so a folder of 10,000 files never holds up other calls' S3 requests.
 */
export const CALL_LOCAL_CONCURRENCY = 8;
export const PROCESS_LOCAL_SLOTS = 32;
const localSlots = new Slots(PROCESS_LOCAL_SLOTS);

/** mapBounded for local file work: CALL_LOCAL_CONCURRENCY at a time, within the process's share. `fn` must not wait for another slot. */
export function mapLocal<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  return mapBounded(items, CALL_LOCAL_CONCURRENCY, (item, i) => localSlots.run(() => fn(item, i)));
}
