/**
 * The Quilt package format core: Python-compatible JSON, sha2-256-chunked, manifests and the top
 * hash. Known answers come from docs/reference; differential tests run the same inputs through
 * real Python (`json` module, and quilt3's top-hash algorithm restated in a few lines).
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { random as rng } from './helpers/seeded.js';
import { ChunkedHasher, chunkSizeFor, chunkedHashOf, chunkedHashOfStream } from '../src/core/chunked-hash.js';
import {
  TopHasher,
  compareWalkOrder,
  entryLine,
  isEntryLineOf,
  isManifestEntry,
  manifestLines,
  newManifestHeader,
  readManifest,
  readManifestText,
  topHash,
  validateLogicalKey,
  type ManifestEntry,
  type ManifestHeader,
} from '../src/packages/manifest.js';
import { compareCodePoints } from '../src/core/code-points.js';
import { KEY_ORDER, PyFloat, fileKeys, fromPlain, parsePyJson, pyDumps, pyDumpsForFile, samePy, toPlain, type PyJson } from '../src/packages/pyjson.js';
import { ToolError } from '../src/core/errors.js';
import { call, connectStdio, s3Env } from './helpers/mcp.js';
import { startS3 } from './helpers/s3.js';
import { PY_TOP_HASH, hasPython, python } from './helpers/python.js';

const MiB = 1024 * 1024;
const enc = new TextEncoder();

async function* pieces(data: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length] as number;
    yield data.subarray(off, off + n);
    off += n;
  }
}

async function collect(stream: AsyncIterable<ManifestHeader | ManifestEntry>): Promise<{ header: ManifestHeader; entries: ManifestEntry[] }> {
  let header: ManifestHeader | undefined;
  const entries: ManifestEntry[] = [];
  for await (const item of stream) {
    if (isManifestEntry(item)) entries.push(item);
    else {
      expect(header).toBeUndefined();
      header = item;
    }
  }
  if (!header) throw new Error('no header');
  return { header, entries };
}

function errorOf(fn: () => unknown): ToolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ToolError);
    return err as ToolError;
  }
  throw new Error('expected an error');
}

async function asyncErrorOf(p: Promise<unknown>): Promise<ToolError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ToolError);
    return err as ToolError;
  }
  throw new Error('expected an error');
}

// ---------------------------------------------------------------------------------------------

describe('sha2-256-chunked', () => {
  it('matches the known answers', () => {
    expect(chunkedHashOf(new Uint8Array())).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
    expect(chunkedHashOf(enc.encode('Hello, World!'))).toBe('BCp9ZKWB7y7pg/IQWIAcw1ZjtwXmxV9i+o4PGOzHCYk=');
    expect(chunkedHashOf(enc.encode('12345678'.repeat(1_048_576)))).toBe('7V3rZ3Q/AmAYax2wsQBZbc7N1EMIxlxRyMiMthGRdwg=');
  });

  it('doubles the chunk size past 10,000 chunks', () => {
    expect(chunkSizeFor(0)).toBe(8 * MiB);
    expect(chunkSizeFor(1)).toBe(8 * MiB);
    expect(chunkSizeFor(10_000 * 8 * MiB)).toBe(8 * MiB);
    expect(chunkSizeFor(10_000 * 8 * MiB + 1)).toBe(16 * MiB);
    expect(chunkSizeFor(20_000 * 8 * MiB)).toBe(16 * MiB);
    expect(chunkSizeFor(20_000 * 8 * MiB + 1)).toBe(32 * MiB);
    expect(chunkSizeFor(5 * 1024 ** 4)).toBe(1024 * MiB); // 5 TiB, S3's largest object
  });

  it('hashes multi-chunk data fed in odd pieces the same as one shot and as node:crypto directly', async () => {
    const data = randomBytes(2 * 8 * MiB + 12_345);
    const parts: Buffer[] = [];
    for (let off = 0; off < data.length; off += 8 * MiB) parts.push(createHash('sha256').update(data.subarray(off, off + 8 * MiB)).digest());
    const independent = createHash('sha256').update(Buffer.concat(parts)).digest('base64');
    expect(parts).toHaveLength(3);

    expect(chunkedHashOf(data)).toBe(independent);
    const h = new ChunkedHasher(data.length);
    const sizes = [1, 1_000_003, 7, 8 * MiB - 1, 3, 2 * MiB + 17];
    for await (const p of pieces(data, sizes)) h.update(p);
    expect(h.digest()).toBe(independent);
    expect(await chunkedHashOfStream(pieces(data, [999_983]), data.length)).toBe(independent);
    // Exactly one chunk, then one byte more.
    const eight = data.subarray(0, 8 * MiB);
    const one = createHash('sha256').update(createHash('sha256').update(eight).digest()).digest('base64');
    expect(await chunkedHashOfStream(pieces(eight, [MiB + 1]), eight.length)).toBe(one);
  });

  it('refuses data whose length differs from the declared size', async () => {
    const short = new ChunkedHasher(10);
    short.update(new Uint8Array(9));
    expect(errorOf(() => short.digest()).message).toMatch(/changed size while being read/);
    const long = new ChunkedHasher(10);
    expect(errorOf(() => long.update(new Uint8Array(11))).message).toMatch(/changed size while being read/);
    await expect(chunkedHashOfStream(pieces(new Uint8Array(20), [3]), 19)).rejects.toThrow(/changed size/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('ordering', () => {
  it('compares strings by code point, like Python', () => {
    // UTF-16 puts U+1F600 (D83D DE00) before U+FFFD; code points put it after.
    expect('\u{1F600}' < '\ufffd').toBe(true);
    expect(compareCodePoints('\ufffd', '\u{1F600}')).toBeLessThan(0);
    expect(compareCodePoints('\u{1F600}', '\ufffd')).toBeGreaterThan(0);
    expect(compareCodePoints('\ue000', '\u{10000}')).toBeLessThan(0);
    expect(compareCodePoints('x\u{1F600}', 'x\u{1F601}')).toBeLessThan(0);
    expect(compareCodePoints('a', 'ab')).toBeLessThan(0);
    expect(compareCodePoints('abc', 'abc')).toBe(0);
    expect(compareCodePoints('B', 'a')).toBeLessThan(0);
    // Lone surrogates are code points D800..DFFF to Python: below U+E000, below any pair.
    expect(compareCodePoints('\ud83d', '\ue000')).toBeLessThan(0);
    expect(compareCodePoints('\ud83dA', '\u{1F600}')).toBeLessThan(0);
    expect(compareCodePoints('\u{1F600}', '\ud83d\uffff')).toBeGreaterThan(0);
  });

  it('sorts logical keys in quilt3 walk order', () => {
    expect(compareWalkOrder('a/b', 'a-c')).toBeLessThan(0);
    expect(compareWalkOrder('a-c', 'a/b')).toBeGreaterThan(0);
    expect(compareWalkOrder('a', 'a/b')).toBeLessThan(0);
    expect(compareWalkOrder('ab', 'a/b')).toBeGreaterThan(0);
    expect(compareWalkOrder('x/\ufffd', 'x/\u{1F600}')).toBeLessThan(0);
    expect(compareWalkOrder('\ufffd/z', '\u{1F600}')).toBeLessThan(0);
    const keys = ['a-c', 'a/b', 'a.txt', 'a/a/z', 'B', '\u{1F600}.txt', '\ufffd.txt', 'a/b-c', 'a/b/c'];
    // Python: sorted(keys, key=lambda k: k.split('/'))
    expect([...keys].sort(compareWalkOrder)).toEqual(['B', 'a/a/z', 'a/b', 'a/b/c', 'a/b-c', 'a-c', 'a.txt', '\ufffd.txt', '\u{1F600}.txt']);
  });

  it('validates logical keys', () => {
    expect(validateLogicalKey('a/b.csv')).toBe('a/b.csv');
    expect(validateLogicalKey('日本/😀 x.txt')).toBe('日本/😀 x.txt');
    for (const bad of ['', '/a', 'a/', 'a//b', './a', 'a/../b', '..', 'a/.']) {
      const e = errorOf(() => validateLogicalKey(bad));
      expect(e.code).toBe('invalid_input');
      expect(e.message).toContain(JSON.stringify(bad));
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('Python JSON', () => {
  it('dumps like json.dumps(sort_keys=True, separators=(",", ":"))', () => {
    const d = (text: string): string => pyDumps(parsePyJson(text));
    expect(d('{"b": 1, "a": [true, false, null], "A": {}}')).toBe('{"A":{},"a":[true,false,null],"b":1}');
    expect(d('"caf\u00e9 \u65e5\u672c \u{1F600}"')).toBe('"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00"');
    expect(d('"\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\"\\\\\\/ ~"')).toBe('"\\u0000\\u001f\\u007f\\b\\f\\n\\r\\t\\"\\\\/ ~"');
    expect(d('"\\ud83d x \\ude00"')).toBe('"\\ud83d x \\ude00"');
    expect(d('"\\uD83D\\uDE00"')).toBe('"\\ud83d\\ude00"');
    expect(d('[1e-5, 1e16, 1.5e16, 2.0, -0.0, 0.1, 1e-7, 123456789.125, 1E400, -1e400, NaN, Infinity, -Infinity]')).toBe(
      '[1e-05,1e+16,1.5e+16,2.0,-0.0,0.1,1e-07,123456789.125,Infinity,-Infinity,NaN,Infinity,-Infinity]',
    );
    expect(d('[0.0001, 1e15, 9999999999999998.0, 1e22, 5e-324, 1.7976931348623157e308, 100, -0, 2.50]')).toBe(
      '[0.0001,1000000000000000.0,9999999999999998.0,1e+22,5e-324,1.7976931348623157e+308,100,0,2.5]',
    );
    expect(d('[9007199254740991, 9007199254740993, -123456789012345678901234567890, 12345678901234567890.0]')).toBe(
      '[9007199254740991,9007199254740993,-123456789012345678901234567890,1.2345678901234567e+19]',
    );
    // Keys sort by code point: U+FFFD before U+1F600 although UTF-16 says otherwise.
    expect(d('{"\u{1F600}": 1, "\ufffd": 2, "z": {"b": [1, {"d": 1, "c": 2.5}], "a": "x"}}')).toBe(
      '{"z":{"a":"x","b":[1,{"c":2.5,"d":1}]},"\\ufffd":2,"\\ud83d\\ude00":1}',
    );
    expect(pyDumps({ a: new PyFloat(3), b: 3, c: 2n ** 70n })).toBe('{"a":3.0,"b":3,"c":1180591620717411303424}');
  });

  it('keeps float-ness and big ints when parsing', () => {
    expect(parsePyJson('2')).toBe(2);
    expect(parsePyJson('2.0')).toEqual(new PyFloat(2));
    expect(parsePyJson('1E2')).toEqual(new PyFloat(100));
    expect(parsePyJson('12345678901234567890')).toBe(12345678901234567890n);
    expect(parsePyJson('9007199254740991')).toBe(9007199254740991);
    expect(parsePyJson('{"s": "1.5e3 NaN", "n": 1}')).toEqual({ s: '1.5e3 NaN', n: 1 });
    const proto = parsePyJson('{"__proto__": {"x": 1.5}}') as { [k: string]: PyJson };
    expect(Object.keys(proto)).toEqual(['__proto__']);
    expect(pyDumps(proto)).toBe('{"__proto__":{"x":1.5}}');
  });

  it('rejects what Python rejects, naming the position', () => {
    for (const bad of ['{"a":}', '[1,]', '01', '"a\u0001"', '{"a" 1}', "{'a':1}", '"\\x"', '"\\u12G4"', '[1 2]', '-', 'nul', '"abc', '', '1 2', '-NaN']) {
      expect(() => parsePyJson(bad), bad).toThrow(/position \d+/);
    }
  });

  it('converts tool arguments and back', () => {
    const v = fromPlain({ a: 1, b: 1.5, c: [2 ** 60, -0, 'x'], d: null, e: { f: true } });
    expect(pyDumps(v)).toBe('{"a":1,"b":1.5,"c":[1152921504606846976,0,"x"],"d":null,"e":{"f":true}}');
    expect(toPlain(v)).toEqual({ a: 1, b: 1.5, c: ['1152921504606846976', 0, 'x'], d: null, e: { f: true } });
    expect(toPlain(parsePyJson('[123456789012345678901234567890, 2.0, 7]'))).toEqual(['123456789012345678901234567890', 2, 7]);
    expect(errorOf(() => fromPlain({ a: { b: undefined } })).message).toContain('a.b');
    expect(errorOf(() => fromPlain([() => 1])).message).toContain('[0]');
    expect(errorOf(() => fromPlain({ when: new Date(0) })).message).toContain('when');
  });
});

// ---------------------------------------------------------------------------------------------

const LEGACY = [
  '{"version": "v0", "message": "old", "top_hash": {"alg": "v0", "value": "abc"}}',
  '{"logical_key": "b.txt", "physical_keys": ["s3://bkt/b.txt"], "size": 3, "hash": {"type": "SHA256", "value": "' + 'ab'.repeat(32) + '"}, "meta": null}',
  '{"logical_key": "a/", "meta": {"user_meta": {"dir": true}}}',
  '{"logical_key": "a/x.txt", "physical_keys": ["s3://bkt/a/x.txt"], "size": 0, "hash": {"type": "SHA256", "value": "' + 'cd'.repeat(32) + '"}}',
].join('\n');

describe('samePy (package_diff compares metadata without writing it out)', () => {
  it('is true exactly when pyDumps gives the same text', () => {
    const values: PyJson[] = [
      null, true, false, 0, -0, 1, 2, -1, 2 ** 53 - 1, 'a', '', 'é', '\u{1F600}',
      new PyFloat(1), new PyFloat(-0), new PyFloat(0), new PyFloat(NaN), new PyFloat(Infinity), new PyFloat(0.1 + 0.2), new PyFloat(0.30000000000000004),
      BigInt(2) ** BigInt(60), 2 ** 60, BigInt(1), [], [1], [1, 2], [2, 1], [new PyFloat(1)], [[1]],
      {}, { a: 1 }, { a: 1, b: 2 }, { b: 2, a: 1 }, { a: 2 }, { a: [1] }, { a: { b: null } }, { a: { b: false } },
      parsePyJson('{"10": 1, "2": 2}'), parsePyJson('{"2": 2, "10": 1}'), parsePyJson('{"__proto__": 1}'), parsePyJson('{"__proto__": 2}'),
      parsePyJson('{"a": 1.0, "b": [1e21, 5]}'), parsePyJson('{"b": [1e+21, 5], "a": 1.00}'), parsePyJson('{"a": 1, "b": [1e21, 5]}'),
    ];
    let equalPairs = 0;
    for (const a of values) {
      for (const b of values) {
        const same = pyDumps(a) === pyDumps(b);
        if (same) equalPairs++;
        expect(samePy(a, b), `${pyDumps(a)} vs ${pyDumps(b)}`).toBe(same);
      }
    }
    // Beyond each value with itself: reordered keys, 0/-0, 2**60 as number and bigint, 1.0/1.00, 1e21/1e+21.
    expect(equalPairs).toBeGreaterThan(values.length + 8);
  });
});

describe('manifests', () => {
  it('has the known header-only top hash', () => {
    const { header, entries } = readManifestText('{"message":"","user_meta":{},"version":"v0"}');
    expect(entries).toEqual([]);
    expect(topHash(header, entries)).toBe('0929824c58e90a6d2cc3ad2c7bdc66e34f43e8ed7063a6b48595a3834dd3ec99');
    expect(new TopHasher({ version: 'v0', user_meta: {}, message: '', top_hash: 'ignored' }).digest()).toBe(
      '0929824c58e90a6d2cc3ad2c7bdc66e34f43e8ed7063a6b48595a3834dd3ec99',
    );
  });

  it('reads legacy SHA256 manifests, skipping directory-metadata lines and the old top_hash', () => {
    const { header, entries } = readManifestText(LEGACY);
    expect(header).toEqual({ version: 'v0', message: 'old' });
    expect(entries.map((e) => [e.logical_key, e.hash.type, e.size])).toEqual([
      ['b.txt', 'SHA256', 3],
      ['a/x.txt', 'SHA256', 0],
    ]);
    expect(entries[0]?.meta).toBeNull();
    // Written back, quilt3 style: walk order, meta null -> {}.
    const lines = [...manifestLines(header, entries)];
    expect(lines[1]).toBe(`{"logical_key": "a/x.txt", "physical_keys": ["s3://bkt/a/x.txt"], "size": 0, "hash": {"type": "SHA256", "value": "${'cd'.repeat(32)}"}, "meta": {}}\n`);
    expect(topHash(readManifestText(lines.join('')).header, readManifestText(lines.join('')).entries)).toBe(topHash(header, entries));
  });

  it('round-trips unicode keys and float metadata, through bytes split anywhere', async () => {
    const header = newManifestHeader({ message: 'première ✓ \u{1F680}', user_meta: { ratio: new PyFloat(2), n: 2, big: 2n ** 64n, tiny: new PyFloat(1e-7) }, workflow: { id: 'alpha', config: 's3://b/.quilt/workflows/config.yml' } });
    expect(Object.keys(header)).toEqual(['version', 'user_meta', 'workflow', 'message']);
    const entry = (lk: string, meta: ManifestEntry['meta']): ManifestEntry => ({
      logical_key: lk,
      physical_keys: [`s3://bkt/${encodeURIComponent(lk)}?versionId=v1`],
      size: 42,
      hash: { type: 'sha2-256-chunked', value: chunkedHashOf(enc.encode(lk)) },
      meta,
    });
    const entries = [
      entry('日本/😀 emoji.txt', { user_meta: { score: new PyFloat(0.1), ok: true, nested: [new PyFloat(1e16), { 'clé': 'välue\u0000' }] } }),
      entry('日本/\ufffd.txt', {}),
      entry('a-c', null),
      entry('a/b', undefined),
      entry('z/\u{10FFFF}', { user_meta: { n: -0, f: new PyFloat(-0) } }),
    ];
    const h = topHash(header, entries);
    const text = [...manifestLines(header, entries)].join('');
    expect(text.split('\n').slice(1, -1).map((l) => (JSON.parse(l) as { logical_key: string }).logical_key)).toEqual([
      'a/b',
      'a-c',
      'z/\u{10FFFF}',
      '日本/\ufffd.txt',
      '日本/😀 emoji.txt',
    ]);
    expect(text).toContain('"score": 0.1, "ok": true, "nested": [1e+16, {"clé": "välue\\u0000"}]');
    const bytes = enc.encode(text.replace(/\n/g, '\r\n') + '\r\n');
    const back = await collect(readManifest(pieces(bytes, [1, 2, 3, 5, 7, 11])));
    expect(back.header).toEqual(header);
    expect(back.entries.map((e) => e.logical_key).sort()).toEqual(entries.map((e) => e.logical_key).sort());
    expect(topHash(back.header, back.entries)).toBe(h);
    const hasher = new TopHasher(back.header);
    for (const e of back.entries) hasher.add(e);
    expect(hasher.digest()).toBe(h);
  });

  it('refuses entries out of walk order, duplicates and file/directory clashes', () => {
    const e = (lk: string): ManifestEntry => ({ logical_key: lk, physical_keys: ['s3://b/k'], size: 1, hash: { type: 'SHA256', value: '00' } });
    const h = new TopHasher({ version: 'v0' });
    h.add(e('a/b'));
    expect(errorOf(() => h.add(e('a/a'))).message).toContain('walk order');
    expect(errorOf(() => topHash({ version: 'v0' }, [e('x'), e('x')])).message).toContain('twice');
    expect(errorOf(() => topHash({ version: 'v0' }, [e('x/y'), e('x')])).message).toContain('directory');
    expect(errorOf(() => [...manifestLines({ version: 'v0' }, [e('a//b')])]).message).toContain('a//b');
  });

  it('names the line of whatever is wrong', async () => {
    const head = '{"version": "v0"}';
    const ok = '{"logical_key": "a", "physical_keys": ["s3://b/a"], "size": 1, "hash": {"type": "sha2-256-chunked", "value": "x"}}';
    const cases: [string, RegExp][] = [
      [`${head}\n${ok}\n{"logical_key": "b", oops}`, /line 3: not valid JSON.*position/],
      [`${head}\n${ok.replace('"size": 1', '"size": 1.0')}`, /line 2: entry "a": "size" is not a non-negative integer/],
      [`${head}\n${ok.replace('"size": 1, ', '')}`, /line 2: .*"size"/],
      [`${head}\n${ok}\n${ok.replace('sha2-256-chunked', 'MD5')}`, /line 3: .*hash type "MD5"/],
      [`${head}\n${ok.replace('"logical_key": "a"', '"logical_key": "../a"')}`, /line 2: Logical key "..\/a"/],
      [`${head}\n${ok.replace('"logical_key": "a", ', '')}`, /line 2: "logical_key" is missing/],
      [`${head}\n${ok.replace('"physical_keys": ["s3://b/a"]', '"physical_keys": [3]')}`, /line 2: .*physical_keys/],
      [`${head}\n${ok.replace('}}', '}, "meta": [1]}')}`, /line 2: .*"meta" is not an object/],
      [`${head}\n${ok.replace('"value": "x"', '"value": "x", "extra": 1')}`, /line 2: .*other than/],
      [`${head}\n\n${ok}`, /line 2: blank line/],
      [`${ok}`, /line 1: expected the package header/],
      [`{"message": "no version"}`, /line 1: the header has no "version"/],
      [`[1, 2]`, /line 1: the header is not a JSON object/],
      ['', /empty/],
      ['\n\n', /empty/],
    ];
    for (const [text, re] of cases) {
      const e = await asyncErrorOf(collect(readManifest(pieces(enc.encode(text), [4]))));
      expect(e.message, text).toMatch(re);
      expect(e.code).toBe('invalid_input');
    }
    const badUtf8 = new Uint8Array([...enc.encode(`${head}\n${ok}\n{"logical_key": "`), 0xff, 0xfe, ...enc.encode('"}\n')]);
    expect((await asyncErrorOf(collect(readManifest(pieces(badUtf8, [5]))))).message).toMatch(/line 3: not valid UTF-8/);
    // A trailing blank line is fine.
    expect((await collect(readManifest(pieces(enc.encode(`${head}\n${ok}\n\n`), [3])))).entries).toHaveLength(1);
    // A UTF-8 byte order mark is skipped, even split across chunks; CRLF line ends are read.
    for (const sizes of [[1], [2, 7], [4096]]) {
      const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(`${head}\r\n${ok}\r\n`)]);
      expect((await collect(readManifest(pieces(bom, sizes)))).entries.map((e) => e.logical_key), String(sizes)).toEqual(['a']);
    }
    // A line longer than 1 MiB is refused before it is held whole (one endless line would take the
    // process's memory, and parsing it the event loop); a line just over quilt3's 1 MB is read.
    const long = (bytes: number) => `{"logical_key": "big", "physical_keys": ["s3://b/big"], "size": 1, "hash": {"type": "SHA256", "value": "x"}, "meta": {"blob": "${'x'.repeat(bytes)}"}}`;
    for (const size of [1024 * 1024 + 1, 17 * 1024 * 1024]) {
      const endless = await asyncErrorOf(collect(readManifest(pieces(enc.encode(`${head}\n${long(size)}\n`), [65536]))));
      expect(endless.message).toMatch(/line 2: longer than 1 MiB \(quilt3 writes at most 1 MB per line, and the Quilt catalog reads at most 1 MiB\)/);
    }
    // The reader tells its memory what a long line takes while it is held, and nothing once handed on.
    const held: number[] = [];
    const memory = { hold: (bytes: number) => void held.push(bytes) };
    expect((await collect(readManifest(pieces(enc.encode(`${head}\n${long(1_000_000)}\n${ok}\n`), [65536]), memory))).entries).toHaveLength(2);
    expect(Math.max(...held)).toBeGreaterThanOrEqual(1_000_000 * 4);
    expect(held.at(-1)).toBe(0);
    // Records before a damaged line come first (reading only the header of a damaged manifest works).
    const seen: string[] = [];
    const damaged = readManifest(pieces(enc.encode(`${head}\n${ok}\n{"logical_key": 5}\n`), [4096]));
    const err = await asyncErrorOf(
      (async () => {
        for await (const rec of damaged) seen.push(isManifestEntry(rec) ? rec.logical_key : 'header');
      })(),
    );
    expect(seen).toEqual(['header', 'a']);
    expect(err.message).toMatch(/line 3: "logical_key" is missing or not a string/);
  });

  it('refuses manifest lines larger than quilt3 allows', () => {
    const big = { version: 'v0', user_meta: { blob: 'é'.repeat(600_000) } };
    expect(errorOf(() => [...manifestLines(big, [])]).code).toBe('too_large');
  });
});

// ---------------------------------------------------------------------------------------------
// Differential tests against Python

const CHAR_POOLS: string[][] = [
  ['a', 'b', 'Z', '0', ' ', '~', '-', '.', '_', '/', '"', '\\'],
  ['\u0000', '\u0001', '\b', '\t', '\n', '\f', '\r', '\u001f', '\u007f', '\u0080'],
  ['é', 'ß', 'Ω', '日', '本', '\u2028', '\ufeff', '\ufffd', '\uffff', '\ue000'],
  ['\u{1F600}', '\u{1F680}', '\u{10000}', '\u{10FFFF}', '\u{20BB7}'],
];
const LONE = ['\ud800', '\udbff', '\udc00', '\udfff', '\ud83d'];

function randomString(r: () => number, maxLen: number, lone: boolean): string {
  let s = '';
  const n = Math.floor(r() * maxLen);
  for (let i = 0; i < n; i++) {
    const pool = lone && r() < 0.05 ? LONE : (CHAR_POOLS[Math.floor(r() * CHAR_POOLS.length)] as string[]);
    s += pool[Math.floor(r() * pool.length)] as string;
  }
  return s;
}

const FLOAT_TEXTS = ['1e-7', '1.0E-7', '1e16', '1E+16', '1.5e16', '0.1', '0.10', '123456789.125', '2.0', '-0.0', '1e400', '-1e400', '1e-400', '12345678901234567890.0', '0.30000000000000004', '9007199254740993.0', '1e-5', '0.0001', '1e15', '5e-324', '1.7976931348623157e308', 'NaN', 'Infinity', '-Infinity'];
const INT_TEXTS = ['0', '-0', '1', '-1', '9007199254740991', '9007199254740992', '-9007199254740993', '123456789012345678901234567890', '-98765432109876543210'];

function randomDouble(r: () => number): number {
  const dv = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < 8; i++) dv.setUint8(i, Math.floor(r() * 256));
  return dv.getFloat64(0);
}

/** A float literal for x in one of several spellings, all of which Python reads as the same float. */
function floatText(x: number, r: () => number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const forms = [String(x), x.toExponential().toUpperCase(), x.toPrecision(17)];
  const s = forms[Math.floor(r() * forms.length)] as string;
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** Escapes a string in varied ways (raw UTF-8, \u in either case, short escapes). */
function stringText(s: string, r: () => number): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s.charAt(i);
    const isSur = c >= 0xd800 && c <= 0xdfff;
    const paired = c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    const u = (n: number): string => {
      const h = n.toString(16).padStart(4, '0');
      return `\\u${r() < 0.5 ? h : h.toUpperCase()}`;
    };
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20) out += ({ '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' } as Record<string, string>)[ch] ?? u(c);
    else if (ch === '/' && r() < 0.5) out += '\\/';
    else if (paired) {
      const lo = s.charCodeAt(i + 1);
      out += r() < 0.5 ? u(c) + u(lo) : ch + s.charAt(i + 1);
      i++;
    } else if (isSur || r() < 0.2) out += u(c);
    else out += ch;
  }
  return `${out}"`;
}

function ws(r: () => number): string {
  const x = r();
  return x < 0.7 ? '' : x < 0.8 ? ' ' : x < 0.9 ? '\t ' : '\r';
}

/** Random JSON text (one line) with floats, big ints, unicode and duplicate keys. */
function randomJsonText(r: () => number, depth: number, lone: boolean): string {
  const x = r();
  if (depth < 4 && x < 0.25) {
    const n = Math.floor(r() * 5);
    const keys: string[] = [];
    for (let i = 0; i < n; i++) keys.push(r() < 0.15 && keys.length ? (keys[0] as string) : randomString(r, 6, lone));
    return `{${ws(r)}${keys.map((k) => `${stringText(k, r)}${ws(r)}:${ws(r)}${randomJsonText(r, depth + 1, lone)}`).join(`${ws(r)},${ws(r)}`)}${ws(r)}}`;
  }
  if (depth < 4 && x < 0.4) {
    const n = Math.floor(r() * 5);
    return `[${Array.from({ length: n }, () => `${ws(r)}${randomJsonText(r, depth + 1, lone)}${ws(r)}`).join(',')}]`;
  }
  if (x < 0.55) return stringText(randomString(r, 12, lone), r);
  if (x < 0.6) return FLOAT_TEXTS[Math.floor(r() * FLOAT_TEXTS.length)] as string;
  if (x < 0.65) return INT_TEXTS[Math.floor(r() * INT_TEXTS.length)] as string;
  if (x < 0.72) return floatText(randomDouble(r), r);
  if (x < 0.8) return floatText((r() - 0.5) * 10 ** Math.floor(r() * 60 - 30), r);
  if (x < 0.88) return String(Math.floor((r() - 0.5) * 2 ** Math.floor(r() * 53)));
  return ['true', 'false', 'null'][Math.floor(r() * 3)] as string;
}

const PY_DUMPS = `
import sys, json
lines = sys.stdin.buffer.read().decode('utf-8').split('\\n')
out = [json.dumps(json.loads(l), sort_keys=True, separators=(',', ':'), ensure_ascii=True) for l in lines]
sys.stdout.write('\\n'.join(out))
`;

describe('differential against Python', () => {
  it('pyDumps(parsePyJson(text)) equals Python json.dumps(json.loads(text)) for 600 random values', () => {
    const r = rng(20240601);
    const texts = Array.from({ length: 600 }, () => randomJsonText(r, 0, true));
    // Make sure the interesting spellings are all covered at top level too.
    texts.push(...FLOAT_TEXTS, ...INT_TEXTS, `[${FLOAT_TEXTS.join(', ')}]`);
    const expected = python(PY_DUMPS, texts.join('\n')).split('\n');
    expect(expected).toHaveLength(texts.length);
    let mismatches = 0;
    texts.forEach((t, i) => {
      const got = pyDumps(parsePyJson(t));
      if (got !== expected[i]) {
        mismatches++;
        expect(got, `input: ${t}`).toBe(expected[i]);
      }
    });
    expect(mismatches).toBe(0);
  });

  it('top hash and written lines match quilt3 for a random manifest', async () => {
    const r = rng(7);
    const segs = ['a', 'a-c', 'a.b', 'A', 'b', '_', '~', 'é', '\ufffd', '\ue000', '\u{1F600}', 'a b', '日本', '\u{10FFFF}'];
    const pick = (): string => segs[Math.floor(r() * segs.length)] as string;
    const metaValue = (): PyJson => parsePyJson(randomJsonText(r, 1, false));
    const keys = new Set<string>();
    while (keys.size < 150) {
      const dirs = Array.from({ length: Math.floor(r() * 3) }, pick);
      keys.add([...dirs, `${pick()}.f${Math.floor(r() * 3)}`].join('/'));
    }
    const entries: ManifestEntry[] = [...keys].map((lk, i) => {
      const legacy = r() < 0.2;
      const m = r();
      const meta: ManifestEntry['meta'] =
        m < 0.15 ? null : m < 0.3 ? undefined : m < 0.4 ? {} : { user_meta: { v: metaValue(), f: new PyFloat(r() * 1000), 'ключ': metaValue() }, other: metaValue() };
      return {
        logical_key: lk,
        physical_keys: [`s3://bucket/${encodeURIComponent(lk)}?versionId=v${i}`],
        size: r() < 0.1 ? Number.MAX_SAFE_INTEGER : Math.floor(r() * 1e9),
        hash: legacy
          ? { type: 'SHA256', value: createHash('sha256').update(lk).digest('hex') }
          : { type: 'sha2-256-chunked', value: createHash('sha256').update(lk).digest('base64') },
        meta,
      };
    });
    const header: ManifestHeader = newManifestHeader({ message: 'msg ✓ \u{1F600} "q"\n', user_meta: { a: new PyFloat(1.5e16), b: metaValue() }, workflow: { id: null, schemas: {} } });
    header.extra = new PyFloat(1e-7);
    const lines = [...manifestLines(header, entries)];
    const expected = python(PY_TOP_HASH, lines.join(''));
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
    expect(topHash(header, entries)).toBe(expected);
    const back = await collect(readManifest(pieces(enc.encode(lines.join('')), [4093, 1, 17])));
    const h = new TopHasher(back.header);
    for (const e of back.entries) h.add(e);
    expect(h.digest()).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// Key order: quilt3 writes a manifest's dicts back in the order it read them; JS moves array-index
// keys ("2", "10") first. Expected bytes come from Python (scripts/gen-manifest-order-fixtures.py),
// committed under test/fixtures/manifest-order so the comparison runs without Python too.

const ORDER_DIR = fileURLToPath(new URL('./fixtures/manifest-order/', import.meta.url));
const GEN_FIXTURES = fileURLToPath(new URL('../scripts/gen-manifest-order-fixtures.py', import.meta.url));
const fixture = (name: string): string => readFileSync(path.join(ORDER_DIR, name), 'utf8');
const fixtureLines = (name: string): string[] => fixture(name).split('\n').filter((l) => l.trim() !== '');
/** What package_update rewrites (as in src/tools/package-write.ts): new message, one key removed, no bucket workflow. */
const UPDATE = { message: 'updated ✓', remove: 'b/removed.txt' };

/** Our read -> write of one value and of whole manifests, the plain one and after an update. */
function ourOutputs(): Record<string, string> {
  const values = fixtureLines('values.jsonl').map((l) => `${pyDumpsForFile(parsePyJson(l))}\n`).join('');
  const { header, entries } = readManifestText(fixture('manifest.jsonl'));
  const manifest = [...manifestLines(header, entries)].join('');
  // package_update's header: the old one spread, then user_meta, workflow, message (package-write.ts).
  const user_meta = header.user_meta;
  const workflow: ManifestHeader['workflow'] = undefined;
  const h: ManifestHeader = { ...header, user_meta, workflow, message: UPDATE.message };
  if (user_meta === undefined) delete h.user_meta;
  if (workflow === undefined) delete h.workflow;
  const kept = entries.filter((e) => e.logical_key !== UPDATE.remove);
  const update = [...manifestLines(h, kept)].join('');
  return {
    'values.expected.jsonl': values,
    'manifest.expected.jsonl': manifest,
    'manifest.tophash': `${topHash(header, entries)}\n`,
    'update.expected.jsonl': update,
    'update.tophash': `${topHash(h, kept)}\n`,
  };
}

function expectSameLines(got: string, want: string, what: string): void {
  const g = got.split('\n');
  const w = want.split('\n');
  for (let i = 0; i < Math.max(g.length, w.length); i++) expect(g[i], `${what} line ${i + 1}`).toBe(w[i]);
  expect(got).toBe(want);
}

describe('key order as quilt3 writes it', () => {
  it('read -> write of tricky values equals the committed Python json.dumps bytes', () => {
    expect(fixtureLines('values.jsonl').length).toBeGreaterThanOrEqual(16);
    expectSameLines(ourOutputs()['values.expected.jsonl']!, fixture('values.expected.jsonl'), 'values');
  });

  it('read -> manifestLines of a manifest with integer-like keys equals the committed quilt3 bytes and top hash', async () => {
    const out = ourOutputs();
    expectSameLines(out['manifest.expected.jsonl']!, fixture('manifest.expected.jsonl'), 'manifest');
    expect(out['manifest.tophash']).toBe(fixture('manifest.tophash'));
    // The streaming reader (bytes split anywhere) keeps the order too.
    const back = await collect(readManifest(pieces(enc.encode(fixture('manifest.jsonl')), [1, 3, 7, 64])));
    expect([...manifestLines(back.header, back.entries)].join('')).toBe(fixture('manifest.expected.jsonl'));
    // Writing our own output again changes nothing.
    const again = readManifestText(out['manifest.expected.jsonl']!);
    expect([...manifestLines(again.header, again.entries)].join('')).toBe(fixture('manifest.expected.jsonl'));
  });

  it('a package_update-style rewrite (spread header, kept entries) equals the committed quilt3 bytes', () => {
    const out = ourOutputs();
    expectSameLines(out['update.expected.jsonl']!, fixture('update.expected.jsonl'), 'update');
    expect(out['update.tophash']).toBe(fixture('update.tophash'));
  });

  it.skipIf(!hasPython)('python3 regenerates the committed fixtures, and we match it live', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'manifest-order-'));
    try {
      const r = spawnSync('python3', [GEN_FIXTURES, dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const ours = ourOutputs();
      for (const [name, text] of Object.entries(ours)) {
        const live = readFileSync(path.join(dir, name), 'utf8');
        expect(live, `${name}: committed fixture is stale; rerun scripts/gen-manifest-order-fixtures.py`).toBe(fixture(name));
        expectSameLines(text, live, name);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasPython)('read -> write equals Python for 400 random objects with integer-like keys (live)', () => {
    const r = rng(1010);
    const pool = ['0', '1', '2', '9', '10', '01', '-1', '1e3', '4294967294', '4294967295', '007', '42', 'a', 'b', 'z', 'é', '日本', '__proto__', 'constructor', '\u{1F600}'];
    const key = (): string => JSON.stringify(pool[Math.floor(r() * pool.length)]).replace(/^"(\d)(\d)"$/, (m, a: string, b: string) => (r() < 0.2 ? `"\\u003${a}${b}"` : m));
    const value = (depth: number): string => {
      const x = r();
      if (depth < 3 && x < 0.35) return obj(depth + 1);
      if (depth < 3 && x < 0.45) return `[${Array.from({ length: Math.floor(r() * 3) }, () => value(depth + 1)).join(', ')}]`;
      return randomJsonText(r, 4, false);
    };
    const obj = (depth: number): string => `{${Array.from({ length: Math.floor(r() * 6) }, () => `${key()}: ${value(depth)}`).join(', ')}}`;
    const texts = Array.from({ length: 400 }, () => obj(0));
    const code = "import sys, json\nenc = json.JSONEncoder(ensure_ascii=False).encode\nlines = sys.stdin.buffer.read().decode('utf-8').split('\\n')\nsys.stdout.buffer.write('\\n'.join(enc(json.loads(l)) for l in lines).encode('utf-8'))\n";
    const expected = python(code, texts.join('\n')).split('\n');
    expect(expected).toHaveLength(texts.length);
    texts.forEach((t, i) => expect(pyDumpsForFile(parsePyJson(t)), `input: ${t}`).toBe(expected[i]));
  });

  it('keeps the source order of nested, duplicate and __proto__ keys, on both parser paths', () => {
    const o = parsePyJson('{"b": 1, "10": {"3": [{"2": 0, "1": 0}], "a": 1, "1": 2}, "__proto__": {"9": 1, "8": 2}, "b": 3, "2": 2}') as { [k: string]: PyJson };
    expect(pyDumpsForFile(o)).toBe('{"b": 3, "10": {"3": [{"2": 0, "1": 0}], "a": 1, "1": 2}, "__proto__": {"9": 1, "8": 2}, "2": 2}');
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    // Objects JS already orders right carry nothing; a string mentioning "10": keeps the fast path's result.
    for (const t of ['{"a": 1, "b": {"c": 2}}', '{"01": 1, "-1": 2, "4294967295": 3, "1e3": 4}', '{"0": 1, "1": 2, "10": 3}', '{"s": "\\"10\\": 2"}']) {
      const v = parsePyJson(t) as { [k: string]: PyJson };
      expect(Object.getOwnPropertySymbols(v), t).toEqual([]);
      expect(pyDumpsForFile(v)).toBe(t);
    }
    // A key spelled with \\u escapes is still an index key.
    expect(pyDumpsForFile(parsePyJson('{"b": 1, "\\u0031\\u0030": 2, "\\u0032": 3}'))).toBe('{"b": 1, "10": 2, "2": 3}');
  });

  it('places keys added after parsing where a Python dict would', () => {
    const parsed = parsePyJson('{"b": 1, "10": 2, "a": 3, "2": 4}') as { [k: string]: PyJson };
    expect((parsed as { [KEY_ORDER]?: unknown })[KEY_ORDER]).toEqual(['b', '10', 'a', '2']);
    // Spread copies carry the order; overridden keys keep their place, new ones go last.
    expect(pyDumpsForFile({ ...parsed, a: 5, z: 6, '7': 7 })).toBe('{"b": 1, "10": 2, "a": 5, "2": 4, "z": 6, "7": 7}');
    // Keys spread after new ones: the new ones stay in front, as in {"x": 0, **parsed}.
    expect(pyDumpsForFile({ x: 0, ...parsed })).toBe('{"x": 0, "b": 1, "10": 2, "a": 3, "2": 4}');
    // Deleted keys are dropped; rest copies (parseHeader's) keep the order.
    const { a: _a, ...rest } = parsed;
    delete rest['10'];
    expect(pyDumpsForFile(rest)).toBe('{"b": 1, "2": 4}');
    expect(fileKeys(parsed)).toEqual(['b', '10', 'a', '2']);
    // Invisible to JSON and to key listings.
    expect(JSON.stringify(parsed)).toBe('{"2":4,"10":2,"b":1,"a":3}');
    expect(Object.keys(parsed)).toEqual(['2', '10', 'b', 'a']);
  });

  it('writes entry hash fields in the order they were read', () => {
    const line = '{"logical_key": "x", "physical_keys": ["s3://b/x"], "size": 1, "hash": {"value": "AAAA", "type": "SHA256"}, "meta": {}}';
    const { header, entries } = readManifestText(`{"version": "v0", "message": null}\n${line}`);
    expect([...manifestLines(header, entries)][1]).toBe(`${line}\n`);
  });
});

describe('isEntryLineOf (package_update copies the lines it would write)', () => {
  const head = '{"version": "v0"}';
  const canonical = [
    ...fixtureLines('manifest.expected.jsonl').slice(1),
    '{"logical_key": "a/b.csv", "physical_keys": ["s3://b/a/b.csv?versionId=v1", "s3://c/x"], "size": 0, "hash": {"type": "SHA256", "value": "AA"}, "meta": {}}',
    '{"logical_key": "日本/é 🤖.txt", "physical_keys": ["s3://b/r"], "size": 12, "hash": {"value": "BB", "type": "sha2-256-chunked"}, "meta": {"user_meta": {"a": [1, -2, 3.5, true, null, {"b": []}], "big": 123456789012345678901234567890, "neg": -0.0, "e": 1e-07, "s": "x: y, z"}}}',
    '{"logical_key": "q", "physical_keys": ["s3://b/q"], "size": 1, "hash": {"type": "SHA256", "value": "CC"}, "meta": {"user_meta": {"quote": "say \\"hi\\"", "tab": "a\\tb", "u": "\\u0001"}}}',
  ];
  // Same values, other bytes: quilt3 would write these lines differently.
  const variants = (line: string): string[] => [
    line.replace(', "', ',"'),
    line.replace('": ', '":'),
    `${line} `,
    ` ${line}`,
    line.replace('"meta": {}', '"meta": null'),
    line.replace(/, "meta": \{\}\}$/, '}'),
    line.replace('"size": ', '"size": 0').replace('"size": 00', '"size": 0'),
    line.replace(/"hash": \{"type": ("[^"]*"), "value": ("[^"]*")\}/, '"hash": {"value": $2, "type": $1}'),
    line.replace('"physical_keys": [', '"physical_keys": [ '),
    line.replace('é', '\\u00e9').replace('"q"', '"\\u0071"'),
    line.replace('1e-07', '1e-7').replace('3.5', '3.50'),
    line.replace('{"logical_key": ', '{"x": 1, "logical_key": '),
  ];
  const recordOf = (line: string) => readManifestText(`${head}\n${line}`).entries[0]!;

  it('is true exactly when the line equals entryLine (never true for another line)', () => {
    let copied = 0;
    let compared = 0;
    for (const line of canonical) {
      for (const text of [line, ...variants(line)]) {
        let rec;
        try {
          rec = recordOf(text);
        } catch {
          rec = undefined;
        }
        if (!rec) continue; // a variant that is no longer an entry
        compared++;
        const same = entryLine(rec) === `${text}\n`;
        const got = isEntryLineOf(rec, text);
        if (got) copied++;
        // False only allowed for lines with a backslash (compared by encoding instead).
        expect(got, text).toBe(same && !text.includes('\\'));
      }
    }
    expect(compared).toBeGreaterThan(canonical.length * 8);
    expect(copied).toBeGreaterThanOrEqual(canonical.length - 1);
  });
});

describe('key order through the package_update tool', () => {
  it('rewrites a quilt3 manifest with integer-like metadata keys byte for byte (built server, s3rver)', async () => {
    const REG = 'order-registry';
    const s3 = await startS3({ buckets: [REG] });
    let h: Awaited<ReturnType<typeof connectStdio>> | undefined;
    try {
      const top = fixture('manifest.tophash').trim();
      await s3.put(REG, `.quilt/packages/${top}`, fixture('manifest.jsonl'));
      await s3.put(REG, '.quilt/named_packages/team/order/latest', top);
      h = await connectStdio(s3Env(s3.endpoint));
      const r = await call(h.client, 'package_update', { bucket: REG, name: 'team/order', message: UPDATE.message, remove: [UPDATE.remove] });
      expect(r.isError, r.text).toBe(false);
      expect(r.data.top_hash).toBe(fixture('update.tophash').trim());
      const out = await s3.client.send(new GetObjectCommand({ Bucket: REG, Key: `.quilt/packages/${r.data.top_hash}` }));
      expectSameLines(await out.Body!.transformToString('utf8'), fixture('update.expected.jsonl'), 'stored manifest');
    } finally {
      await h?.close();
      await s3.close();
    }
  }, 60_000);
});
