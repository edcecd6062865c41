/**
 * Listing every key under a prefix in as few round trips as S3 allows. S3 pages a listing 1,000
 * keys at a time, each page after the previous one; but the sub-prefixes of a prefix ("folders",
 * found with a delimiter listing) can be listed at the same time. So a listing longer than two pages
 * asks for the sub-prefixes while it reads its second page, then lists them concurrently (and theirs,
 * two levels down), instead of walking 10,000 keys in 10 round trips. Keys come back in S3's order,
 * and with `max` exactly the first `max` keys are kept, however the work was split.
 */
import type { ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { CALL_CONCURRENCY, Slots, inS3Slot, mapBounded } from '../core/concurrency.js';
import type { BucketAction, RuntimeContext } from '../context.js';
import { compareCodePoints } from '../core/code-points.js';
import { withS3 } from './s3.js';

export interface ListedObject {
  key: string;
  size?: number | undefined;
  lastModified?: Date | undefined;
  etag?: string | undefined;
  /** Algorithms of the checksums S3 stores for the object (e.g. SHA256), as the listing tells. */
  checksums?: string[] | undefined;
}

export interface ListOptions {
  /** Stop after this many keys (the first ones in S3's order) and say whether there were more. */
  max?: number;
  action?: BucketAction;
  verb?: string;
  signal?: AbortSignal | undefined;
}

/** Levels of sub-prefixes listed concurrently (e.g. a registry's namespaces, then their packages). */
const SPLIT_DEPTH = 2;
const PAGE = 1000;

const objectsOf = (out: ListObjectsV2CommandOutput): ListedObject[] =>
  (out.Contents ?? []).flatMap((o) =>
    o.Key === undefined ? [] : [{ key: o.Key, size: o.Size, lastModified: o.LastModified, etag: o.ETag, checksums: o.ChecksumAlgorithm }],
  );

export async function listAll(ctx: RuntimeContext, bucket: string, prefix: string, opts: ListOptions = {}): Promise<{ keys: ListedObject[]; truncated: boolean }> {
  const max = opts.max ?? Infinity;
  // This call's requests in flight, however deep the split.
  const slots = new Slots(CALL_CONCURRENCY);
  const target = { bucket, key: prefix, action: opts.action ?? ('list' as BucketAction), verb: opts.verb ?? 'list the objects of' };
  // The signal is checked before each page rather than passed to send: per-request options make the
  // SDK resolve its middleware stack again (and drop its cache), which costs more than a page's wait.
  const page = (input: { Prefix: string; StartAfter?: string | undefined; ContinuationToken?: string | undefined; Delimiter?: string }) =>
    slots.run(() =>
      inS3Slot(() => {
        opts.signal?.throwIfAborted();
        return withS3(ctx, target, (client, { ListObjectsV2Command }) => client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: PAGE, ...input })));
      }),
    );

  /**
   * Keys under `p` after `after`, in order. `before()` counts keys known to come before this range
   * (a lower bound that only grows): once it and this range's own keys exceed max, the rest of the
   * range cannot be among the first max + 1 keys, and is not read. `progress` is told this range's
   * count as it grows.
   */
  async function range(p: string, after: string | undefined, depth: number, before: () => number, progress: (n: number) => void): Promise<ListedObject[]> {
    const keys: ListedObject[] = [];
    const add = (out: ListObjectsV2CommandOutput) => {
      keys.push(...objectsOf(out));
      progress(keys.length);
    };
    const enough = () => before() + keys.length > max;
    let out = await page({ Prefix: p, StartAfter: after });
    add(out);
    if (!out.IsTruncated || enough()) return keys;
    if (depth > 0) {
      // The second page, and the sub-prefixes after the first page, at once.
      const [second, children] = await Promise.all([
        page({ Prefix: p, ContinuationToken: out.NextContinuationToken }),
        page({ Prefix: p, Delimiter: '/', StartAfter: keys[keys.length - 1]!.key }),
      ]);
      out = second;
      add(out);
      if (!out.IsTruncated || enough()) return keys;
      const subs = (children.CommonPrefixes ?? []).flatMap((c) => (c.Prefix ? [c.Prefix] : []));
      if (!children.IsTruncated && subs.length > 0) return split(keys, subs, objectsOf(children), depth - 1, before, progress);
    }
    // A prefix without sub-prefixes to split on (or with too many): page after page.
    while (out.IsTruncated && !enough()) {
      out = await page({ Prefix: p, ContinuationToken: out.NextContinuationToken });
      add(out);
    }
    return keys;
  }

  /**
   * `read` (a range's first keys) and the rest of the range: its keys directly under it (`direct`,
   * from the delimiter listing) and its sub-prefixes `subs`, listed concurrently.
   */
  async function split(
    read: ListedObject[],
    subs: string[],
    direct: ListedObject[],
    depth: number,
    before: () => number,
    progress: (n: number) => void,
  ): Promise<ListedObject[]> {
    const last = read[read.length - 1]!.key;
    // Sub-prefixes wholly before `last` were read already; the one holding it continues after it.
    const todo = subs.filter((s) => compareCodePoints(s, last) > 0 || last.startsWith(s));
    const own = direct.filter((o) => compareCodePoints(o.key, last) > 0);
    const counts = new Array<number>(todo.length).fill(0);
    const total = () => read.length + own.length + counts.reduce((a, b) => a + b, 0);
    const ranges = await mapBounded(todo, CALL_CONCURRENCY, (s, i) => {
      // Keys of the earlier sub-prefixes count as before this one (those directly under the prefix need not).
      const earlier = () => before() + read.length + counts.slice(0, i).reduce((a, b) => a + b, 0);
      return range(s, last.startsWith(s) ? last : undefined, depth, earlier, (n) => {
        counts[i] = n;
        progress(total());
      });
    });
    const rest = [...own, ...ranges.flat()].sort((a, b) => compareCodePoints(a.key, b.key));
    return read.concat(rest);
  }

  const keys = await range(prefix, undefined, SPLIT_DEPTH, () => 0, () => undefined);
  if (keys.length > max) return { keys: keys.slice(0, max), truncated: true };
  return { keys, truncated: false };
}
