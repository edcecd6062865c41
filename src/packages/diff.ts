/**
 * Differences between two manifests. Both are streamed in walk order (as quilt3 writes them) and
 * merged, so memory holds the listed items only, however large the manifests; a manifest out of
 * order (not written by quilt3) is compared the older way, one side held as a compact map
 * (logical key -> hash, size, meta digest) and the other streamed against it. What either holds
 * is counted in the call's memory lease (a hostile manifest may be large and out of order on purpose).
 */
import { createHash } from 'node:crypto';
import type { ManifestEntry, ManifestHeader, ManifestRecord } from './manifest.js';
import { compareWalkOrder, eachEntry } from './manifest.js';
import { pyDumps, samePy } from './pyjson.js';
import { SmallestK } from './smallest.js';
import { yieldIfBusy } from '../turns.js';

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

async function split(records: Records, onEntry: (e: ManifestEntry) => void): Promise<ManifestHeader> {
  return (await eachEntry(records, onEntry)) ?? { version: 'v0' };
}

/** A manifest's records in batches (readManifestBatches). */
type Records = AsyncIterable<readonly ManifestRecord[]>;

/** Told how many bytes the diff holds (a MemoryLease); may refuse. */
type Memory = { hold(bytes: number): void } | undefined;

/** Bytes a listed item takes: its strings and objects. */
const itemBytes = (i: DiffItem) => 2 * (i.logical_key.length + (i.from?.physicalKey.length ?? 0) + (i.to?.physicalKey.length ?? 0)) + 400;

/** Bytes an entry of the in-memory map takes: key, packed string and the Map's slot. */
const mapBytes = (key: string, packed: string) => 2 * (key.length + packed.length) + 96;

/** A side of the merge is not in strict walk order: diffManifests then uses diffManifestsInMemory. */
export class NotInWalkOrder extends Error {}

/**
 * One side of the merge: its header, then the entry under the cursor (undefined at the end). Moving
 * on awaits only when a batch is used up, not once per entry.
 */
class MergeSide {
  header: ManifestHeader = { version: 'v0' };
  entry: ManifestEntry | undefined;
  private readonly it: AsyncIterator<readonly ManifestRecord[]>;
  private batch: readonly ManifestRecord[] = [];
  private at = 0;

  constructor(records: Records) {
    this.it = records[Symbol.asyncIterator]();
  }

  async start(): Promise<void> {
    const first = await this.next();
    if (first === undefined) return;
    this.header = first as ManifestHeader;
    await this.advance();
  }

  /** The next entry under the cursor; a promise only when the next batch has to be read. */
  advance(): Promise<void> | undefined {
    const prev = this.entry;
    const next = this.next();
    if (next instanceof Promise) return next.then((rec) => this.moveTo(prev, rec));
    this.moveTo(prev, next);
    return undefined;
  }

  private moveTo(prev: ManifestEntry | undefined, rec: ManifestRecord | undefined): void {
    this.entry = rec as ManifestEntry | undefined;
    if (prev && this.entry && compareWalkOrder(prev.logical_key, this.entry.logical_key) >= 0) throw new NotInWalkOrder(this.entry.logical_key);
  }

  private next(): ManifestRecord | undefined | Promise<ManifestRecord | undefined> {
    if (this.at < this.batch.length) return this.batch[this.at++];
    return this.refill();
  }

  private async refill(): Promise<ManifestRecord | undefined> {
    for (;;) {
      const r = await this.it.next();
      if (r.done) return undefined;
      if (r.value.length === 0) continue;
      this.batch = r.value;
      this.at = 1;
      return r.value[0];
    }
  }

  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

/**
 * Lists are capped at `limit` items each (in walk order); counts are always complete. `open`
 * gives each side's records (called again for the in-memory fallback).
 */
export async function diffManifests(open: { from: () => Records; to: () => Records }, limit: number, memory?: Memory): Promise<DiffResult> {
  try {
    return await diffStreams(open.from(), open.to(), limit, memory);
  } catch (err) {
    if (!(err instanceof NotInWalkOrder)) throw err;
    memory?.hold(0);
    return diffManifestsInMemory(open.from(), open.to(), limit, memory);
  }
}

/** The merge of two manifests in walk order: memory holds `limit` items per kind, not the manifests. */
async function diffStreams(from: Records, to: Records, limit: number, memory: Memory): Promise<DiffResult> {
  const a = new MergeSide(from);
  const b = new MergeSide(to);
  const added: DiffItem[] = [];
  const removed: DiffItem[] = [];
  const modified: DiffItem[] = [];
  const counts = { added: 0, removed: 0, modified: 0, unchanged: 0 };
  let held = 0;
  const list = (items: DiffItem[], item: DiffItem) => {
    held += itemBytes(item);
    memory?.hold(held);
    items.push(item);
  };
  try {
    await Promise.all([a.start(), b.start()]);
    while (a.entry || b.entry) {
      const x = a.entry;
      const y = b.entry;
      const c = !x ? 1 : !y ? -1 : compareWalkOrder(x.logical_key, y.logical_key);
      if (c < 0) {
        if (counts.removed++ < limit) list(removed, { logical_key: x!.logical_key, from: side(x!) });
        await a.advance();
      } else if (c > 0) {
        if (counts.added++ < limit) list(added, { logical_key: y!.logical_key, to: side(y!) });
        await b.advance();
      } else {
        const changes = changesOf(x!, y!);
        if (changes.length === 0) counts.unchanged++;
        else if (counts.modified++ < limit) list(modified, { logical_key: y!.logical_key, from: side(x!), to: side(y!), changes });
        const pa = a.advance();
        const pb = b.advance();
        if (pa || pb) await Promise.all([pa, pb]);
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return { counts, added, removed, modified, headers: { from: a.header, to: b.header } };
}

const NO_CHANGES: Change[] = [];

/** Metadata compared as its canonical form would compare (no metadata = {}), as metaOf's digests do. */
function sameMeta(x: ManifestEntry, y: ManifestEntry): boolean {
  return samePy(x.meta ?? {}, y.meta ?? {});
}

function changesOf(x: ManifestEntry, y: ManifestEntry): Change[] {
  const wasKey = x.physical_keys[0] ?? '';
  const nowKey = y.physical_keys[0] ?? '';
  // Hashes of different types cannot be compared; then the location tells whether it moved.
  const content = x.hash.type === y.hash.type ? x.hash.value !== y.hash.value : wasKey !== nowKey;
  const size = x.size !== y.size;
  const meta = !sameMeta(x, y);
  if (!content && !size && !meta) return wasKey === nowKey ? NO_CHANGES : ['location'];
  const changes: Change[] = [];
  if (content) changes.push('content');
  if (size) changes.push('size');
  if (meta) changes.push('meta');
  return changes;
}

/**
 * The older diff (one side in a map): for manifests that are not in walk order. The map is counted
 * in `memory` as it grows; the lists keep the `limit` first items in walk order.
 */
export async function diffManifestsInMemory(from: Records, to: Records, limit: number, memory?: Memory): Promise<DiffResult> {
  const old = new Map<string, string>();
  let mapHeld = 0;
  let listHeld = 0;
  const report = () => memory?.hold(mapHeld + listHeld);
  const fromHeader = await split(from, (e) => {
    const packed = pack(e);
    const was = old.get(e.logical_key);
    mapHeld += mapBytes(e.logical_key, packed) - (was === undefined ? 0 : mapBytes(e.logical_key, was));
    old.set(e.logical_key, packed);
    report();
  });
  const byKey = (a: DiffItem, b: DiffItem) => compareWalkOrder(a.logical_key, b.logical_key);
  const lists = { added: new SmallestK<DiffItem>(limit, byKey), removed: new SmallestK<DiffItem>(limit, byKey), modified: new SmallestK<DiffItem>(limit, byKey) };
  const counts = { added: 0, removed: 0, modified: 0, unchanged: 0 };
  const list = (kind: keyof typeof lists, item: DiffItem) => {
    counts[kind]++;
    const dropped = lists[kind].add(item);
    if (dropped === item) return;
    listHeld += itemBytes(item) - (dropped ? itemBytes(dropped) : 0);
    report();
  };
  const toHeader = await split(to, (e) => {
    const packed = old.get(e.logical_key);
    if (packed === undefined) {
      list('added', { logical_key: e.logical_key, to: side(e) });
      return;
    }
    old.delete(e.logical_key);
    mapHeld -= mapBytes(e.logical_key, packed);
    const was = unpack(packed);
    const now = side(e);
    const changes: Change[] = [];
    // Hashes of different types cannot be compared; then the location tells whether it moved.
    if (was.type === e.hash.type ? was.side.hash !== now.hash : was.side.physicalKey !== now.physicalKey) changes.push('content');
    if (was.side.size !== now.size) changes.push('size');
    if (was.meta !== metaOf(e)) changes.push('meta');
    if (changes.length === 0 && was.side.physicalKey !== now.physicalKey) changes.push('location');
    if (changes.length) list('modified', { logical_key: e.logical_key, from: was.side, to: now, changes });
    else counts.unchanged++;
  });
  let n = 0;
  for (const [logical_key, v] of old) {
    list('removed', { logical_key, from: unpack(v).side });
    if ((++n & 4095) === 0) await yieldIfBusy();
  }
  return {
    counts,
    added: lists.added.items,
    removed: lists.removed.items,
    modified: lists.modified.items,
    headers: { from: fromHeader, to: toHeader },
  };
}
