/**
 * A directory view of a manifest in one streaming pass. Memory holds the page being built (at most
 * `limit + 1` files) and one small record per sub-directory of the level shown, never the manifest,
 * so 100,000-entry packages browse in bounded memory; both are counted in the call's memory lease,
 * since a hostile manifest can make either large (a million folders, or long lines).
 */
import { ToolError } from '../errors.js';
import type { ManifestEntry, ManifestHeader, RecordWithLine } from './manifest.js';
import { compareWalkOrder, isManifestEntry, PARSED_BYTES_PER_LINE_BYTE } from './manifest.js';
import { compareCodePoints } from './pyjson.js';
import { SmallestK } from './smallest.js';
import { yieldIfBusy } from '../turns.js';

export interface BrowseOptions {
  /** A directory ("a/b" or "a/b/") or one logical key; "" is the root. */
  path: string;
  recursive: boolean;
  limit: number;
  /** Only items sorting after this name (directory view) or logical key (recursive). */
  after?: string | undefined;
  /** Told how many bytes the files kept and folder records take (a MemoryLease); may refuse. */
  memory?: { hold(bytes: number): void } | undefined;
}

/** Bytes a folder record takes: its name and a small object in a Map. */
const dirBytes = (name: string) => 2 * name.length + 96;

export type BrowseItem =
  | { type: 'file'; name: string; entry: ManifestEntry; bytes?: number }
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

/** `batches`: the manifest's records with their lines, in batches (readManifestLines). */
export async function browseManifest(batches: AsyncIterable<readonly RecordWithLine[]>, opts: BrowseOptions): Promise<BrowseResult> {
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
  let held = 0;
  const hold = (delta: number) => {
    held += delta;
    opts.memory?.hold(held);
  };

  let header: ManifestHeader | undefined;
  for await (const batch of batches) {
    for (const [rec, bytes] of batch) {
      if (!isManifestEntry(rec)) {
        header ??= rec;
        continue;
      }
      const e = rec;
      totalFiles++;
      totalSize += e.size;
      if (exact !== undefined && e.logical_key === exact) file = e;
      if (!e.logical_key.startsWith(prefix)) continue;
      const rest = e.logical_key.slice(prefix.length);
      const slash = opts.recursive ? -1 : rest.indexOf('/');
      if (slash < 0) {
        count++;
        if (!afterCursor(rest)) continue;
        const item: BrowseItem = { type: 'file', name: rest, entry: e, bytes: bytes.length * PARSED_BYTES_PER_LINE_BYTE };
        const dropped = files.add(item);
        if (dropped !== item) hold((item.bytes ?? 0) - (dropped?.type === 'file' ? (dropped.bytes ?? 0) : 0));
      } else {
        const name = rest.slice(0, slash);
        let d = dirs.get(name);
        if (!d) {
          hold(dirBytes(name));
          d = { files: 0, size: 0 };
          dirs.set(name, d);
          count++;
        }
        d.files++;
        d.size += e.size;
      }
    }
  }
  if (!header) throw new ToolError('upstream_error', 'The package manifest is empty.');
  if (file) return { header, totalFiles, totalSize, count: 1, items: [], more: false, file };
  if (dir && count === 0) {
    throw new ToolError('not_found', `The package has no file or directory "${dir}".`, 'Browse without a path to see the top level.');
  }
  // The page: the smallest names among the files kept and the folders (a package may have a million).
  const page = new SmallestK<BrowseItem>(opts.limit + 1, byName);
  for (const f of files.items) page.add(f);
  let n = 0;
  for (const [name, d] of dirs) {
    if (afterCursor(name)) page.add({ type: 'dir', name, ...d });
    if ((++n & 4095) === 0) await yieldIfBusy();
  }
  const items = page.items.slice(0, opts.limit);
  return { header, totalFiles, totalSize, count, items, more: page.items.length > opts.limit };
}
