/**
 * Differences between two manifests: one side is held as a compact map (logical key -> hash, size,
 * meta digest), the other streamed against it.
 */
import { createHash } from 'node:crypto';
import type { ManifestEntry, ManifestHeader } from './manifest.js';
import { compareWalkOrder } from './manifest.js';
import { pyDumps } from './pyjson.js';

export type Change = 'content' | 'size' | 'meta' | 'location';

interface Side {
  size: number;
  hash: string;
  physicalKey: string;
}

export interface DiffItem {
  logical_key: string;
  from?: Side;
  to?: Side;
  changes?: Change[];
}

export interface DiffResult {
  added: DiffItem[];
  removed: DiffItem[];
  modified: DiffItem[];
  counts: { added: number; removed: number; modified: number; unchanged: number };
  headers: { from: ManifestHeader; to: ManifestHeader };
}

const side = (e: ManifestEntry): Side => ({ size: e.size, hash: e.hash.value, physicalKey: e.physical_keys[0] ?? '' });
// Metadata compared by digest, so the map does not hold every entry's metadata.
const metaOf = (e: ManifestEntry) => (e.meta && Object.keys(e.meta).length ? createHash('sha1').update(pyDumps(e.meta)).digest('base64') : '');

/** One string per entry keeps the map of a 100,000-entry manifest small. */
const pack = (e: ManifestEntry) => [e.hash.type, e.hash.value, e.size, e.physical_keys[0] ?? '', metaOf(e)].join('\0');
function unpack(packed: string): { side: Side; type: string; meta: string } {
  const [type = '', hash = '', size = '0', physicalKey = '', meta = ''] = packed.split('\0');
  return { side: { size: Number(size), hash, physicalKey }, type, meta };
}

async function split(records: AsyncIterable<ManifestHeader | ManifestEntry>, onEntry: (e: ManifestEntry) => void): Promise<ManifestHeader> {
  let header: ManifestHeader | undefined;
  for await (const rec of records) {
    if (!header) header = rec as ManifestHeader;
    else onEntry(rec as ManifestEntry);
  }
  return header ?? { version: 'v0' };
}

/** Lists are capped at `limit` items each (in walk order); counts are always complete. */
export async function diffManifests(
  from: AsyncIterable<ManifestHeader | ManifestEntry>,
  to: AsyncIterable<ManifestHeader | ManifestEntry>,
  limit: number,
): Promise<DiffResult> {
  const old = new Map<string, string>();
  const fromHeader = await split(from, (e) => old.set(e.logical_key, pack(e)));
  const added: DiffItem[] = [];
  const modified: DiffItem[] = [];
  let unchanged = 0;
  const toHeader = await split(to, (e) => {
    const packed = old.get(e.logical_key);
    if (packed === undefined) {
      added.push({ logical_key: e.logical_key, to: side(e) });
      return;
    }
    old.delete(e.logical_key);
    const was = unpack(packed);
    const now = side(e);
    const changes: Change[] = [];
    // Hashes of different types cannot be compared; then the location tells whether it moved.
    if (was.type === e.hash.type ? was.side.hash !== now.hash : was.side.physicalKey !== now.physicalKey) changes.push('content');
    if (was.side.size !== now.size) changes.push('size');
    if (was.meta !== metaOf(e)) changes.push('meta');
    if (changes.length === 0 && was.side.physicalKey !== now.physicalKey) changes.push('location');
    if (changes.length) modified.push({ logical_key: e.logical_key, from: was.side, to: now, changes });
    else unchanged++;
  });
  const removed: DiffItem[] = [...old].map(([logical_key, v]) => ({ logical_key, from: unpack(v).side }));
  const byKey = (a: DiffItem, b: DiffItem) => compareWalkOrder(a.logical_key, b.logical_key);
  const cap = (xs: DiffItem[]) => xs.sort(byKey).slice(0, limit);
  return {
    counts: { added: added.length, removed: removed.length, modified: modified.length, unchanged },
    added: cap(added),
    removed: cap(removed),
    modified: cap(modified),
    headers: { from: fromHeader, to: toHeader },
  };
}
