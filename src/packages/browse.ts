/**
 * A directory view of a manifest in one streaming pass. Memory holds the page being built (at most
 * `limit + 1` files) and one small record per sub-directory of the level shown, never the manifest,
 * so 100,000-entry packages browse in bounded memory.
 */
import { ToolError } from '../errors.js';
import type { ManifestEntry, ManifestHeader, ManifestRecord } from './manifest.js';
import { compareWalkOrder, eachEntry } from './manifest.js';
import { compareCodePoints } from './pyjson.js';

export interface BrowseOptions {
  /** A directory ("a/b" or "a/b/") or one logical key; "" is the root. */
  path: string;
  recursive: boolean;
  limit: number;
  /** Only items sorting after this name (directory view) or logical key (recursive). */
  after?: string | undefined;
}

export type BrowseItem =
  | { type: 'file'; name: string; entry: ManifestEntry }
  | { type: 'dir'; name: string; files: number; size: number };

export interface BrowseResult {
  header: ManifestHeader;
  /** Whole package. */
  totalFiles: number;
  totalSize: number;
  /** Items at the level shown (after the cursor or not). */
  count: number;
  items: BrowseItem[];
  /** More items follow `items`. */
  more: boolean;
  /** The path named a single entry. */
  file?: ManifestEntry;
}

/** Keeps the `cap` smallest items in order; input that is already sorted costs one comparison each. */
class SmallestK<T> {
  readonly items: T[] = [];
  constructor(
    private readonly cap: number,
    private readonly cmp: (a: T, b: T) => number,
  ) {}
  add(x: T): void {
    const a = this.items;
    if (a.length >= this.cap && this.cmp(x, a[a.length - 1] as T) >= 0) return;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cmp(a[mid] as T, x) <= 0) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, x);
    if (a.length > this.cap) a.pop();
  }
}

/** `batches`: the manifest's records in batches (readManifestBatches). */
export async function browseManifest(batches: AsyncIterable<readonly ManifestRecord[]>, opts: BrowseOptions): Promise<BrowseResult> {
  const dir = opts.path.replace(/^\/+|\/+$/g, '');
  const exact = opts.path.endsWith('/') ? undefined : dir;
  const prefix = dir ? `${dir}/` : '';
  let totalFiles = 0;
  let totalSize = 0;
  let count = 0;
  let file: ManifestEntry | undefined;
  const compareNames = opts.recursive ? compareWalkOrder : compareCodePoints;
  const byName = (a: BrowseItem, b: BrowseItem) => compareNames(a.name, b.name);
  const files = new SmallestK<BrowseItem>(opts.limit + 1, byName);
  const dirs = new Map<string, { files: number; size: number }>();
  const afterCursor = (name: string) => opts.after === undefined || compareNames(name, opts.after) > 0;

  const header = await eachEntry(batches, (e) => {
    totalFiles++;
    totalSize += e.size;
    if (exact !== undefined && e.logical_key === exact) file = e;
    if (!e.logical_key.startsWith(prefix)) return;
    const rest = e.logical_key.slice(prefix.length);
    const slash = opts.recursive ? -1 : rest.indexOf('/');
    if (slash < 0) {
      count++;
      if (afterCursor(rest)) files.add({ type: 'file', name: rest, entry: e });
    } else {
      const name = rest.slice(0, slash);
      let d = dirs.get(name);
      if (!d) {
        d = { files: 0, size: 0 };
        dirs.set(name, d);
        count++;
      }
      d.files++;
      d.size += e.size;
    }
  });
  if (!header) throw new ToolError('upstream_error', 'The package manifest is empty.');
  if (file) return { header, totalFiles, totalSize, count: 1, items: [], more: false, file };
  if (dir && count === 0) {
    throw new ToolError('not_found', `The package has no file or directory "${dir}".`, 'Browse without a path to see the top level.');
  }
  const merged = files.items;
  for (const [name, d] of dirs) {
    if (afterCursor(name)) merged.push({ type: 'dir', name, ...d });
  }
  merged.sort(byName);
  const items = merged.slice(0, opts.limit);
  return { header, totalFiles, totalSize, count, items, more: merged.length > opts.limit };
}
