/**
 * Quilt package manifests (JSON Lines under `.quilt/packages/<top hash>`): the model, a streaming
 * reader, the writer and the top hash, all byte-compatible with quilt3.
 */
import { isUtf8 } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { ToolError } from '../errors.js';
import { yieldIfBusy } from '../turns.js';
import { compareCodePointsAt, fileKeys, parsePyJson, PyFloat, pyDumps, pyDumpsForFile, type PyJson } from './pyjson.js';

export interface EntryHash {
  type: 'sha2-256-chunked' | 'SHA256';
  value: string;
}

export interface ManifestEntry {
  logical_key: string;
  physical_keys: string[];
  size: number;
  hash: EntryHash;
  /** The entry's full `meta` field (user metadata sits in `meta.user_meta`). */
  meta?: { [k: string]: PyJson } | null | undefined;
}

export interface ManifestHeader {
  version: string;
  message?: string | null;
  /** null when quilt3 was given `meta=None` (e.g. `set_dir('/', path)`); kept so the hash matches. */
  user_meta?: { [k: string]: PyJson } | null;
  workflow?: PyJson;
  [k: string]: PyJson | undefined;
}

/** quilt3 refuses to write a manifest line larger than this (S3 Select's record limit). */
export const MAX_RECORD_BYTES = 1_000_000;

/**
 * The longest manifest line read: 1 MiB, the record limit of S3 Select (which the Quilt catalog reads
 * manifests with), a little above what quilt3 writes. A line is parsed in one piece on the event
 * loop every tenant shares, and hostile shapes (hundreds of thousands of floats or tiny arrays) cost
 * up to a few hundred milliseconds per MiB, so a longer line is refused before it is held.
 */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Memory a reader reports for what it holds at the moment (a MemoryLease, memory.ts). */
export interface ReadMemory {
  hold(bytes: number): void;
}

/** Bytes of memory a line's record takes once parsed, per byte of the line (strings and objects). */
export const PARSED_BYTES_PER_LINE_BYTE = 4;

type PyObject = { [k: string]: PyJson };

function isObject(v: PyJson | undefined): v is PyObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

// ---------------------------------------------------------------------------------------------
// Logical keys and walk order

const BAD_KEY = /^\/|\/$|\/\/|(?:^|\/)\.\.?(?:\/|$)/;

/** A key quilt3 can place in its package tree: no empty, `.` or `..` segments, no leading/trailing `/`. */
export function validateLogicalKey(key: string): string {
  const bad = (why: string): never => {
    throw new ToolError('invalid_input', `Logical key ${JSON.stringify(key)} ${why}.`, 'Use a relative path like "data/file.csv".');
  };
  // One regex pass for the common, valid case; the checks below only run to name the problem.
  if (typeof key === 'string' && key !== '' && !BAD_KEY.test(key)) return key;
  if (typeof key !== 'string' || key === '') bad('is empty');
  if (key.startsWith('/')) bad('starts with "/"');
  if (key.endsWith('/')) bad('ends with "/"');
  for (const seg of key.split('/')) {
    if (seg === '') bad('has an empty path segment ("//")');
    if (seg === '.' || seg === '..') bad(`has a "${seg}" path segment`);
  }
  return key;
}

/**
 * quilt3's walk order: the tree walked with children sorted by name (code point) at each level,
 * i.e. comparing segment by segment, so `/` sorts below every character (`a/b` before `a-c`).
 */
export function compareWalkOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 0x2f) return -1;
    if (cb === 0x2f) return 1;
    if (ca < 0xd800 && cb < 0xd800) return ca < cb ? -1 : 1;
    return compareCodePointsAt(a, b, i);
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Checks that keys arrive in strict walk order and that no key is both a file and a directory. */
class WalkOrderCheck {
  private prev: string | undefined;

  next(key: string): void {
    const prev = this.prev;
    this.prev = key;
    if (prev === undefined) return;
    const c = compareWalkOrder(prev, key);
    if (c === 0) throw new ToolError('invalid_input', `Logical key ${JSON.stringify(key)} appears twice.`, 'Each logical key may appear once in a package.');
    if (c > 0) throw new ToolError('invalid_input', `Logical key ${JSON.stringify(key)} comes after ${JSON.stringify(prev)}, out of walk order.`, 'Sort entries with compareWalkOrder first (topHash does this).');
    // All keys under "a/" directly follow "a" in walk order, so a clash shows up here.
    if (key.startsWith(`${prev}/`)) {
      throw new ToolError('invalid_input', `Logical key ${JSON.stringify(prev)} is a file, but ${JSON.stringify(key)} uses it as a directory.`, 'Rename one of them.');
    }
  }
}

function sortedByWalk(entries: readonly ManifestEntry[]): ManifestEntry[] {
  return [...entries].sort((x, y) => compareWalkOrder(x.logical_key, y.logical_key));
}

// ---------------------------------------------------------------------------------------------
// Top hash

function headerForHash(header: ManifestHeader): PyObject {
  // A spread copy keeps an own "__proto__" key as data and the header's source key order (KEY_ORDER).
  const out: { [k: string]: PyJson | undefined } = { ...header };
  // quilt3 drops top_hash on load; undefined means "absent" on our side.
  delete out.top_hash;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as PyObject;
}

/**
 * pyDumps of `{hash: {type, value}, logical_key, meta (null -> {}), size}`, written out with the
 * keys already in sorted order (hot path: once per entry of every revision written).
 */
function entryForHash(e: ManifestEntry): string {
  return `{"hash":{"type":${pyDumps(e.hash.type)},"value":${pyDumps(e.hash.value)}},"logical_key":${pyDumps(e.logical_key)},"meta":${pyDumps(e.meta ?? {})},"size":${pyDumps(e.size)}}`;
}

/** quilt3's `_calculate_top_hash`, fed one entry at a time (in walk order). */
export class TopHasher {
  private readonly h: Hash = createHash('sha256');
  private readonly order = new WalkOrderCheck();
  // Entries are a few hundred bytes: hashed in ~64 KiB batches rather than one update each.
  private pending = '';

  constructor(header: ManifestHeader) {
    this.h.update(pyDumps(headerForHash(header)));
  }

  add(entry: ManifestEntry): void {
    this.order.next(entry.logical_key);
    this.pending += entryForHash(entry);
    if (this.pending.length >= 65536) this.flush();
  }

  private flush(): void {
    // pyDumps output is ASCII (ensure_ascii), so latin1 encodes it as UTF-8 would, only faster.
    this.h.update(this.pending, 'latin1');
    this.pending = '';
  }

  /** 64 hex digits. */
  digest(): string {
    this.flush();
    return this.h.digest('hex');
  }
}

export function topHash(header: ManifestHeader, entries: readonly ManifestEntry[]): string {
  const h = new TopHasher(header);
  for (const e of sortedByWalk(entries)) h.add(e);
  return h.digest();
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * A header with keys in the order quilt3 gives a new package: version, user_meta (if set),
 * workflow (if any), then message, which quilt3 always writes (null when none was given).
 */
export function newManifestHeader(opts: { message?: string | null; user_meta?: PyObject | null; workflow?: PyJson }): ManifestHeader {
  const h: ManifestHeader = { version: 'v0' };
  if (opts.user_meta !== undefined) h.user_meta = opts.user_meta;
  // quilt3 drops a falsy workflow rather than writing null.
  if (opts.workflow !== undefined && opts.workflow !== null) h.workflow = opts.workflow;
  h.message = opts.message ?? null;
  return h;
}

/** The two hash fields in the entry's order, as pyDumpsForFile would write them. */
function hashLine(h: EntryHash): string {
  const type = pyDumpsForFile(h.type);
  const value = pyDumpsForFile(h.value);
  // quilt3 writes back the hash dict in the order it read it.
  for (const k in h) return k === 'value' ? `{"value": ${value}, "type": ${type}}` : `{"type": ${type}, "value": ${value}}`;
  return `{"type": ${type}, "value": ${value}}`;
}

function checkRecordSize(line: string, what: string): void {
  if (line.length * 3 <= MAX_RECORD_BYTES) return;
  const bytes = Buffer.byteLength(line, 'utf8');
  if (bytes > MAX_RECORD_BYTES) {
    throw new ToolError(
      'too_large',
      `The manifest line for ${what} is ${bytes} bytes; quilt3 allows at most ${MAX_RECORD_BYTES}.`,
      'Keep metadata under 1 MB per entry and for the package.',
    );
  }
}

/**
 * The manifest's JSONL lines (each ending in "\n") as quilt3 writes them: header keys in their
 * insertion order (see newManifestHeader) or, for a header read from a manifest, its source order,
 * without top_hash; then entries in walk order with keys logical_key, physical_keys, size, hash,
 * meta; metadata keys in the order they were read (see pyjson's KEY_ORDER); `", "`/`": "`
 * separators, UTF-8 left unescaped, floats in Python's repr so they read back as floats.
 */
export function* manifestLines(header: ManifestHeader, entries: readonly ManifestEntry[]): Generator<string> {
  yield headerLine(header);
  const order = new WalkOrderCheck();
  for (const e of sortedByWalk(entries)) {
    validateLogicalKey(e.logical_key);
    order.next(e.logical_key);
    yield entryLine(e);
  }
}

/** The header's manifest line (see manifestLines), ending in "\n". */
export function headerLine(header: ManifestHeader): string {
  const head = pyDumpsForFile(headerForHash(header));
  checkRecordSize(head, 'package metadata');
  return `${head}\n`;
}

/** One entry's manifest line (see manifestLines), ending in "\n"; the caller keeps walk order. */
export function entryLine(e: ManifestEntry): string {
  validateLogicalKey(e.logical_key);
  // pyDumpsForFile of {logical_key, physical_keys, size, hash, meta}, written out key by key.
  const line = `{"logical_key": ${pyDumpsForFile(e.logical_key)}, "physical_keys": ${pyDumpsForFile(e.physical_keys)}, "size": ${pyDumpsForFile(e.size)}, "hash": ${hashLine(e.hash)}, "meta": ${pyDumpsForFile(e.meta ?? {})}}`;
  checkRecordSize(line, `entry with logical key ${JSON.stringify(e.logical_key)}`);
  return `${line}\n`;
}

/**
 * Whether `text` (a line without its "\n") is exactly entryLine(e) without its "\n", for an entry
 * parsed from that line: checked in place, without encoding the entry, so that package_update can
 * copy the lines quilt3 wrote. May answer false for some lines that are (those with a "\\": their
 * strings would need the full encoder to compare); never true for one that is not.
 */
export function isEntryLineOf(e: ManifestEntry, text: string): boolean {
  // Without a backslash in the line, no string parsed from it holds a character quilt3 escapes
  // (quote, backslash, control characters; lone surrogates cannot come from UTF-8), so each one is
  // written as itself between quotes.
  if (text.indexOf('\\') !== -1 || text.length * 3 > MAX_RECORD_BYTES) return false;
  const m = new LineMatch(text);
  if (!m.lit('{"logical_key": ') || !m.str(e.logical_key) || !m.lit(', "physical_keys": [')) return false;
  for (let i = 0; i < e.physical_keys.length; i++) if ((i > 0 && !m.lit(', ')) || !m.str(e.physical_keys[i]!)) return false;
  if (!m.lit('], "size": ') || !m.lit(pyDumpsForFile(e.size)) || !m.lit(', "hash": {')) return false;
  const h = e.hash;
  let valueFirst = false;
  for (const k in h) {
    valueFirst = k === 'value';
    break;
  }
  const hashOk = valueFirst
    ? m.lit('"value": ') && m.str(h.value) && m.lit(', "type": ') && m.str(h.type)
    : m.lit('"type": ') && m.str(h.type) && m.lit(', "value": ') && m.str(h.value);
  return hashOk && m.lit('}, "meta": ') && m.value(e.meta ?? {}) && m.lit('}') && m.done();
}

/** Compares values with a line as pyDumpsForFile would write them, from left to right. */
class LineMatch {
  private pos = 0;
  constructor(private readonly text: string) {}

  lit(s: string): boolean {
    if (!this.text.startsWith(s, this.pos)) return false;
    this.pos += s.length;
    return true;
  }

  /** A string with nothing to escape (see isEntryLineOf). */
  str(s: string): boolean {
    const t = this.text;
    const at = this.pos;
    if (t.charCodeAt(at) !== 0x22 || t.charCodeAt(at + 1 + s.length) !== 0x22 || !t.startsWith(s, at + 1)) return false;
    this.pos = at + s.length + 2;
    return true;
  }

  value(v: PyJson): boolean {
    if (typeof v === 'string') return this.str(v);
    if (v === null || typeof v !== 'object' || v instanceof PyFloat) return this.lit(pyDumpsForFile(v));
    if (Array.isArray(v)) {
      if (!this.lit('[')) return false;
      for (let i = 0; i < v.length; i++) if ((i > 0 && !this.lit(', ')) || !this.value(v[i]!)) return false;
      return this.lit(']');
    }
    if (!this.lit('{')) return false;
    const keys = fileKeys(v);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if ((i > 0 && !this.lit(', ')) || !this.str(k) || !this.lit(': ') || !this.value(v[k]!)) return false;
    }
    return this.lit('}');
  }

  done(): boolean {
    return this.pos === this.text.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

const HASH_TYPES = new Set(['sha2-256-chunked', 'SHA256']);

function lineError(line: number, what: string): ToolError {
  return new ToolError('invalid_input', `Manifest line ${line}: ${what}.`, 'The manifest is damaged or not a Quilt manifest; check its source.');
}

function parseHeader(v: PyJson, line: number): ManifestHeader {
  if (!isObject(v)) throw lineError(line, 'the header is not a JSON object');
  if ('logical_key' in v) throw lineError(line, 'expected the package header, found an entry (the header line is missing)');
  if (typeof v.version !== 'string') throw lineError(line, 'the header has no "version" string');
  if (v.message !== undefined && v.message !== null && typeof v.message !== 'string') throw lineError(line, '"message" is not a string');
  if (v.user_meta !== undefined && v.user_meta !== null && !isObject(v.user_meta)) throw lineError(line, '"user_meta" is not an object');
  // quilt3 ignores a stored top_hash (obsolete since 2018). The rest copy keeps KEY_ORDER, so the
  // header's keys are written back in their source order.
  const { top_hash: _ignored, ...rest } = v;
  return rest as ManifestHeader;
}

/** An entry, or null for a directory-metadata line (no physical_keys), which quilt3 does not hash. */
function parseEntry(v: PyJson, line: number): ManifestEntry | null {
  if (!isObject(v)) throw lineError(line, 'the entry is not a JSON object');
  const lk = v.logical_key;
  if (typeof lk !== 'string') throw lineError(line, '"logical_key" is missing or not a string');
  const pks = v.physical_keys;
  if (pks === undefined || pks === null || (Array.isArray(pks) && pks.length === 0)) return null;
  try {
    validateLogicalKey(lk);
  } catch (err) {
    throw lineError(line, (err as Error).message.replace(/\.$/, ''));
  }
  if (!Array.isArray(pks)) throw lineError(line, `${entryName(lk)}: "physical_keys" is not a list of strings`);
  for (const p of pks) if (typeof p !== 'string') throw lineError(line, `${entryName(lk)}: "physical_keys" is not a list of strings`);
  const size = v.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw lineError(line, `${entryName(lk)}: "size" is not a non-negative integer`);
  const hash = v.hash;
  if (!isObject(hash)) throw lineError(line, `${entryName(lk)}: "hash" is missing or not an object`);
  const { type, value } = hash;
  if (typeof type !== 'string' || !HASH_TYPES.has(type)) {
    throw lineError(line, `${entryName(lk)}: hash type ${JSON.stringify(toDisplay(type))} is not "sha2-256-chunked" or "SHA256"`);
  }
  if (typeof value !== 'string') throw lineError(line, `${entryName(lk)}: hash value is not a string`);
  // Extra hash fields would be part of quilt3's top hash; refuse rather than hash them wrongly.
  const hashKeys = Object.keys(hash);
  if (hashKeys.length !== 2) throw lineError(line, `${entryName(lk)}: hash has fields other than "type" and "value"`);
  const meta = v.meta;
  if (meta !== undefined && meta !== null && !isObject(meta)) throw lineError(line, `${entryName(lk)}: "meta" is not an object`);
  const t = type as EntryHash['type'];
  // Kept in the source order, which the writer repeats (see hashForFile).
  const entryHash: EntryHash = hashKeys[0] === 'value' ? { value, type: t } : { type: t, value };
  const entry: ManifestEntry = { logical_key: lk, physical_keys: pks as string[], size, hash: entryHash };
  if (meta !== undefined) entry.meta = meta;
  return entry;
}

/** How errors name an entry (built only when something is wrong: parseEntry runs for every line). */
function entryName(key: string): string {
  return `entry ${JSON.stringify(key)}`;
}

function toDisplay(v: PyJson | undefined): string {
  return typeof v === 'string' ? v : v === undefined ? 'missing' : typeof v;
}

function parseLine(text: string, line: number): PyJson {
  try {
    return parsePyJson(text);
  } catch (err) {
    throw lineError(line, `not valid JSON (${(err as Error).message})`);
  }
}

/** Turns manifest lines, one at a time, into the header and entries, tracking line numbers. */
class LineReader {
  lineNo = 0;
  private sawHeader = false;
  private blankLine = 0;

  /** What to yield for one line (without its "\n"), or null. */
  line(raw: string): ManifestHeader | ManifestEntry | null {
    const lineNo = ++this.lineNo;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') {
      if (this.blankLine === 0) this.blankLine = lineNo;
      return null;
    }
    // Blank lines are only tolerated at the end (a trailing newline or two).
    if (this.blankLine !== 0) throw lineError(this.blankLine, 'blank line inside the manifest');
    const v = parseLine(text, lineNo);
    if (!this.sawHeader) {
      this.sawHeader = true;
      return parseHeader(v, lineNo);
    }
    return parseEntry(v, lineNo);
  }

  finish(): void {
    if (!this.sawHeader) throw new ToolError('invalid_input', 'The manifest is empty: it has no header line.', 'Check that the top hash names a real package revision.');
  }
}

export type ManifestRecord = ManifestHeader | ManifestEntry;

/**
 * A record and its line as read (without "\r\n"): its bytes, which may share memory with the chunk
 * they came from, and its text.
 */
export type RecordWithLine = readonly [ManifestRecord, Buffer, string];

type Each = (rec: ManifestRecord, bytes: Buffer, text: string) => void;

/** Bytes handled in one batch before the event loop may be given back (a manifest line is ~200). */
const SLICE_BYTES = 16 * 1024;

/** Lines at least this long are counted in the reader's memory (shorter ones are a chunk's worth at most). */
const LONG_LINE_BYTES = 64 * 1024;

const asBuffer = (chunk: Uint8Array): Buffer => (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));

/** The bytes without a UTF-8 byte order mark at their start, as TextDecoder reads a stream. */
const withoutBom = (b: Buffer): Buffer => (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b);

/**
 * Splits byte chunks into lines (chunks may split lines and UTF-8 characters anywhere), checks and
 * decodes each line on its own and hands it to a LineReader. Working on bytes keeps each line's
 * bytes at hand, so package_update can copy unchanged lines instead of encoding them again.
 */
class ManifestSplitter {
  readonly reader = new LineReader();
  // Pieces of a line that continues in the next chunk; joined once its end arrives.
  private carry: Buffer[] = [];
  private carried = 0;
  private atStart = true;
  /** Bytes of long lines parsed into the batch being built (a batch is handed on per chunk). */
  private parsedLong = 0;

  constructor(private readonly memory: ReadMemory | undefined) {}

  private hold(piece: Buffer): void {
    this.carried += piece.length;
    this.tooLong(this.carried);
    this.carry.push(piece);
    // A line spread over chunks: held as pieces, then joined, decoded and parsed.
    if (this.carried >= LONG_LINE_BYTES) this.report();
  }

  /** Tells the memory what a long line in the making and the batch's long records take. */
  private report(): void {
    this.memory?.hold(this.carried * (2 + PARSED_BYTES_PER_LINE_BYTE) + this.parsedLong * PARSED_BYTES_PER_LINE_BYTE);
  }

  /** A new chunk: the previous batch was handed on (what the consumer keeps, it counts itself). */
  private newBatch(): void {
    if (this.parsedLong === 0) return;
    this.parsedLong = 0;
    this.report();
  }

  /** Refuses a line before it is held whole: a manifest of one endless line would take the process's memory. */
  private tooLong(bytes: number): void {
    if (bytes > MAX_LINE_BYTES) {
      throw lineError(
        this.reader.lineNo + 1,
        `longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB (quilt3 writes at most ${MAX_RECORD_BYTES / 1e6} MB per line, and the Quilt catalog reads at most 1 MiB)`,
      );
    }
  }

  private takeCarry(last: Buffer): Buffer {
    this.tooLong(this.carried + last.length);
    this.carry.push(last);
    const line = Buffer.concat(this.carry);
    this.carry = [];
    this.carried = 0;
    return line;
  }

  push(chunk: Uint8Array, each: Each): void {
    this.newBatch();
    let bytes = asBuffer(chunk);
    if (this.atStart) {
      // A byte order mark at the very start is skipped (once 3 bytes are in).
      if (this.carry.length) bytes = this.takeCarry(bytes);
      if (bytes.length < 3) {
        if (bytes.length) this.hold(Buffer.from(bytes));
        return;
      }
      this.atStart = false;
      bytes = withoutBom(bytes);
    }
    let start = 0;
    let nl: number;
    while ((nl = bytes.indexOf(0x0a, start)) !== -1) {
      let line = bytes.subarray(start, nl);
      if (this.carry.length) line = this.takeCarry(line);
      this.line(line, each);
      start = nl + 1;
    }
    // Copied: the caller may reuse its chunk.
    if (start < bytes.length) this.hold(Buffer.from(bytes.subarray(start)));
  }

  end(each: Each): void {
    if (this.carry.length) {
      const line = this.takeCarry(Buffer.alloc(0));
      this.line(this.atStart ? withoutBom(line) : line, each);
    }
    this.reader.finish();
  }

  private line(bytes: Buffer, each: Each): void {
    this.tooLong(bytes.length);
    if (bytes.length >= LONG_LINE_BYTES) {
      this.parsedLong += bytes.length;
      this.report();
    }
    if (!isUtf8(bytes)) throw lineError(this.reader.lineNo + 1, 'not valid UTF-8');
    const line = bytes.length && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, -1) : bytes;
    const text = line.toString('utf8');
    const rec = this.reader.line(text);
    if (rec) each(rec, line, text);
  }
}

/**
 * The records of a manifest's chunks, each made into a T, in one batch per chunk (one await per
 * chunk rather than per record: a 100,000-entry manifest is ~500 chunks). Records read before a
 * bad line come before its error.
 */
async function* splitManifest<T>(
  chunks: AsyncIterable<Uint8Array>,
  make: (rec: ManifestRecord, bytes: Buffer, text: string) => T,
  memory: ReadMemory | undefined,
): AsyncGenerator<T[]> {
  const split = new ManifestSplitter(memory);
  let out: T[] = [];
  const each: Each = (rec, bytes, text) => void out.push(make(rec, bytes, text));
  let failed = false;
  let error: unknown;
  const run = (step: () => void) => {
    try {
      step();
    } catch (err) {
      failed = true;
      error = err;
    }
  };
  try {
    for await (const chunk of chunks) {
      // A chunk (up to 64 KiB from a socket, more when a stream buffered) in slices, each a batch:
      // the event loop is given back between them once its work passes a few milliseconds.
      for (let at = 0; at < chunk.length; at += SLICE_BYTES) {
        run(() => split.push(at === 0 && chunk.length <= SLICE_BYTES ? chunk : chunk.subarray(at, at + SLICE_BYTES), each));
        if (out.length) yield out;
        out = [];
        if (failed) throw error;
        // The batch was handled (while this generator waited at `yield`): let others run if that took a while.
        const turn = yieldIfBusy();
        if (turn) await turn;
      }
    }
    run(() => split.end(each));
    if (out.length) yield out;
    if (failed) throw error;
  } finally {
    // Done, or the consumer stopped: the reader holds nothing any more.
    memory?.hold(0);
  }
}

/**
 * Streams a manifest: yields the header, then each entry. Byte chunks may split lines and UTF-8
 * characters anywhere. Directory-metadata lines (no physical_keys) are skipped: quilt3 leaves
 * them out of the top hash and this model has no place for them.
 */
export async function* readManifest(chunks: AsyncIterable<Uint8Array>, memory?: ReadMemory): AsyncGenerator<ManifestRecord> {
  for await (const batch of splitManifest(chunks, (rec) => rec, memory)) yield* batch;
}

/**
 * readManifest in batches (one per chunk read): what long loops over a manifest consume, since an
 * await per record (several promises each, more with AsyncLocalStorage active) costs more than
 * handling the record.
 */
export function readManifestBatches(chunks: AsyncIterable<Uint8Array>, memory?: ReadMemory): AsyncGenerator<ManifestRecord[]> {
  return splitManifest(chunks, (rec) => rec, memory);
}

/** readManifest in batches (one per chunk read), each record with its line as read (see RecordWithLine). */
export function readManifestLines(chunks: AsyncIterable<Uint8Array>, memory?: ReadMemory): AsyncGenerator<RecordWithLine[]> {
  return splitManifest(chunks, (rec, bytes, text): RecordWithLine => [rec, bytes, text], memory);
}

/**
 * Walks a manifest's batches (readManifestBatches): the header is returned (undefined when there
 * were no records at all), each entry goes to `onEntry`, in order, without an await per entry.
 */
export async function eachEntry(batches: AsyncIterable<readonly ManifestRecord[]>, onEntry: (e: ManifestEntry) => void): Promise<ManifestHeader | undefined> {
  let header: ManifestHeader | undefined;
  for await (const batch of batches) {
    for (const rec of batch) {
      if (header === undefined) header = rec as ManifestHeader;
      else onEntry(rec as ManifestEntry);
    }
  }
  return header;
}

export function isManifestEntry(v: ManifestHeader | ManifestEntry): v is ManifestEntry {
  return typeof (v as { logical_key?: unknown }).logical_key === 'string';
}

/** Reads a whole manifest held in memory as text. */
export function readManifestText(text: string): { header: ManifestHeader; entries: ManifestEntry[] } {
  const reader = new LineReader();
  const entries: ManifestEntry[] = [];
  let header: ManifestHeader | undefined;
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf('\n', start);
    if (nl === -1) nl = text.length;
    const out = reader.line(text.slice(start, nl));
    start = nl + 1;
    if (!out) continue;
    if (header === undefined) header = out as ManifestHeader;
    else entries.push(out as ManifestEntry);
  }
  reader.finish();
  return { header: header as ManifestHeader, entries };
}
