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
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { loadManifest, readManifestHeader, streamManifestLines } from './registry.js';

/**
 * package_update holds each new manifest whole until it is uploaded (its key is its top hash, known
 * at the end). A process merges at most this many bytes of base manifests at once, all calls
 * together, so that no caller (in JWT mode, a tenant with a manifest as large as it cares to write)
 * can take the memory the process shares with everyone else.
 */
export const MANIFEST_MEMORY_BYTES = 512 * 1024 * 1024;

const mib = (bytes: number) => `${Math.ceil(bytes / 1024 / 1024)} MiB`;

/** Bytes of manifests being merged, reserved before a merge holds them and released after. */
export class ManifestMemory {
  private used = 0;

  constructor(readonly total: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Reserves `bytes` for a manifest of `what`, or refuses; the function returned releases them (once). */
  reserve(bytes: number, what: string): () => void {
    if (bytes > this.total) {
      throw new ToolError(
        'too_large',
        `Updating ${what} needs ${mib(bytes)} of memory for its manifest: package_update rewrites a whole manifest in memory, and this server takes at most ${mib(this.total)} (a manifest of about ${Math.floor((this.total / 300 / 1e6) * 10) / 10} million entries).`,
        'Update a package this large with quilt3 on a machine with enough memory.',
      );
    }
    if (this.used + bytes > this.total) {
      throw new ToolError(
        'throttled',
        `Other package updates on this server are holding ${mib(this.used)} of its ${mib(this.total)} for manifests; ${what} needs ${mib(bytes)}.`,
        'Retry in a minute.',
      );
    }
    this.used += bytes;
    let held = true;
    return () => {
      if (held) this.used -= bytes;
      held = false;
    };
  }
}

export const manifestMemory = new ManifestMemory(MANIFEST_MEMORY_BYTES);

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

  constructor(private readonly sizeHint: () => number | undefined) {}

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

  /** The buffer, with room for `size` bytes in all. */
  private reserve(size: number): Buffer {
    // Allocated at the first write: the base's length is known once its GET has answered.
    const buf = (this.buf ??= Buffer.allocUnsafe(Math.max(BATCH, (this.sizeHint() ?? 0) + (1 << 20))));
    if (size <= buf.length) return buf;
    const next = Buffer.allocUnsafe(Math.max(size, Math.ceil(buf.length * 1.5)));
    buf.copy(next, 0, 0, this.used);
    this.buf = next;
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
  opts: { listing?: boolean; sorted?: boolean; sizeHint?: () => number | undefined } = {},
): Promise<MergedRevision> {
  const adds = [...added].sort((a, b) => compareWalkOrder(a.logical_key, b.logical_key));
  const replaced = new Set(adds.map((e) => e.logical_key));
  const removals = new Removals(removes);
  const hasher = new TopHasher(header);
  // Room for the base's bytes, a new header and the added lines (it grows if that is not enough).
  const out = new ManifestBuffer(() => (opts.sizeHint?.() ?? 0) + 2048 * adds.length);
  out.write(headerLine(header));
  let entries = 0;
  let totalSize = 0;
  const listing = opts.listing ? ([] as { logical_key: string; size: number }[]) : undefined;
  const count = (e: ManifestEntry) => {
    hasher.add(e); // also checks walk order, duplicates and file/directory clashes
    entries++;
    totalSize += e.size;
    listing?.push({ logical_key: e.logical_key, size: e.size });
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
 * Opens the stored revision `hash` of `name` in `bucket` for mergeManifest. The memory the merge
 * holds is reserved in manifestMemory from the base's length before the base is read. With `hold`,
 * one GET gives the header now and the entries at the merge, kept open in between (for callers
 * whose work in between does no I/O: one round trip less); without, the header is read now (its
 * first line only) and the base again at the merge.
 */
export async function openStored(ctx: RuntimeContext, bucket: string, name: string, hash: string, { hold }: { hold: boolean }): Promise<StoredBase> {
  const releases: Array<() => void> = [];
  const release = () => releases.forEach((r) => r());
  const reserve = (bytes: number) => releases.push(manifestMemory.reserve(bytes, `${name}@${hash.slice(0, 12)}`));
  let baseSize: number | undefined;
  const open = () =>
    streamManifestLines(ctx, bucket, hash, {
      onSize: (n) => {
        reserve(n);
        baseSize = n;
      },
    });
  let held: { stream: AsyncGenerator<RecordWithLine[]>; first: RecordWithLine[] } | undefined;
  let header: ManifestHeader;
  if (hold) {
    const stream = open();
    try {
      const first = await stream.next();
      if (first.done || !first.value[0]) throw new ToolError('upstream_error', `The manifest of revision ${hash} in ${bucket} is empty.`);
      held = { stream, first: first.value };
      header = first.value[0][0] as ManifestHeader;
    } catch (err) {
      await stream.return(undefined);
      release();
      throw err;
    }
  } else {
    header = await readManifestHeader(ctx, bucket, hash);
  }
  const entries = async function* (): AsyncGenerator<RecordWithLine[]> {
    if (!held) return yield* open();
    // The header batch again: mergeManifest skips the header.
    yield held.first;
    yield* held.stream;
  };
  const merge = { sizeHint: () => baseSize };
  return {
    header,
    async merge(head, added, removes, opts = {}) {
      try {
        try {
          return { ...(await mergeManifest(head, entries(), added, removes, { ...opts, ...merge })), release };
        } catch (err) {
          if (!(err instanceof BaseNotInWalkOrder)) throw err;
          ctx.logger.debug('base manifest not in walk order: merging in memory', { bucket, hash });
          // Its entries as objects take a few times its bytes.
          const old = await loadManifest(ctx, bucket, hash, { onSize: (n) => reserve(3 * n) });
          old.entries.sort((x, y) => compareWalkOrder(x.logical_key, y.logical_key));
          return { ...(await mergeManifest(head, [old.entries], added, removes, { ...opts, ...merge, sorted: true })), release };
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
