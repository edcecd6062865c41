/**
 * Long loops over a caller's data give the event loop back every few milliseconds, so other
 * callers' requests run in between: a chunk of a stream that arrives while the loop works would
 * otherwise be handled in the same turn (a chain of promises never yields to I/O). The time is the
 * loop's, not one loop's: every loop of every call counts from the last time the event loop was
 * given back, so several streams at once yield as soon as their work together passes TURN_MS.
 */
const TURN_MS = 4;

let since = performance.now();
let pending: Promise<void> | undefined;

/** A turn of the event loop (shared by everyone who asks while it is pending). */
function nextTurn(): Promise<void> {
  return (pending ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      since = performance.now();
      pending = undefined;
      resolve();
    }),
  ));
}

/** Resolves at once while the loop has worked less than TURN_MS since it was last given back. */
export function yieldIfBusy(): Promise<void> | undefined {
  return performance.now() - since < TURN_MS ? undefined : nextTurn();
}

const RUN = 4096;

/**
 * Sorts `items` (stably) as Array.prototype.sort would, giving the event loop back between steps:
 * runs of RUN items sorted at once, then merged pairwise, every step a few milliseconds at most.
 * For arrays a caller's data makes large (a manifest out of walk order), whose one sort could hold
 * the loop for a second.
 */
export async function sortInTurns<T>(items: T[], cmp: (a: T, b: T) => number): Promise<T[]> {
  if (items.length <= RUN) return items.sort(cmp);
  let src = items;
  for (let at = 0; at < src.length; at += RUN) {
    const run = src.slice(at, at + RUN).sort(cmp);
    for (let i = 0; i < run.length; i++) src[at + i] = run[i]!;
    await yieldIfBusy();
  }
  let dst = new Array<T>(src.length);
  for (let width = RUN; width < src.length; width *= 2) {
    for (let lo = 0; lo < src.length; lo += 2 * width) {
      const mid = Math.min(lo + width, src.length);
      const hi = Math.min(lo + 2 * width, src.length);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        dst[k++] = cmp(src[j]!, src[i]!) < 0 ? src[j++]! : src[i++]!;
        if ((k & 4095) === 0) await yieldIfBusy();
      }
      while (i < mid) dst[k++] = src[i++]!;
      while (j < hi) dst[k++] = src[j++]!;
    }
    [src, dst] = [dst, src];
    await yieldIfBusy();
  }
  if (src !== items) for (let i = 0; i < items.length; i++) items[i] = src[i]!;
  return items;
}
