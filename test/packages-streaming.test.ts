/**
 * package_update and package_diff on streams: the one-pass merge of a base manifest with changes
 * gives the same top hash and bytes as the in-memory path (load all, filter, sort, hash), and the
 * merged diff the same result as the map-based one. Memory bounds are measured in
 * `npm run bench:packages`, not here.
 */
import v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffManifests, diffManifestsInMemory, type DiffResult } from '../src/packages/diff.js';
import {
  compareWalkOrder,
  manifestLines,
  readManifestBatches,
  readManifestLines,
  readManifestText,
  topHash,
  type ManifestEntry,
  type ManifestHeader,
} from '../src/packages/manifest.js';
import { PyFloat, parsePyJson } from '../src/packages/pyjson.js';
import { BaseNotInWalkOrder, Removals, mergeManifest } from '../src/packages/update.js';
import { MemoryBudget, packageMemory, HEAP_SHARE } from '../src/core/memory.js';
import { runWithContext } from '../src/context.js';
import type { ToolExtras } from '../src/tools/define.js';
import { packageUpdate } from '../src/tools/package-write.js';
import { s3Context } from './helpers/context.js';
import { call, connectStdio, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const enc = new TextEncoder();

/** Bytes in uneven pieces, split inside lines and UTF-8 characters. */
async function* pieces(bytes: Uint8Array, sizes = [1, 5, 13, 4096]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield bytes.subarray(at, at + n);
    at += n;
  }
}

const text = (header: ManifestHeader, entries: readonly ManifestEntry[]) => [...manifestLines(header, entries)].join('');
const stream = (header: ManifestHeader, entries: readonly ManifestEntry[]) => readManifestBatches(pieces(enc.encode(text(header, entries))));
/** As package_update reads its base: batches of records with their lines. */
const lines = (header: ManifestHeader, entries: readonly ManifestEntry[]) => readManifestLines(pieces(enc.encode(text(header, entries))));

function entry(key: string, i: number, meta?: ManifestEntry['meta']): ManifestEntry {
  return {
    logical_key: key,
    physical_keys: [`s3://data/${encodeURIComponent(key)}?versionId=v${i}`],
    size: 100 + i,
    hash: { type: 'sha2-256-chunked', value: Buffer.from(`h${key}${i}`).toString('base64') },
    meta: meta ?? { user_meta: { i } },
  };
}

/** The non-streaming path, as package_update did it before: filter the loaded entries, append, hash and write all. */
function inMemory(header: ManifestHeader, base: ManifestEntry[], added: ManifestEntry[], removes: string[]) {
  const replaced = new Set(added.map((s) => s.logical_key));
  const hits = new Array<number>(removes.length).fill(0);
  const kept = base.filter((e) => {
    let gone = replaced.has(e.logical_key);
    removes.forEach((r, i) => {
      if (r.endsWith('/') ? e.logical_key.startsWith(r) : e.logical_key === r) {
        hits[i]!++;
        gone = true;
      }
    });
    return !gone;
  });
  const entries = [...kept, ...added];
  return { hash: topHash(header, entries), bytes: text(header, entries), missing: removes.filter((_, i) => hits[i] === 0), entries: entries.length };
}

// Keys where UTF-16 order and code-point order differ (U+1F600 is a surrogate pair, below U+FF01
// in UTF-16 units, above it in code points), where "/" sorts before "-" in walk order, and
// non-ASCII that the hash escapes.
const KEYS = [
  'a-b.txt',
  'a/b.txt',
  'a/c/d.txt',
  'a/c/e.txt',
  'data/table.csv',
  'data/ünïcödé.txt',
  'data/\u{1F600}.txt',
  'data/\uFF01.txt',
  'data/\uD7FF.txt',
  'data/\u{10FFFF}.bin',
  'z/日本語/ファイル.txt',
  '\u{1F4A9}/x.txt',
  '\uFFFD/y.txt',
];

function baseManifest(): { header: ManifestHeader; entries: ManifestEntry[] } {
  // Header keys in a non-default order, and metadata whose key order JS would change ("2" before
  // "10" before "b" in JS): both must come out byte for byte.
  const header = parsePyJson('{"version": "v0", "message": "base", "user_meta": {"b": 1, "10": 2.0, "2": [1e-07, "é"]}, "extra": null}') as ManifestHeader;
  const entries = KEYS.map((k, i) =>
    entry(k, i, i % 3 === 0 ? (parsePyJson(`{"user_meta": {"z": 1, "3": 2.5, "1": {"y": null, "0": true}}, "other": 1.0}`) as ManifestEntry['meta']) : undefined),
  ).sort((x, y) => compareWalkOrder(x.logical_key, y.logical_key));
  return { header, entries };
}

const CASES: { what: string; added: ManifestEntry[]; removes: string[]; header?: (h: ManifestHeader) => ManifestHeader }[] = [
  { what: 'nothing but a new message', added: [], removes: [], header: (h) => ({ ...h, message: 'new ✓' }) },
  { what: 'adds (before, between and after base keys)', added: [entry('0.txt', 50), entry('a/c/dd.txt', 51), entry('data/\u{1F601}.txt', 52), entry('\u{10FFFF}', 53)], removes: [] },
  { what: 'replacements (new hash, size, meta)', added: [entry('a/b.txt', 60, { user_meta: { new: new PyFloat(1) } }), entry('data/\u{1F600}.txt', 61)], removes: [] },
  { what: 'removals of keys and folders', added: [], removes: ['a-b.txt', 'a/c/', 'data/\uFF01.txt', '\u{1F4A9}/'] },
  { what: 'a folder removed and one of its keys added back', added: [entry('a/c/e.txt', 70)], removes: ['a/c/', 'a/c/e.txt'] },
  {
    what: 'package metadata replaced and removed keys',
    added: [entry('z/日本語/新.txt', 80)],
    removes: ['data/'],
    header: (h) => ({ ...h, user_meta: parsePyJson('{"5": 1, "a": 2.0}') as ManifestHeader['user_meta'], message: null }),
  },
  { what: 'the user_meta dropped from the header', added: [], removes: ['z/'], header: ({ user_meta: _u, ...h }) => h as ManifestHeader },
];

describe('streaming package_update', () => {
  for (const c of CASES) {
    it(`gives the in-memory top hash and bytes: ${c.what}`, async () => {
      const { header, entries } = baseManifest();
      const h = c.header ? c.header(header) : header;
      const want = inMemory(h, entries, c.added, c.removes);
      const got = await mergeManifest(h, lines(header, entries), c.added, c.removes, { listing: true });
      expect(got.hash).toBe(want.hash);
      expect(got.missing).toEqual(want.missing);
      expect(got.entries).toBe(want.entries);
      expect(got.encode().toString('utf8')).toBe(want.bytes);
      // The listing a workflow's entries schema sees: walk order, as before.
      const listed = readManifestText(want.bytes).entries.map((e) => ({ logical_key: e.logical_key, size: e.size }));
      expect(got.listing).toEqual(listed);
    });
  }

  it('copies the lines quilt3 wrote as read, and writes other lines as quilt3 would', async () => {
    const { header, entries } = baseManifest();
    // Records alone (as the in-memory fallback passes them) are encoded; lines as read are copied.
    const encoded = await mergeManifest(header, [readManifestText(text(header, entries)).entries], [], ['a/c/']);
    const copied = await mergeManifest(header, lines(header, entries), [], ['a/c/']);
    expect(copied.encode().equals(encoded.encode())).toBe(true);
    // Another writer's line (other spacing and key order, CRLF, a null meta) is written as quilt3
    // writes it, with the same values and so the same top hash.
    const odd = '{ "size":7,"logical_key":"b/odd.txt","hash":{"value":"dmFs","type":"SHA256"},"physical_keys":["s3://d/odd"],"meta":null }';
    const base = `${text(header, [])}${odd}\r\n`;
    const got = await mergeManifest(header, readManifestLines(pieces(enc.encode(base), [3, 50])), [entry('a.txt', 1)], []);
    const oddEntry = readManifestText(base).entries[0]!;
    expect(got.hash).toBe(topHash(header, [oddEntry, entry('a.txt', 1)]));
    expect(got.encode().toString('utf8')).toBe(text(header, [entry('a.txt', 1), oddEntry]));
    expect(got.encode().toString('utf8')).toContain('"logical_key": "b/odd.txt", "physical_keys": ["s3://d/odd"], "size": 7, "hash": {"value": "dmFs", "type": "SHA256"}, "meta": {}}');
  });

  it('encodes added entries with the physical keys they get when stored (after hashing)', async () => {
    const { header, entries } = baseManifest();
    const added = { ...entry('new.txt', 90), physical_keys: [] as string[] };
    const got = await mergeManifest(header, lines(header, entries), [added], []);
    added.physical_keys = ['s3://reg/team/x/new.txt?versionId=abc'];
    const want = inMemory(header, entries, [added], []);
    expect(got.hash).toBe(want.hash); // physical keys are not part of the top hash
    expect(got.encode().toString('utf8')).toBe(want.bytes);
  });

  it('grows its buffer past the size hint (large base, large added metadata) without changing a byte', async () => {
    const header: ManifestHeader = { version: 'v0', message: 'big' };
    const entries = Array.from({ length: 6000 }, (_, i) => entry(`d${i % 10}/f${String(i).padStart(5, '0')}.txt`, i)).sort((x, y) =>
      compareWalkOrder(x.logical_key, y.logical_key),
    );
    const big = (k: string, i: number) => entry(k, i, { user_meta: { blob: 'x'.repeat(300_000 + i) } });
    const added = [big('d0/a.txt', 1), big('d5/zz.txt', 2), big('d9/f99999.txt', 3), big('e.txt', 4), big('0.txt', 5)];
    for (const sizeHint of [undefined, () => 100]) {
      const got = await mergeManifest(header, lines(header, entries), added, ['d3/'], sizeHint ? { sizeHint } : {});
      const want = inMemory(header, entries, added, ['d3/']);
      expect(got.hash).toBe(want.hash);
      expect(got.encode().toString('utf8')).toBe(want.bytes);
    }
  });

  it('reports removals that match nothing, and clashes and order as topHash does', async () => {
    const { header, entries } = baseManifest();
    const got = await mergeManifest(header, lines(header, entries), [], ['nope.txt', 'a/', 'a', 'nope/']);
    expect(got.missing).toEqual(['nope.txt', 'a', 'nope/']);
    // "a-b.txt" is a file; adding "a-b.txt/x" makes it a directory too.
    const clash = mergeManifest(header, lines(header, entries), [entry('a-b.txt/x', 1)], []);
    await expect(clash).rejects.toThrow(/is a file, but "a-b.txt\/x" uses it as a directory/);
    expect(() => topHash(header, [...entries, entry('a-b.txt/x', 1)])).toThrow(/is a file, but "a-b.txt\/x" uses it as a directory/);
  });

  it('equals the committed quilt3 bytes and top hash of an update (integer-like metadata keys)', async () => {
    const dir = fileURLToPath(new URL('./fixtures/manifest-order/', import.meta.url));
    const source = readFileSync(`${dir}manifest.jsonl`);
    const { header } = readManifestText(source.toString('utf8'));
    // As package_update builds it: the old header spread, then user_meta, workflow, message.
    const h: ManifestHeader = { ...header, user_meta: header.user_meta, workflow: undefined, message: 'updated ✓' };
    if (h.user_meta === undefined) delete h.user_meta;
    delete h.workflow;
    const got = await mergeManifest(h, readManifestLines(pieces(source, [7, 1, 300])), [], ['b/removed.txt']);
    expect(got.encode().toString('utf8')).toBe(readFileSync(`${dir}update.expected.jsonl`, 'utf8'));
    expect(`${got.hash}\n`).toBe(readFileSync(`${dir}update.tophash`, 'utf8'));
  });

  it('gives the known-answer top hash of the reference', async () => {
    const header = parsePyJson('{"message":"","user_meta":{},"version":"v0"}') as ManifestHeader;
    const got = await mergeManifest(header, readManifestLines(pieces(enc.encode('{"message":"","user_meta":{},"version":"v0"}\n'))), [], []);
    expect(got.hash).toBe('0929824c58e90a6d2cc3ad2c7bdc66e34f43e8ed7063a6b48595a3834dd3ec99');
  });

  it('refuses a base out of walk order, and merges it once sorted as the in-memory path does', async () => {
    const { header, entries } = baseManifest();
    // Code-point order of whole keys, as some writer might have used: "a-b.txt" before "a/b.txt".
    const unsorted = [...entries].sort((x, y) => (x.logical_key < y.logical_key ? -1 : 1));
    const lines = [`${[...manifestLines(header, [])][0]}`, ...unsorted.map((e) => [...manifestLines(header, [e])][1])].join('');
    await expect(mergeManifest(header, readManifestLines(pieces(enc.encode(lines))), [], [])).rejects.toBeInstanceOf(BaseNotInWalkOrder);
    const loaded = readManifestText(lines).entries.sort((x, y) => compareWalkOrder(x.logical_key, y.logical_key));
    const got = await mergeManifest(header, [loaded], [entry('b.txt', 1)], ['a/'], { sorted: true });
    const want = inMemory(header, unsorted, [entry('b.txt', 1)], ['a/']);
    expect(got.hash).toBe(want.hash);
    expect(got.encode().toString('utf8')).toBe(want.bytes);
  });

  it('bounds the package data held at once, all callers together', () => {
    const memory = new MemoryBudget(100 * 1024 * 1024);
    const errorOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err as { code?: string; message: string; hint?: string };
      }
      throw new Error('expected a refusal');
    };
    const lease = (what: string) => memory.lease({ what, tooLargeHint: 'Use quilt3.' });
    // Larger than the whole budget: refused for good, saying why and what to do.
    const huge = errorOf(() => lease('Updating team/big@abc').hold(300 * 1024 * 1024));
    expect(huge.code).toBe('too_large');
    expect(huge.message).toBe('Updating team/big@abc needs 300 MiB of memory, more than the 100 MiB this server lets package data take at once.');
    expect(huge.hint).toBe('Use quilt3.');
    // Within it, but not with what others hold: refused for now.
    const first = lease('a');
    first.hold(60 * 1024 * 1024);
    const second = lease('b');
    const busy = errorOf(() => second.hold(50 * 1024 * 1024));
    expect(busy.code).toBe('throttled');
    expect(busy.message).toMatch(/^b needs 50 MiB of memory; other calls on this server hold 60 MiB of the 100 MiB package data may take\.$/);
    expect(memory.inUse).toBe(60 * 1024 * 1024);
    // A lease grows and shrinks; releasing twice releases once.
    first.add(10 * 1024 * 1024);
    first.hold(20 * 1024 * 1024);
    expect(memory.inUse).toBe(20 * 1024 * 1024);
    first.release();
    first.release();
    first.hold(1); // a released lease holds nothing more
    expect(memory.inUse).toBe(0);
    second.hold(50 * 1024 * 1024);
    expect(memory.inUse).toBe(50 * 1024 * 1024);
    second.release();
    // The process-wide budget is a share of the heap limit: it follows --max-old-space-size.
    expect(packageMemory.total).toBe(Math.floor(v8.getHeapStatistics().heap_size_limit * HEAP_SHARE));
  });

  it('matches removal arguments as the per-entry loop did', () => {
    const removes = ['a/', 'a/c/', 'a/c/d.txt', 'a', 'a/b.txt', 'a/', 'data/\u{1F600}.txt', 'dat/', ''];
    const r = new Removals(removes);
    const hits = new Array<number>(removes.length).fill(0);
    for (const k of KEYS) {
      let gone = false;
      removes.forEach((x, i) => {
        if (x.endsWith('/') ? k.startsWith(x) : k === x) {
          hits[i]!++;
          gone = true;
        }
      });
      expect(r.match(k), k).toBe(gone);
    }
    expect(r.missing()).toEqual(removes.filter((_, i) => hits[i] === 0));
  });
});

describe('streaming package_diff', () => {
  const { header, entries } = baseManifest();
  const changed: ManifestEntry[] = entries
    .filter((_, i) => i % 4 !== 1) // removed
    .map((e, i): ManifestEntry => {
      if (i % 5 === 0) return { ...e, hash: { ...e.hash, value: 'changed' }, size: e.size + 1 }; // content and size
      if (i % 5 === 2) return { ...e, meta: { user_meta: { other: true } } }; // meta
      if (i % 10 === 9) return { ...e, meta: { user_meta: { i: new PyFloat(Number((e.meta?.user_meta as { i: number }).i)) } } }; // an int become a float
      if (i % 5 === 3) return { ...e, physical_keys: ['s3://elsewhere/x'] }; // location
      return e;
    })
    .concat([entry('0.txt', 1), entry('data/\u{1F601}.txt', 2), entry('a/c/dd.txt', 3)]); // added

  const check = async (from: ManifestEntry[], to: ManifestEntry[], limit: number) => {
    const open = { from: () => stream(header, from), to: () => stream({ ...header, message: 'to' }, to) };
    const got: DiffResult = await diffManifests(open, limit);
    const want = await diffManifestsInMemory(open.from(), open.to(), limit);
    expect(got.counts).toEqual(want.counts);
    expect(got.added).toEqual(want.added);
    expect(got.removed).toEqual(want.removed);
    expect(got.modified).toEqual(want.modified);
    expect(got.headers.to.message).toBe('to');
    return got;
  };

  it('gives the map-based result, lists capped in walk order', async () => {
    const all = await check(entries, changed, 1000);
    expect(all.counts.added).toBe(3);
    expect(all.counts.removed).toBeGreaterThan(0);
    expect(all.modified.map((m) => m.changes)).toContainEqual(['location']);
    await check(entries, changed, 1);
    await check(changed, entries, 2);
    await check([], changed, 5);
    await check(entries, [], 5);
  });

  it('falls back to the map-based diff when a side is out of walk order', async () => {
    const unsorted = [...entries].reverse();
    const open = {
      from: () => readManifestBatches(pieces(enc.encode([[...manifestLines(header, [])][0], ...unsorted.map((e) => [...manifestLines(header, [e])][1])].join('')))),
      to: () => stream(header, changed),
    };
    const got = await diffManifests(open, 100);
    const want = await diffManifestsInMemory(stream(header, entries), stream(header, changed), 100);
    expect(got.counts).toEqual(want.counts);
    expect(got.modified).toEqual(want.modified);
  });
});

describe('package_update through the server', () => {
  const REG = 'stream-registry';
  let s3: LocalS3;
  let h: Harness;
  beforeAll(async () => {
    s3 = await startS3({ buckets: [REG] });
    h = await connectStdio(s3Env(s3.endpoint, { MCP_LOG_LEVEL: 'error' }));
  });
  afterAll(async () => {
    await h?.close();
    await s3?.close();
  });

  const storedText = async (hash: string) => {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: REG, Key: `.quilt/packages/${hash}` }));
    return (await out.Body?.transformToString('utf-8')) ?? '';
  };

  // One base in walk order (streamed) and the same entries out of order (sorted in memory): both
  // commits must be what the in-memory path writes, bytes and top hash.
  for (const order of ['walk order', 'out of walk order'] as const) {
    it(`commits what the in-memory path computes (base ${order})`, async () => {
      const { header, entries } = baseManifest();
      const base = order === 'walk order' ? entries : [...entries].reverse();
      const body = [text(header, []), ...base.map((e) => text(header, [e]).split('\n')[1] + '\n')].join('');
      const baseHash = topHash(header, entries);
      const name = order === 'walk order' ? 'team/streamed' : 'team/unsorted';
      await s3.put(REG, `.quilt/packages/${baseHash}`, body);
      await s3.put(REG, `.quilt/named_packages/${name}/latest`, baseHash);
      const r = await call(h.client, 'package_update', {
        bucket: REG,
        name,
        message: 'streamed ✓',
        add: [{ logical_key: 'data/\u{1F601}.txt', text: 'new' }],
        remove: ['a/c/', 'z/日本語/ファイル.txt'],
      });
      expect(r.isError, r.text).toBe(false);
      const written = await storedText(r.data.top_hash);
      const { header: h2, entries: e2 } = readManifestText(written);
      // The committed manifest hashes to its key, and equals the in-memory rewrite of the base.
      expect(topHash(h2, e2)).toBe(r.data.top_hash);
      const added = e2.find((e) => e.logical_key === 'data/\u{1F601}.txt')!;
      const want = inMemory({ ...header, message: 'streamed ✓' }, entries, [added], ['a/c/', 'z/日本語/ファイル.txt']);
      expect(r.data.top_hash).toBe(want.hash);
      expect(written).toBe(want.bytes);
      expect(r.data.entries).toBe(want.entries);
      const missing = await call(h.client, 'package_update', { bucket: REG, name, remove: ['a/c/'] });
      expect(missing.isError).toBe(true);
      expect(missing.text).toContain('"a/c/"');
    });
  }

  it('refuses a pointer or workflow config too large to be one, without reading it', async () => {
    await s3.put(REG, '.quilt/named_packages/team/huge-pointer/latest', Buffer.alloc(9 * 1024 * 1024, 0x61));
    const r = await call(h.client, 'package_browse', { bucket: REG, name: 'team/huge-pointer' });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/s3:\/\/stream-registry\/\.quilt\/named_packages\/team\/huge-pointer\/latest is larger than the 8 MiB a Quilt pointer, workflow config or schema can be; it was not read/);
    // The server is fine, and package_list lists the bucket, naming the damaged package apart.
    const status = await call(h.client, 'auth_status');
    expect(status.isError, status.text).toBe(false);
    const list = await call(h.client, 'package_list', { bucket: REG, prefix: 'team/' });
    expect(list.isError, list.text).toBe(false);
    expect(list.data.unreadable).toEqual([{ name: 'team/huge-pointer', error: expect.stringMatching(/larger than the 8 MiB/) }]);
    expect(list.data.packages.map((p: { name: string }) => p.name)).not.toContain('team/huge-pointer');
    expect(list.text).toMatch(/1 package\(s\) with an unreadable latest pointer:\nteam\/huge-pointer: /);
  });

  it.each(['walk order', 'out of walk order'])('reserves the manifest memory before reading the base, and gives it back (in process, base in %s)', async (order) => {
    const ctx = await s3Context(s3.endpoint);
    const extras: ToolExtras = { signal: new AbortController().signal, progress: async () => {} };
    const { header, entries } = baseManifest();
    const baseHash = topHash(header, entries);
    // Out of walk order, the in-memory fallback reserves more, and must give that back too.
    const lines = order === 'walk order' ? entries : [...entries].reverse();
    const name = order === 'walk order' ? 'team/budget' : 'team/budget-unsorted';
    await s3.put(REG, `.quilt/packages/${baseHash}`, [text(header, []), ...lines.map((e) => text(header, [e]).split('\n')[1] + '\n')].join(''));
    await s3.put(REG, `.quilt/named_packages/${name}/latest`, baseHash);
    const update = (message: string) => runWithContext(ctx, () => packageUpdate.handler({ bucket: REG, name, message } as never, ctx, extras));
    // Other calls hold nearly all of it: refused before anything is written.
    const others = packageMemory.lease({ what: 'others', tooLargeHint: '' });
    others.hold(packageMemory.total - 1000);
    const puts = () => s3.requests.filter((q) => q.method === 'PUT').length;
    const before = puts();
    try {
      await expect(update('refused')).rejects.toMatchObject({ code: 'throttled' });
      expect(puts()).toBe(before);
      expect(packageMemory.inUse).toBe(packageMemory.total - 1000);
    } finally {
      others.release();
    }
    await update('accepted');
    expect(puts()).toBeGreaterThan(before);
    expect(packageMemory.inUse).toBe(0);
  });
});
