/**
 * JSON as Python's `json` module sees it. Quilt's top hash is computed over Python's
 * `json.dumps(..., sort_keys=True, separators=(",", ":"))` of the manifest as Python parsed it, so
 * a float must stay a float (`2.0` is not `2`), ints may exceed 2^53, and keys sort by code point.
 *
 * Objects are plain JS objects. Python dicts keep insertion order and quilt3 writes manifest lines
 * in that order, but JS enumerates integer-like keys (`"2"`, `"10"`) first, ascending. An object
 * whose source order JS would not reproduce carries that order under KEY_ORDER (parsePyJson adds
 * it); everything else needs nothing extra, so the common case costs nothing.
 */
import { compareCodePoints } from '../core/code-points.js';
import { ToolError } from '../core/errors.js';

/** A number that was a float in the source JSON (Python keeps `2.0` a float and `2` an int). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** number = int within the safe range; bigint = int beyond it; PyFloat = float. */
export type PyJson = null | boolean | string | number | bigint | PyFloat | PyJson[] | { [k: string]: PyJson };

type PyObject = { [k: string]: PyJson };

/**
 * The source key order of a parsed object, set only where it differs from JS's own order. It is an
 * enumerable symbol so that `{ ...obj }` and `Object.assign` carry it (package_update spreads the
 * old header), while Object.keys/entries and JSON.stringify never see it (vitest's toEqual does:
 * compare such objects by keys and values, or through pyDumpsForFile). The list may go stale when
 * keys are added or deleted later; fileKeys() skips keys no longer there and places new ones.
 */
export const KEY_ORDER: unique symbol = Symbol('pyjson.keyOrder');

type Ordered = { [KEY_ORDER]?: readonly string[] };

function setKeyOrder(obj: PyObject, keys: readonly string[]): void {
  Object.defineProperty(obj, KEY_ORDER, { value: keys, writable: true, enumerable: true, configurable: true });
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** A key JS lists first, ascending, whatever its insertion order: an array index (0 ... 2^32 - 2). */
function isArrayIndex(k: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295;
}

/**
 * Own keys in the order Python would write them: the source order where known, else JS's. Keys
 * added after parsing (the order is then stale) go where a dict would put them as far as JS can
 * tell: a non-index key before the known non-index key JS lists it before (`{ x, ...parsed }`),
 * otherwise last, new index keys at the very end. A known key deleted and set again keeps its old
 * place (a dict would move it last).
 */
export function fileKeys(obj: { readonly [k: string]: unknown }): string[] {
  const keys = Object.keys(obj);
  // Without a key starting with a digit, JS's order is insertion order (index keys start with one
  // and come first), so only such objects can need the stored order.
  if (keys.length < 2 || !isDigit((keys[0] as string).charCodeAt(0))) return keys;
  const order = (obj as Ordered)[KEY_ORDER];
  if (order === undefined) return keys;
  const known = order.filter((k) => Object.hasOwn(obj, k));
  if (known.length === keys.length) return known;
  const isKnown = new Set(known);
  const before = new Map<string, string[]>();
  let pending: string[] = [];
  const newIndexKeys: string[] = [];
  for (const k of keys) {
    if (!isKnown.has(k)) {
      if (isArrayIndex(k)) newIndexKeys.push(k);
      else pending.push(k);
    } else if (pending.length && !isArrayIndex(k)) {
      before.set(k, pending);
      pending = [];
    }
  }
  const out: string[] = [];
  for (const k of known) {
    const added = before.get(k);
    if (added) out.push(...added);
    out.push(k);
  }
  return out.concat(pending, newIndexKeys);
}

// ---------------------------------------------------------------------------------------------
// Parsing

const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const STRING_BODY = /[^"\\\x00-\x1f]*/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
// Strings removed, anything left that JSON.parse would turn into a lossy number, or a literal
// only Python accepts, sends the text to the full parser.
const STRINGS = /"[^"\\]*(?:\\[^][^"\\]*)*"/g;
const NEEDS_FULL_PARSER = /[.IN]|\d[eE]|\d{16}/;
// A float, big int, NaN or Infinity literal can only start a value: after "[", ":", "," or at the
// start. A key of digits (maybe \u-escaped), which JS may move first, comes after "{" or ",". One
// scan for either: lines without such a place are read by JSON.parse directly (most manifest
// lines); a match inside a string only costs the slower checks below.
const MAYBE_SPECIAL = /(?:^|[:,[{])\s*(?:-?(?:\d+[.eE]|\d{16}|[IN])|"(?:\d|\\u003\d)+"\s*:)/;
// Some key is all digits: the full parser keeps its order (see KEY_ORDER).
const MAYBE_INTEGER_KEY = /"(?:\d|\\u003\d)+"\s*:/;

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function setKey(obj: PyObject, key: string, value: PyJson): void {
  // A JSON key named __proto__ is data, not the prototype.
  if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}

/**
 * Python refuses to turn a decimal text of more digits than this into an int (sys.int_info
 * default_max_str_digits, CVE-2020-10735): converting one is quadratic, and reading and writing
 * it back would hold the event loop for seconds per million digits. So does this parser.
 */
export const MAX_INT_DIGITS = 4300;

function intFromLiteral(lit: string): number | bigint {
  // Up to 15 digits always fits a double exactly; longer ones may not.
  if (lit.length <= 15) {
    const n = Number(lit);
    return n === 0 ? 0 : n;
  }
  const digits = lit.length - (lit.charCodeAt(0) === 0x2d ? 1 : 0);
  if (digits > MAX_INT_DIGITS) {
    throw new Error(`Exceeds the limit (${MAX_INT_DIGITS} digits) for integer string conversion: value has ${digits} digits`);
  }
  const big = BigInt(lit);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(what: string, at = this.pos): never {
    throw new Error(`${what} at position ${at}`);
  }

  ws(): void {
    WS.lastIndex = this.pos;
    WS.test(this.text);
    this.pos = WS.lastIndex;
  }

  value(): PyJson {
    this.ws();
    const t = this.text;
    const c = t.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.object();
      case 0x5b /* [ */:
        return this.array();
      case 0x22 /* " */:
        return this.string();
      case 0x74 /* t */:
        return this.literal('true', true);
      case 0x66 /* f */:
        return this.literal('false', false);
      case 0x6e /* n */:
        return this.literal('null', null);
      case 0x4e /* N */:
        return this.literal('NaN', new PyFloat(NaN));
      case 0x49 /* I */:
        return this.literal('Infinity', new PyFloat(Infinity));
      default:
        if (c === 0x2d && t.startsWith('-Infinity', this.pos)) return this.literal('-Infinity', new PyFloat(-Infinity));
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(Number.isNaN(c) ? 'Expecting value, found end of text' : 'Expecting value');
    }
  }

  literal(word: string, v: PyJson): PyJson {
    if (!this.text.startsWith(word, this.pos)) this.fail('Expecting value');
    this.pos += word.length;
    return v;
  }

  number(): PyJson {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) return this.fail('Expecting value');
    this.pos = NUMBER.lastIndex;
    const lit = m[0];
    if (m[1] !== undefined || m[2] !== undefined) return new PyFloat(Number(lit));
    return intFromLiteral(lit);
  }

  string(): string {
    const t = this.text;
    const start = this.pos;
    let pos = start + 1;
    let out = '';
    for (;;) {
      STRING_BODY.lastIndex = pos;
      STRING_BODY.test(t);
      const end = STRING_BODY.lastIndex;
      const c = t.charCodeAt(end);
      if (c === 0x22) {
        this.pos = end + 1;
        return out + t.slice(pos, end);
      }
      if (c !== 0x5c) {
        this.fail(Number.isNaN(c) ? 'Unterminated string starting' : 'Invalid control character', Number.isNaN(c) ? start : end);
      }
      out += t.slice(pos, end);
      const e = t.charAt(end + 1);
      if (e === 'u') {
        const hex = t.slice(end + 2, end + 6);
        if (!HEX4.test(hex)) this.fail('Invalid \\uXXXX escape', end);
        out += String.fromCharCode(parseInt(hex, 16));
        pos = end + 6;
      } else {
        const r = ESCAPES[e];
        if (r === undefined) this.fail('Invalid \\escape', end);
        out += r;
        pos = end + 2;
      }
    }
  }

  array(): PyJson[] {
    this.pos++;
    const out: PyJson[] = [];
    this.ws();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x5d) return out;
      if (c !== 0x2c) this.fail("Expecting ',' delimiter", this.pos - 1);
    }
  }

  object(): PyObject {
    this.pos++;
    const out: PyObject = {};
    this.ws();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    // Source key order, tracked from the first key starting with a digit: before it, JS's order is
    // the source order, so Object.keys gives the keys so far.
    let order: string[] | undefined;
    for (;;) {
      this.ws();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('Expecting property name enclosed in double quotes');
      const key = this.string();
      this.ws();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("Expecting ':' delimiter");
      this.pos++;
      const value = this.value();
      if (order === undefined && isDigit(key.charCodeAt(0))) order = Object.keys(out);
      // A repeated key keeps its first place and takes the last value, as in a Python dict.
      if (order !== undefined && !Object.hasOwn(out, key)) order.push(key);
      setKey(out, key, value);
      this.ws();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x7d) {
        if (order !== undefined && !sameOrder(order, Object.keys(out))) setKeyOrder(out, order);
        return out;
      }
      if (c !== 0x2c) this.fail("Expecting ',' delimiter", this.pos - 1);
    }
  }
}

function sameOrder(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function parseFull(text: string): PyJson {
  const p = new Parser(text);
  const v = p.value();
  p.ws();
  if (p.pos < text.length) p.fail('Extra data');
  return v;
}

/**
 * Parses JSON keeping what Python keeps: floats (`.`, `e`, `E`) as PyFloat, ints beyond 2^53 as
 * bigint, Python's `NaN`/`Infinity`/`-Infinity`, and key order (see KEY_ORDER). Throws a plain
 * Error naming the position.
 */
export function parsePyJson(text: string): PyJson {
  // Fast path: most manifest lines hold only strings and small ints under ordinary keys, which
  // JSON.parse reads exactly and in order.
  if (!MAYBE_SPECIAL.test(text) || (!MAYBE_INTEGER_KEY.test(text) && !NEEDS_FULL_PARSER.test(text.replace(STRINGS, '""')))) {
    try {
      return JSON.parse(text) as PyJson;
    } catch {
      // Fall through so the error message matches the full parser's.
    }
  }
  return parseFull(text);
}

// ---------------------------------------------------------------------------------------------
// Serializing

/** Python's `repr(float)`: shortest round-trip digits, scientific when exponent < -4 or >= 16. */
export function floatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // String(x) gives the shortest round-trip digits (nearest on ties), like Python's repr.
  const s = String(Math.abs(x));
  const eAt = s.indexOf('e');
  const mant = eAt < 0 ? s : s.slice(0, eAt);
  const exp10 = eAt < 0 ? 0 : Number(s.slice(eAt + 1));
  const dot = mant.indexOf('.');
  const intPart = dot < 0 ? mant : mant.slice(0, dot);
  const all = dot < 0 ? mant : intPart + mant.slice(dot + 1);
  let z = 0;
  while (all.charCodeAt(z) === 0x30) z++;
  const digits = all.slice(z).replace(/0+$/, '');
  const exp = intPart.length - z - 1 + exp10;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const ae = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

function intRepr(n: number): string {
  if (Number.isSafeInteger(n)) return String(n);
  if (Number.isInteger(n)) return BigInt(n).toString();
  throw new Error(`${n} is not an int; floats must be wrapped in PyFloat`);
}

function escapeUnit(c: number): string {
  switch (c) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return '\\\\';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    default:
      return `\\u${c.toString(16).padStart(4, '0')}`;
  }
}

const ASCII_SAFE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const UTF8_SAFE = /^[^\x00-\x1f"\\\ud800-\udfff]*$/;

/** ensure_ascii=True: everything outside 0x20..0x7e escaped, UTF-16 units one by one. */
function quoteAscii(s: string): string {
  if (ASCII_SAFE.test(s)) return `"${s}"`;
  let out = '"';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(last, i) + escapeUnit(c);
    last = i + 1;
  }
  return `${out}${s.slice(last)}"`;
}

/**
 * ensure_ascii=False: only `"`, `\` and control characters escaped. Lone surrogates are escaped
 * too (Python could not encode them to UTF-8 at all; escaping keeps the line readable).
 */
function quoteUtf8(s: string): string {
  if (UTF8_SAFE.test(s)) return `"${s}"`;
  let out = '"';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    } else if (c >= 0x20 && c !== 0x22 && c !== 0x5c && (c < 0xdc00 || c > 0xdfff)) {
      continue;
    }
    out += s.slice(last, i) + escapeUnit(c);
    last = i + 1;
  }
  return `${out}${s.slice(last)}"`;
}

interface DumpStyle {
  sortKeys: boolean;
  quote: (s: string) => string;
  item: string;
  key: string;
}

const HASH_STYLE: DumpStyle = { sortKeys: true, quote: quoteAscii, item: ',', key: ':' };
const FILE_STYLE: DumpStyle = { sortKeys: false, quote: quoteUtf8, item: ', ', key: ': ' };

function dump(v: PyJson, st: DumpStyle): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return st.quote(v);
    case 'number':
      return intRepr(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new Error(`Cannot serialize a ${typeof v} as JSON`);
  }
  if (v instanceof PyFloat) return floatRepr(v.value);
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i ? st.item : '') + dump(v[i] as PyJson, st);
    return `${out}]`;
  }
  const keys = st.sortKeys ? Object.keys(v).sort(compareCodePoints) : fileKeys(v);
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const item = v[k];
    if (item === undefined) throw new Error(`Cannot serialize undefined (key ${JSON.stringify(k)}) as JSON`);
    out += `${i ? st.item : ''}${st.quote(k)}${st.key}${dump(item, st)}`;
  }
  return `${out}}`;
}

/**
 * Whether pyDumps(a) === pyDumps(b), without writing either out: package_diff compares the
 * metadata of every entry the two revisions share.
 */
export function samePy(a: PyJson, b: PyJson): boolean {
  if (a === b) return true; // also 0 and -0, which both dump as 0
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    // An integral double beyond 2^53 dumps as the same digits as the bigint of its value.
    const n = typeof a === 'number' ? a : b;
    const big = typeof a === 'bigint' ? a : b;
    return typeof n === 'number' && typeof big === 'bigint' && Number.isInteger(n) && BigInt(n) === big;
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof PyFloat || b instanceof PyFloat) {
    // floatRepr is one to one (shortest round trip): same text exactly when the same double.
    return a instanceof PyFloat && b instanceof PyFloat && Object.is(a.value, b.value);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!samePy(a[i]!, b[i]!)) return false;
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (!Object.hasOwn(b, k) || !samePy(a[k]!, b[k]!)) return false;
  return true;
}

/** Exactly `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`. */
export function pyDumps(value: PyJson): string {
  return dump(value, HASH_STYLE);
}

/**
 * Exactly `json.JSONEncoder(ensure_ascii=False).encode(v)` as quilt3 writes manifest lines: keys in
 * the order they were read (see fileKeys), `", "` and `": "` separators, non-ASCII unescaped.
 */
export function pyDumpsForFile(value: PyJson): string {
  return dump(value, FILE_STYLE);
}

// ---------------------------------------------------------------------------------------------
// Conversions at the tool boundary

function describePath(path: string): string {
  return path === '' ? 'the value' : path;
}

function convertPlain(v: unknown, path: string): PyJson {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v === 0 ? 0 : v;
    // An integral double beyond 2^53 is an int to the client that sent it; keep its exact value.
    if (Number.isInteger(v)) return BigInt(v);
    return new PyFloat(v);
  }
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v instanceof PyFloat) return v;
  if (Array.isArray(v)) return v.map((x, i) => convertPlain(x, `${path}[${i}]`));
  if (typeof v === 'object') {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      const out: PyObject = {};
      for (const [k, x] of Object.entries(v)) setKey(out, k, convertPlain(x, path ? `${path}.${k}` : k));
      return out;
    }
  }
  const kind = v === undefined ? 'undefined' : typeof v === 'object' ? 'a non-JSON object' : `a ${typeof v}`;
  throw new ToolError('invalid_input', `${describePath(path)} is ${kind}, which JSON cannot hold.`, 'Use only strings, numbers, booleans, null, arrays and objects.');
}

/**
 * Values from tool arguments (already parsed by JS): integral numbers become ints, others floats.
 * A client's `2.0` arrives as the number 2 and so becomes an int; that information is already gone.
 */
export function fromPlain(v: unknown): PyJson {
  return convertPlain(v, '');
}

/** For returning to clients: PyFloat -> number, bigint -> number when safe, else its decimal string. */
export function toPlain(v: PyJson): unknown {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    return v;
  }
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(toPlain);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '__proto__') Object.defineProperty(out, k, { value: toPlain(x), writable: true, enumerable: true, configurable: true });
    else out[k] = toPlain(x);
  }
  return out;
}
