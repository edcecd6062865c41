/**
 * A new revision from a base manifest and changes, in one streaming pass: the base (in walk order,
 * as quilt3 writes it) is merged with the sorted changes as it streams, the top hash is computed
 * entry by entry and the new manifest is written into one buffer as it goes. Memory holds those
 * bytes once (a few hundred per entry: the manifest's key is its top hash, so nothing can be
 * uploaded before the last entry is hashed) and the changes, never the base's entries as objects.
 *
 * Every entry is written as quilt3 would write it again (entryLine), which normalizes lines another
 * writer made; when that is the line as read (isEntryLineOf: lines quilt3 wrote, in practice all),
 * its bytes are copied rather than encoded again.
 */
import {
  compareWalkOrder,
  entryLine,
  headerLine,
  isEntryLineOf,
  isManifestEntry,
  TopHasher,
  type ManifestEntry,
  type ManifestHeader,
  type ManifestRecord,
  type RecordWithLine,
} from './manifest.js';
import { callSignal } from '../call-scope.js';
import { ToolError } from '../errors.js';
import { packageMemory } from '../memory.js';
import { manifestWorkSlots } from './manifest-work.js';
import { sortInTurns, yieldIfBusy } from '../turns.js';
import type { ReadMemory } from './manifest.js';
import { loadManifest, readManifestHeader, streamManifestLines, type RegistryStore } from './registry.js';

/** Entries held in memory, as the batches mergeManifest reads (so it gives the event loop back between them). */
function* inBatches<T>(items: readonly T[], size = 1024): Generator<readonly T[]> {
  for (let at = 0; at < items.length; at += size) yield items.slice(at, at + size);
}

/** The base manifest is not in strict walk order (not written by quilt3); see mergeManifest's `sorted`. */
export class BaseNotInWalkOrder extends Error {
  constructor(readonly key: string) {
    super(`The base manifest is not in walk order at ${JSON.stringify(key)}.`);
  }
}

/**
 * package_update's `remove` arguments: an exact logical key, or a folder ("a/b/") that removes
 * every key under it. Looked up per key (its own name and its prefixes up to each "/"), so a
 * thousand arguments cost the same as one.
 */
export class Removals {
  private readonly hits: number[];
  private readonly exact = new Map<string, number[]>();
  private readonly folders = new Map<string, number[]>();

  constructor(private readonly removes: readonly string[]) {
    this.hits = new Array<number>(removes.length).fill(0);
    removes.forEach((r, i) => {
      const map = r.endsWith('/') ? this.folders : this.exact;
      const at = map.get(r);
      if (at) at.push(i);
      else map.set(r, [i]);
    });
  }

  private hit(args: number[] | undefined): boolean {
    if (!args) return false;
    for (const i of args) this.hits[i]!++;
    return true;
  }

  /** Whether some argument removes `key` (each one that does is counted). */
  match(key: string): boolean {
    let gone = this.hit(this.exact.get(key));
    if (this.folders.size === 0) return gone;
    // "a/b/" matches exactly the keys that start with it: those with a "/" right after "a/b".
    for (let at = key.indexOf('/'); at !== -1; at = key.indexOf('/', at + 1)) {
      if (this.hit(this.folders.get(key.slice(0, at + 1)))) gone = true;
    }
    return gone;
  }

  /** Arguments that matched no key. */
  missing(): string[] {
    return this.removes.filter((_, i) => this.hits[i] === 0);
  }
}

export interface MergedRevision {
  hash: string;
  entries: number;
  totalSize: number;
  /** `remove` arguments that matched nothing. */
  missing: string[];
  /** Logical keys and sizes in walk order, when asked for (a workflow's entries schema needs them). */
  listing?: { logical_key: string; size: number }[];
  /**
   * The new manifest's bytes. Call once the added entries' physical keys are final (text and copied
   * entries get theirs when stored); they are encoded here, the base's entries already were.
   */
  encode(): Buffer;
}

const BATCH = 1 << 16;
/** Room left in the buffer below which it grows between batches (a batch writes far less). */
const GROW_AHEAD = 4 << 20;
/** Bytes copied at once while growing. */
const GROW_PIECE = 1 << 20;

/**
 * The new manifest's bytes in one buffer, written as the pass goes, with the added entries' lines
 * inserted at the end (their physical keys are only known once stored) by moving the bytes after
 * each one right, in place. Sized from the base manifest's length, so the bytes are held once
 * (concatenating pieces would briefly hold them twice); untouched capacity costs no memory.
 */
class ManifestBuffer {
  private buf: Buffer | undefined;
  private used = 0;
  private pending = '';
  private readonly slots: { at: number; entry: ManifestEntry }[] = [];

  constructor(
    private readonly sizeHint: () => number | undefined,
    /** Told the bytes allocated (both buffers while growing), before they are. */
    private readonly memory: (bytes: number) => void,
  ) {}

  write(text: string): void {
    this.pending += text;
    if (this.pending.length >= BATCH) this.flush();
  }

  /** A line's bytes as read, and its "\n". */
  writeLine(line: Uint8Array): void {
    this.flush();
    const buf = this.reserve(this.used + line.length + 1);
    buf.set(line, this.used);
    this.used += line.length;
    buf[this.used++] = 0x0a;
  }

  /** The place of an added entry. */
  slot(entry: ManifestEntry): void {
    this.flush();
    this.slots.push({ at: this.used, entry });
  }

  private flush(): void {
    if (!this.pending) return;
    const text = this.pending;
    this.pending = '';
    // UTF-8 takes at most 3 bytes per UTF-16 unit; counted exactly only when that might not fit.
    const room = (this.buf?.length ?? 0) - this.used;
    const buf = this.reserve(this.used + (text.length * 3 <= room ? 0 : Buffer.byteLength(text, 'utf8')));
    this.used += buf.write(text, this.used, 'utf8');
  }

  /**
   * Between batches: when the buffer is nearly full, grows it ahead of need, copying in pieces and
   * giving the event loop back between them (growing a 100 MiB buffer at once touches 150 MiB of new
   * memory, a pause of a second on slow machines). Nothing writes while it runs: the merge awaits it.
   */
  async keepRoom(): Promise<void> {
    this.flush();
    const buf = this.buf;
    if (!buf || buf.length - this.used > GROW_AHEAD) return;
    const grown = Math.ceil(buf.length * 1.5);
    this.memory(buf.length + grown);
    const next = Buffer.allocUnsafe(grown);
    for (let at = 0; at < this.used; at += GROW_PIECE) {
      buf.copy(next, at, at, Math.min(this.used, at + GROW_PIECE));
      const turn = yieldIfBusy();
      if (turn) await turn;
    }
    this.buf = next;
    this.memory(grown);
  }

  /** The buffer, with room for `size` bytes in all. */
  private reserve(size: number): Buffer {
    // Allocated at the first write: the base's length is known once its GET has answered.
    if (!this.buf) {
      const first = Math.max(BATCH, (this.sizeHint() ?? 0) + (1 << 20));
      this.memory(first);
      this.buf = Buffer.allocUnsafe(first);
    }
    const buf = this.buf;
    if (size <= buf.length) return buf;
    // A base written more compactly than quilt3 writes grows when written again: count it.
    const grown = Math.max(size, Math.ceil(buf.length * 1.5));
    this.memory(buf.length + grown);
    const next = Buffer.allocUnsafe(grown);
    buf.copy(next, 0, 0, this.used);
    this.buf = next;
    this.memory(grown);
    return next;
  }

  finish(): Buffer {
    this.flush();
    const lines = this.slots.map((s) => Buffer.from(entryLine(s.entry), 'utf8'));
    let shift = lines.reduce((n, l) => n + l.length, 0);
    const buf = this.reserve(this.used + shift);
    // Last slot first: the bytes after slot i move right by the lines of slots 0..i, then line i
    // goes just before them.
    let end = this.used;
    this.used += shift;
    for (let i = this.slots.length - 1; i >= 0; i--) {
      const at = this.slots[i]!.at;
      const line = lines[i]!;
      buf.copyWithin(at + shift, at, end);
      shift -= line.length;
      line.copy(buf, at + shift);
      end = at;
    }
    this.slots.length = 0;
    return buf.subarray(0, this.used);
  }
}

/**
 * The revision `header` + (base entries - removed - replaced) + added, as topHash and
 * manifestLines would compute it from the whole list. `base` is the base manifest's records (its
 * header is skipped) in batches, with their lines as read where known (readManifestLines), which
 * are then copied for unchanged entries. Throws BaseNotInWalkOrder when the base is out of order, unless
 * `sorted` says the caller sorted it (then duplicates reach the hasher, which names them).
 */
export async function mergeManifest(
  header: ManifestHeader,
  base: AsyncIterable<readonly (ManifestRecord | RecordWithLine)[]> | Iterable<readonly (ManifestRecord | RecordWithLine)[]>,
  added: readonly ManifestEntry[],
  removes: readonly string[],
  opts: { listing?: boolean; sorted?: boolean; sizeHint?: () => number | undefined; memory?: ReadMemory } = {},
): Promise<MergedRevision> {
  const adds = [...added].sort((a, b) => compareWalkOrder(a.logical_key, b.logical_key));
  const replaced = new Set(adds.map((e) => e.logical_key));
  const removals = new Removals(removes);
  const hasher = new TopHasher(header);
  // What the merge holds: the new manifest's buffer, and the listing when one is asked for.
  let bufferBytes = 0;
  let listingBytes = 0;
  const report = () => opts.memory?.hold(bufferBytes + listingBytes);
  // Room for the base's bytes, a new header and the added lines (it grows if that is not enough).
  const out = new ManifestBuffer(
    () => (opts.sizeHint?.() ?? 0) + 2048 * adds.length,
    (bytes) => {
      bufferBytes = bytes;
      report();
    },
  );
  out.write(headerLine(header));
  let entries = 0;
  let totalSize = 0;
  const listing = opts.listing ? ([] as { logical_key: string; size: number }[]) : undefined;
  const count = (e: ManifestEntry) => {
    hasher.add(e); // also checks walk order, duplicates and file/directory clashes
    entries++;
    totalSize += e.size;
    if (listing) {
      listing.push({ logical_key: e.logical_key, size: e.size });
      listingBytes += 2 * e.logical_key.length + 64;
      if ((listing.length & 1023) === 0) report();
    }
  };
  const emitAdded = (e: ManifestEntry) => {
    count(e);
    out.slot(e);
  };
  let next = 0;
  let prev: string | undefined;
  for await (const batch of base) {
    for (const item of batch) {
      const [rec, bytes, text] = Array.isArray(item) ? (item as RecordWithLine) : [item as ManifestRecord, undefined, undefined];
      if (!isManifestEntry(rec)) continue;
      const key = rec.logical_key;
      if (!opts.sorted && prev !== undefined && compareWalkOrder(prev, key) >= 0) throw new BaseNotInWalkOrder(key);
      prev = key;
      while (next < adds.length && compareWalkOrder(adds[next]!.logical_key, key) < 0) emitAdded(adds[next++]!);
      // Matched first, so every remove argument that names a replaced key still counts as found.
      const removed = removals.match(key);
      if (removed || replaced.has(key)) continue;
      count(rec);
      if (bytes && isEntryLineOf(rec, text!)) out.writeLine(bytes);
      else out.write(entryLine(rec));
    }
    // Hashing and encoding is the event loop's work: give it back now and then, and grow between batches.
    const turn = yieldIfBusy();
    if (turn) await turn;
    await out.keepRoom();
  }
  while (next < adds.length) emitAdded(adds[next++]!);
  const hash = hasher.digest();
  const merged: MergedRevision = {
    hash,
    entries,
    totalSize,
    missing: removals.missing(),
    encode: () => out.finish(),
  };
  if (listing) merged.listing = listing;
  return merged;
}

/** A stored base revision opened for a merge: its header now, its entries when merged. */
export interface StoredBase {
  header: ManifestHeader;
  /**
   * mergeManifest of `header`, the base's entries and the changes: the base streamed with its lines
   * or, when it is not in walk order (not written by quilt3), loaded and sorted in memory as every
   * revision was before. Call once. The bytes it holds stay reserved until `release` (after the
   * upload); on a failure here they are released at once.
   */
  merge(
    header: ManifestHeader,
    added: readonly ManifestEntry[],
    removes: readonly string[],
    opts?: { listing?: boolean },
  ): Promise<MergedRevision & { release(): void }>;
  /** Closes the base and releases what it holds, when merge is not reached. */
  close(): Promise<void>;
}

/**
 * Opens the stored revision `hash` of `name` in `bucket` for mergeManifest. Streaming the base takes
 * a slot of the caller's for manifest work (manifest-work.ts), and what the merge holds counts in the
 * process's memory for package data (memory.ts): the new manifest's bytes (the base's length before the base
 * is read, then the buffer as allocated, growth included) and, for a base out of walk order, its
 * loaded entries; both are held until `release` (after the upload). With `hold`, one GET gives the
 * header now and the entries at the merge, kept open in between (for callers whose work in between
 * does no I/O: one round trip less); without, the header is read now (its first line only) and the
 * base again at the merge.
 */
export async function openStored(reg: RegistryStore, name: string, hash: string, { hold }: { hold: boolean }): Promise<StoredBase> {
  const ctx = reg.ctx;
  const bucket = reg.id;
  const lease = () =>
    packageMemory.lease({
      what: `Updating ${name}@${hash.slice(0, 12)}`,
      tooLargeHint: 'package_update rewrites a whole manifest in memory: update a package this large with quilt3 on a machine with enough memory.',
    });
  // The slot is taken when the base is streamed (at once with `hold`, else at the merge), so the
  // work in between (hashing the added sources, which may take long) does not hold it.
  let slot: (() => void) | undefined;
  const takeSlot = async () => {
    slot ??= await manifestWorkSlots.slot(ctx.principal.key, callSignal());
  };
  const buffer = lease();
  const loaded = lease();
  const release = () => {
    buffer.release();
    loaded.release();
    slot?.();
  };
  let baseSize: number | undefined;
  const open = () =>
    streamManifestLines(reg, hash, {
      onSize: (n) => {
        // Before a byte is read: the new manifest will be about as large as the base.
        buffer.hold(n + (1 << 20));
        baseSize = n;
      },
    });
  let held: { stream: AsyncGenerator<RecordWithLine[]>; first: RecordWithLine[] } | undefined;
  let header: ManifestHeader;
  try {
    if (hold) {
      await takeSlot();
      const stream = open();
      try {
        const first = await stream.next();
        if (first.done || !first.value[0]) throw new ToolError('upstream_error', `The manifest of revision ${hash} in ${bucket} is empty.`);
        held = { stream, first: first.value };
        header = first.value[0][0] as ManifestHeader;
      } catch (err) {
        await stream.return(undefined);
        throw err;
      }
    } else {
      header = await readManifestHeader(reg, hash);
    }
  } catch (err) {
    release();
    throw err;
  }
  const entries = async function* (): AsyncGenerator<RecordWithLine[]> {
    if (!held) return yield* open();
    // The header batch again: mergeManifest skips the header.
    yield held.first;
    yield* held.stream;
  };
  const merge = { sizeHint: () => baseSize, memory: buffer };
  return {
    header,
    async merge(head, added, removes, opts = {}) {
      try {
        await takeSlot();
        try {
          return { ...(await mergeManifest(head, entries(), added, removes, { ...opts, ...merge })), release };
        } catch (err) {
          if (!(err instanceof BaseNotInWalkOrder)) throw err;
          ctx.logger.debug('base manifest not in walk order: merging in memory', { bucket, hash });
          // Its entries as objects take a few times its bytes.
          const old = await loadManifest(reg, hash, { onSize: (n) => loaded.hold(3 * n) });
          await sortInTurns(old.entries, (x, y) => compareWalkOrder(x.logical_key, y.logical_key));
          return { ...(await mergeManifest(head, inBatches(old.entries), added, removes, { ...opts, ...merge, sorted: true })), release };
        }
      } catch (err) {
        release();
        throw err;
      }
    },
    async close() {
      await held?.stream.return(undefined);
      release();
    },
  };
}
