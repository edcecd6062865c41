/**
 * The package tools end to end: the built server over stdio (real MCP client) against s3rver.
 * What the server writes is re-read from S3 here and checked with the format module and plain
 * node:crypto, so "quilt3 would accept it" is tested on the bytes, not on the server's word.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestLines, newManifestHeader, readManifest, TopHasher, topHash, type ManifestEntry, type ManifestHeader } from '../src/packages/manifest.js';
import { PyFloat } from '../src/packages/pyjson.js';
import { call, connectStdio, objectText, s3Env, type Harness, type ToolCall } from './helpers/mcp.js';
import { startS3, type LocalS3, type S3Request } from './helpers/s3.js';

const REG = 'pkg-registry';
const DATA = 'pkg-data';
const WF = 'pkg-workflows';
const HOSTILE = 'pkg-hostile';
const MiB = 1024 * 1024;
// 9 MiB of varied bytes: two chunks of sha2-256-chunked.
const BIG = Buffer.from(Array.from({ length: 9 * MiB }, (_, i) => (i * 31 + (i >> 13)) & 0xff));

let s3: LocalS3;
let h: Harness;
let deny: (r: S3Request) => string | undefined = () => undefined;
let before: (r: S3Request) => Promise<void> | void = () => undefined;
let cut: (r: S3Request) => number | undefined = () => undefined;

const chunked = (buf: Buffer, chunk = 8 * MiB) => {
  const outer = createHash('sha256');
  for (let i = 0; i < buf.length; i += chunk) outer.update(createHash('sha256').update(buf.subarray(i, i + chunk)).digest());
  return outer.digest('base64');
};

async function getObject(bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch {
    return undefined;
  }
}

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const out = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

async function* chunks(buf: Buffer) {
  // Odd-sized pieces, so lines and UTF-8 characters straddle chunk boundaries.
  for (let i = 0; i < buf.length; i += 1000) yield buf.subarray(i, i + 1000);
}

async function parse(body: Buffer) {
  let header: ManifestHeader | undefined;
  const entries: ManifestEntry[] = [];
  for await (const rec of readManifest(chunks(body))) {
    if (!header) header = rec as ManifestHeader;
    else entries.push(rec as ManifestEntry);
  }
  const hasher = new TopHasher(header!);
  for (const e of entries) hasher.add(e);
  return { header: header!, entries, recomputed: hasher.digest(), text: body.toString('utf8') };
}

/** The manifest as stored, parsed with the format module, and its top hash recomputed. */
async function stored(hash: string) {
  return storedIn(REG, hash);
}

async function storedIn(bucket: string, hash: string) {
  const body = await getObject(bucket, `.quilt/packages/${hash}`);
  expect(body, `manifest ${hash} exists`).toBeDefined();
  return parse(body!);
}

const ok = (r: ToolCall) => {
  expect(r.isError, r.text).toBe(false);
  return r.data;
};

beforeAll(async () => {
  s3 = await startS3({ buckets: [REG, DATA, WF, HOSTILE], deny: (r) => deny(r), before: (r) => before(r), cut: (r) => cut(r) });
  await s3.put(DATA, 'raw/hello.txt', 'Hello, World!');
  await s3.put(DATA, 'raw/empty.bin', '');
  await s3.put(DATA, 'raw/big.bin', BIG);
  await s3.put(DATA, 'raw/nested/deep/é.csv', 'a,b\n1,2\n');
  await s3.put(DATA, 'raw/nested/skip.log', 'log');
  await s3.put(DATA, 'raw/folder/', '');
  h = await connectStdio(s3Env(s3.endpoint));
}, 120_000);

afterAll(async () => {
  await h?.close();
  await s3?.close();
});

describe('package round trip', () => {
  let first: string;
  let second: string;

  it('creates a package whose manifest and checksums are what quilt3 computes', async () => {
    const progress: number[] = [];
    const raw = await h.client.callTool(
      {
        name: 'package_create',
        arguments: {
          bucket: REG,
          name: 'team/alpha',
          message: 'first revision ✓',
          meta: { owner: 'Zoë', ratio: 0.5, count: 3, nested: { big: 1e21, small: 1e-7, list: [1, 'two', null] } },
          entries: [
            { logical_key: 'hello.txt', s3_uri: `s3://${DATA}/raw/hello.txt`, meta: { kind: 'greeting' } },
            { logical_key: 'empty.bin', s3_uri: `s3://${DATA}/raw/empty.bin` },
            { logical_key: 'data/big.bin', s3_uri: `s3://${DATA}/raw/big.bin` },
            { logical_key: 'data/table.csv', s3_uri: `s3://${DATA}/raw/nested/deep/é.csv` },
            { logical_key: 'data-notes.md', text: '# Notes\n' },
            { logical_key: 'ünïcode/😀 smile.txt', text: 'astral' },
            { logical_key: 'ünïcode/\uFFFD replacement.txt', text: 'bmp' },
          ],
        },
      },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    const r: ToolCall = { isError: Boolean(raw.isError), text: JSON.stringify(raw.content), data: raw.structuredContent, raw: raw as never };
    const d = ok(r);
    first = d.top_hash;
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(d.entries).toBe(7);
    expect(d.quilt_uri).toBe(`quilt+s3://${REG}#package=team/alpha@${first}`);
    expect(progress.length).toBeGreaterThanOrEqual(7);
    expect(progress[progress.length - 1]).toBe(7);

    const m = await stored(first);
    expect(m.recomputed).toBe(first);
    expect(m.header).toMatchObject({ version: 'v0', message: 'first revision ✓' });
    const byKey = new Map(m.entries.map((e) => [e.logical_key, e]));
    expect(byKey.get('hello.txt')!.hash).toEqual({ type: 'sha2-256-chunked', value: 'BCp9ZKWB7y7pg/IQWIAcw1ZjtwXmxV9i+o4PGOzHCYk=' });
    expect(byKey.get('empty.bin')!.hash.value).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
    expect(byKey.get('data/big.bin')!.hash.value).toBe(chunked(BIG));
    expect(byKey.get('data/big.bin')!.size).toBe(BIG.length);
    expect(byKey.get('hello.txt')!.meta).toEqual({ user_meta: { kind: 'greeting' } });
    // Sources are referenced in place, quoted as quilt3 quotes them; text is stored next to the package.
    expect(byKey.get('data/table.csv')!.physical_keys).toEqual([`s3://${DATA}/raw/nested/deep/%C3%A9.csv`]);
    expect(byKey.get('data-notes.md')!.physical_keys).toEqual([`s3://${REG}/team/alpha/data-notes.md`]);
    expect((await getObject(REG, 'team/alpha/ünïcode/😀 smile.txt'))?.toString()).toBe('astral');
    // Walk order: the tree sorted by code point at every level ("data/" before "data-notes.md"; U+FFFD before U+1F600).
    expect(m.entries.map((e) => e.logical_key)).toEqual([
      'data/big.bin',
      'data/table.csv',
      'data-notes.md',
      'empty.bin',
      'hello.txt',
      'ünïcode/\uFFFD replacement.txt',
      'ünïcode/😀 smile.txt',
    ]);
    // Floats stay floats, non-ASCII is escaped as Python's json does.
    expect(m.text.split('\n')[0]).toContain('"ratio": 0.5');
    expect(m.text).toContain('1e-07');
    const pointers = await listKeys(REG, '.quilt/named_packages/team/alpha/');
    expect(pointers).toContain('.quilt/named_packages/team/alpha/latest');
    expect(pointers.filter((k) => /\/\d+$/.test(k))).toHaveLength(1);
    expect((await getObject(REG, '.quilt/named_packages/team/alpha/latest'))?.toString()).toBe(first);
  });

  it('refuses to overwrite an existing package unless forced', async () => {
    const r = await call(h.client, 'package_create', { bucket: REG, name: 'team/alpha', entries: [{ logical_key: 'x.txt', text: 'x' }] });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('already exists');
    expect(r.text).toContain('package_update');
  });

  it('browses the top level, a folder, one file and pages recursively', async () => {
    const top = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha' }));
    expect(top.top_hash).toBe(first);
    expect(top.message).toBe('first revision ✓');
    expect(top.user_meta).toMatchObject({ owner: 'Zoë', ratio: 0.5, count: 3 });
    expect(top.total_files).toBe(7);
    expect(top.items.map((i: { logical_key: string }) => i.logical_key)).toEqual(['data/', 'data-notes.md', 'empty.bin', 'hello.txt', 'ünïcode/']);
    expect(top.items[0]).toMatchObject({ type: 'dir', files: 2, size: BIG.length + 8 });

    const folder = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha', path: 'data/' }));
    expect(folder.items.map((i: { logical_key: string }) => i.logical_key)).toEqual(['data/big.bin', 'data/table.csv']);

    const one = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha', hash_or_tag: first.slice(0, 8), path: 'hello.txt' }));
    expect(one.items).toEqual([expect.objectContaining({ logical_key: 'hello.txt', size: 13, user_meta: { kind: 'greeting' } })]);
    // A package file is read through its s3_uri (the physical key unquoted).
    const csv = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha', path: 'data/table.csv' }));
    expect(csv.items[0].s3_uri).toBe(`s3://${DATA}/raw/nested/deep/é.csv`);
    expect(objectText(await call(h.client, 'bucket_object_text', { uri: csv.items[0].s3_uri })).content).toBe('a,b\n1,2\n');

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha', recursive: true, limit: 3, cursor }));
      seen.push(...page.items.map((i: { logical_key: string }) => i.logical_key));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(7);
    expect(seen[2]).toBe('data-notes.md');

    const missing = await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha', path: 'nope/' });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('no file or directory "nope"');
  });

  it('updates on top of latest, then diffs the two revisions', async () => {
    const d = ok(
      await call(h.client, 'package_update', {
        bucket: REG,
        name: 'team/alpha',
        message: 'second',
        add: [
          { logical_key: 'hello.txt', text: 'Hello again' },
          { logical_key: 'new/log.txt', s3_uri: `s3://${DATA}/raw/nested/skip.log` },
        ],
        remove: ['data/'],
      }),
    );
    second = d.top_hash;
    expect(second).not.toBe(first);
    expect(d.entries).toBe(6);
    const m = await stored(second);
    expect(m.recomputed).toBe(second);
    // Package metadata is kept when not given.
    expect(m.header.user_meta).toBeDefined();

    const diff = ok(await call(h.client, 'package_diff', { bucket: REG, name: 'team/alpha', from: first }));
    expect(diff.counts).toEqual({ added: 1, removed: 2, modified: 1, unchanged: 4 });
    expect(diff.added.map((i: { logical_key: string }) => i.logical_key)).toEqual(['new/log.txt']);
    expect(diff.removed.map((i: { logical_key: string }) => i.logical_key)).toEqual(['data/big.bin', 'data/table.csv']);
    expect(diff.modified[0]).toMatchObject({ logical_key: 'hello.txt', changes: ['content', 'size', 'meta'] });

    const missing = await call(h.client, 'package_update', { bucket: REG, name: 'team/alpha', remove: ['not-there.txt'] });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('"not-there.txt"');
  });

  it('lists packages with their latest hash and revision count', async () => {
    ok(await call(h.client, 'package_create', { bucket: REG, name: 'other/beta', entries: [{ logical_key: 'a.txt', text: 'a' }] }));
    const all = ok(await call(h.client, 'package_list', { bucket: REG }));
    expect(all.packages.map((p: { name: string }) => p.name)).toEqual(['other/beta', 'team/alpha']);
    const alpha = all.packages[1];
    expect(alpha.top_hash).toBe(second);
    expect(alpha.revisions).toBeGreaterThanOrEqual(1);
    const page = ok(await call(h.client, 'package_list', { bucket: REG, limit: 1 }));
    expect(page.packages).toHaveLength(1);
    const rest = ok(await call(h.client, 'package_list', { bucket: REG, limit: 1, cursor: page.next_cursor }));
    expect(rest.packages[0].name).toBe('team/alpha');
    const none = ok(await call(h.client, 'package_list', { bucket: DATA }));
    expect(none.packages).toEqual([]);
  });

  it('deletes one revision (latest moves back), then the package, never the data', async () => {
    // Both revisions keep a timestamp pointer, even when committed within the same second.
    const tags = (await listKeys(REG, '.quilt/named_packages/team/alpha/')).filter((k) => /\/\d+$/.test(k));
    expect(tags).toHaveLength(2);
    const one = ok(await call(h.client, 'package_delete', { bucket: REG, name: 'team/alpha', hash: second }));
    expect(one.latest).toBe(first);
    expect((await getObject(REG, '.quilt/named_packages/team/alpha/latest'))?.toString()).toBe(first);
    expect(await getObject(REG, `.quilt/packages/${second}`)).toBeDefined();

    const all = ok(await call(h.client, 'package_delete', { bucket: REG, name: 'team/alpha' }));
    expect(all.latest).toBeNull();
    expect(await listKeys(REG, '.quilt/named_packages/team/alpha/')).toEqual([]);
    expect((await getObject(REG, 'team/alpha/data-notes.md'))?.toString()).toBe('# Notes\n');
    const gone = await call(h.client, 'package_browse', { bucket: REG, name: 'team/alpha' });
    expect(gone.isError).toBe(true);
    expect(gone.text).toContain('does not exist');
  });
});

describe('package_create_from_s3', () => {
  it('packages every object under a prefix, with include/exclude globs', async () => {
    const d = ok(
      await call(h.client, 'package_create_from_s3', {
        bucket: REG,
        name: 'team/from-prefix',
        source_uri_prefix: `s3://${DATA}/raw/`,
        exclude: ['**/*.log', 'big.bin'],
      }),
    );
    const m = await stored(d.top_hash);
    expect(m.recomputed).toBe(d.top_hash);
    expect(m.entries.map((e) => e.logical_key)).toEqual(['empty.bin', 'hello.txt', 'nested/deep/é.csv']);
    const none = await call(h.client, 'package_create_from_s3', { bucket: REG, name: 'team/none', source_uri_prefix: `s3://${DATA}/nothing/` });
    expect(none.isError).toBe(true);
    expect(none.text).toContain('No objects under');
  });
});

describe('legacy manifests', () => {
  it('reads a manifest with SHA256 hashes and compares it with a chunked revision', async () => {
    const legacyEntry = {
      logical_key: 'hello.txt',
      physical_keys: [`s3://${DATA}/raw/hello.txt`],
      size: 13,
      hash: { type: 'SHA256', value: createHash('sha256').update('Hello, World!').digest('hex') },
      meta: {},
    };
    // Written by hand the way old quilt3 wrote it (spaces after separators, a float 1.0).
    const text = `{"version": "v0", "message": "legacy", "user_meta": {"float": 1.0}}\n${JSON.stringify(legacyEntry)}\n`;
    const hash = (await parse(Buffer.from(text))).recomputed;
    await s3.put(REG, `.quilt/packages/${hash}`, text);
    await s3.put(REG, '.quilt/named_packages/old/legacy/latest', hash);
    const b = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'old/legacy', path: 'hello.txt' }));
    expect(b.items[0]).toMatchObject({ hash_type: 'SHA256', size: 13 });
    const again = ok(
      await call(h.client, 'package_update', { bucket: REG, name: 'old/legacy', message: 'rehash', add: [{ logical_key: 'hello.txt', s3_uri: `s3://${DATA}/raw/hello.txt` }] }),
    );
    const diff = ok(await call(h.client, 'package_diff', { bucket: REG, name: 'old/legacy', from: hash, to: again.top_hash }));
    // Same object, different hash types: not a content change.
    expect(diff.counts).toEqual({ added: 0, removed: 0, modified: 0, unchanged: 1 });
  });
});

describe('bucket workflows', () => {
  const config = [
    'version: "1"',
    'default_workflow: strict',
    'workflows:',
    '  strict:',
    '    name: Strict',
    '    is_message_required: true',
    '    handle_pattern: ^lab/',
    '    metadata_schema: meta',
    '    entries_schema: entries',
    '  free:',
    '    name: Free',
    'schemas:',
    `  meta: { url: "s3://${WF}/schemas/meta.json" }`,
    `  entries: { url: "s3://${WF}/schemas/entries.json" }`,
  ].join('\n');

  beforeAll(async () => {
    await s3.put(WF, '.quilt/workflows/config.yml', config);
    await s3.put(WF, 'schemas/meta.json', JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', required: ['owner'], properties: { owner: { type: 'string' } } }));
    await s3.put(WF, 'schemas/entries.json', JSON.stringify({ type: 'array', items: { type: 'object', properties: { logical_key: { type: 'string', pattern: '\\.csv$' } } } }));
  });

  const create = (args: Record<string, unknown>) =>
    call(h.client, 'package_create', { bucket: WF, name: 'lab/run1', message: 'run 1', meta: { owner: 'ana' }, entries: [{ logical_key: 'a.csv', text: 'x,y' }], ...args });

  it('refuses what the bucket\'s workflow refuses, before writing anything', async () => {
    const n = s3.requests.length;
    const cases: [Record<string, unknown>, string][] = [
      [{ message: undefined }, 'workflow "strict" requires a commit message'],
      [{ name: 'team/run1' }, 'does not match the workflow\'s handle pattern ^lab/'],
      [{ meta: { who: 'ana' } }, "Metadata failed validation: (root) must have required property 'owner'"],
      [{ workflow: 'nope' }, 'has no workflow "nope"'],
      [{ workflow: null }, 'requires a workflow, and none was given'],
    ];
    for (const [args, message] of cases) {
      const r = await create(args);
      expect(r.isError, JSON.stringify(args)).toBe(true);
      expect(r.text).toContain(message);
    }
    const entries = await create({ entries: [{ logical_key: 'notes.txt', text: 'x' }] });
    expect(entries.isError).toBe(true);
    expect(entries.text).toContain('Package entries failed validation');
    expect(s3.requests.slice(n).filter((r) => r.method === 'PUT')).toEqual([]);
    expect(await listKeys(WF, '.quilt/named_packages/')).toEqual([]);
    const elsewhere = await call(h.client, 'package_create', { bucket: REG, name: 'team/wf', workflow: 'free', entries: [{ logical_key: 'a', text: 'a' }] });
    expect(elsewhere.isError).toBe(true);
    expect(elsewhere.text).toContain('has no workflows config');
  });

  it('records the workflow that passed in the manifest, as quilt3 does', async () => {
    const d = ok(await create({}));
    const m = await storedIn(WF, d.top_hash);
    expect(m.recomputed).toBe(d.top_hash);
    expect(m.header.workflow).toEqual({
      id: 'strict',
      config: `s3://${WF}/.quilt/workflows/config.yml`,
      schemas: { meta: `s3://${WF}/schemas/meta.json`, entries: `s3://${WF}/schemas/entries.json` },
    });
    const free = ok(await call(h.client, 'package_update', { bucket: WF, name: 'lab/run1', workflow: 'free', add: [{ logical_key: 'b.txt', text: 'b' }] }));
    expect((await storedIn(WF, free.top_hash)).header.workflow).toEqual({ id: 'free', config: `s3://${WF}/.quilt/workflows/config.yml` });
  });
});

describe('hostile patterns', () => {
  // Patterns from tenants run on the event loop all tenants share: RE2 refuses what could backtrack.
  const lookahead = '^(?=lab/)[a-z/0-9]+$';
  beforeAll(async () => {
    const config = [
      'version: "1"',
      'default_workflow: look',
      'workflows:',
      '  look:',
      `    handle_pattern: '${lookahead}'`,
      '  schema:',
      '    metadata_schema: meta',
      'schemas:',
      `  meta: { url: "s3://${HOSTILE}/schemas/meta.json" }`,
    ].join('\n');
    await s3.put(HOSTILE, '.quilt/workflows/config.yml', config);
    await s3.put(HOSTILE, 'schemas/meta.json', JSON.stringify({ type: 'object', properties: { id: { type: 'string', pattern: '^(?!tmp)\\w+$' } } }));
    await s3.put(DATA, `hostile/${'a'.repeat(60)}`, 'x');
  });

  it('answers a clear tool error for a handle_pattern or schema pattern RE2 cannot run', async () => {
    const n = s3.requests.length;
    const entries = [{ logical_key: 'a.txt', text: 'a' }];
    const r = await call(h.client, 'package_create', { bucket: HOSTILE, name: 'lab/run1', entries });
    expect(r.isError).toBe(true);
    expect(r.text).toContain(`Workflow "look" handle_pattern "${lookahead}" cannot be used: lookahead is not supported`);
    const schema = await call(h.client, 'package_create', { bucket: HOSTILE, name: 'lab/run1', workflow: 'schema', meta: { id: 'x' }, entries });
    expect(schema.isError).toBe(true);
    expect(schema.text).toContain('Schema "meta"');
    expect(schema.text).toContain('"^(?!tmp)\\w+$" cannot be used: lookahead is not supported');
    expect(s3.requests.slice(n).filter((q) => q.method === 'PUT')).toEqual([]);
  });

  it('matches include globs with many stars at once (the backtracking RegExp took ~20 s)', async () => {
    const t = performance.now();
    const r = await call(h.client, 'package_create_from_s3', {
      bucket: REG,
      name: 'team/hostile',
      source_uri_prefix: `s3://${DATA}/hostile/`,
      include: ['*a*a*a*a*a*a*a*b'],
    });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('match the include/exclude globs');
    expect(performance.now() - t).toBeLessThan(5000);
    const tooMany = await call(h.client, 'package_create_from_s3', {
      bucket: REG,
      name: 'team/hostile',
      source_uri_prefix: `s3://${DATA}/hostile/`,
      include: Array.from({ length: 101 }, () => '*'),
    });
    expect(tooMany.isError).toBe(true);
  });
});

describe('a 100,000-entry manifest', () => {
  const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

  it('browses and pages in bounded memory', async () => {
    const entries: ManifestEntry[] = Array.from({ length: 100_000 }, (_, i) => {
      const key = `part-${String(i % 50).padStart(2, '0')}/file-${String(i).padStart(6, '0')}.csv`;
      return {
        logical_key: key,
        physical_keys: [`s3://${DATA}/big/${key}`],
        size: i,
        hash: { type: 'sha2-256-chunked', value: createHash('sha256').update(key).digest('base64') },
        meta: { user_meta: { i, ratio: new PyFloat(i / 7) } },
      };
    });
    const header = newManifestHeader({ message: 'large' });
    const hash = topHash(header, entries);
    const body = Buffer.from(Array.from(manifestLines(header, entries)).join(''));
    await s3.put(REG, `.quilt/packages/${hash}`, body);
    await s3.put(REG, '.quilt/named_packages/big/manifest/latest', hash);
    const fresh = await connectStdio(s3Env(s3.endpoint, { MCP_LOG_LEVEL: 'error' }));
    try {
      await call(fresh.client, 'auth_status');
      const before = peakRss(fresh.pid!);
      const top = ok(await call(fresh.client, 'package_browse', { bucket: REG, name: 'big/manifest', limit: 10 }));
      expect(top.total_files).toBe(100_000);
      expect(top.count).toBe(50);
      expect(top.items[0]).toMatchObject({ type: 'dir', logical_key: 'part-00/', files: 2000 });
      expect(top.next_cursor).toBeDefined();
      const next = ok(await call(fresh.client, 'package_browse', { bucket: REG, name: 'big/manifest', limit: 10, cursor: top.next_cursor }));
      expect(next.items[0].logical_key).toBe('part-10/');
      const deep = ok(await call(fresh.client, 'package_browse', { bucket: REG, name: 'big/manifest', path: 'part-49/', limit: 1000 }));
      expect(deep.count).toBe(2000);
      expect(deep.items).toHaveLength(1000);
      expect(deep.items[999].logical_key).toBe('part-49/file-049999.csv');
      // The manifest is 30 MiB of text and far more as objects; the server holds neither.
      const grew = peakRss(fresh.pid!) - before;
      expect(grew).toBeLessThan(96);
    } finally {
      await fresh.close();
    }
  }, 60_000);
});

describe('failures', () => {
  it('rejects bad names, hashes and logical keys with clear messages', async () => {
    const bad = await call(h.client, 'package_browse', { bucket: REG, name: 'no-slash' });
    expect(bad.isError).toBe(true);
    expect(bad.text).toContain('is not a package name');
    const key = await call(h.client, 'package_create', { bucket: REG, name: 'team/bad', entries: [{ logical_key: 'a/../b', text: 'x' }] });
    expect(key.isError).toBe(true);
    expect(key.text).toMatch(/logical key/i);
    const both = await call(h.client, 'package_create', { bucket: REG, name: 'team/bad', entries: [{ logical_key: 'a', text: 'x', s3_uri: `s3://${DATA}/raw/hello.txt` }] });
    expect(both.isError).toBe(true);
    expect(both.text).toContain('exactly one of s3_uri, path or text');
    const unknown = await call(h.client, 'package_browse', { bucket: REG, name: 'other/beta', hash_or_tag: 'ab'.repeat(32) });
    expect(unknown.isError).toBe(true);
    expect(unknown.text).toContain(`There is no package revision ${'ab'.repeat(32)} in ${REG}`);
    const ref = await call(h.client, 'package_browse', { bucket: REG, name: 'other/beta', hash_or_tag: 'v1.0' });
    expect(ref.isError).toBe(true);
    expect(ref.text).toContain('neither a top hash nor a tag');
  });

  it('a missing source object fails the create and writes no manifest or pointer', async () => {
    const before = await listKeys(REG, '.quilt/packages/');
    const r = await call(h.client, 'package_create', {
      bucket: REG,
      name: 'team/missing',
      entries: [
        { logical_key: 'ok.txt', s3_uri: `s3://${DATA}/raw/hello.txt` },
        { logical_key: 'gone.txt', s3_uri: `s3://${DATA}/raw/not-here.txt` },
      ],
    });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('Entry "gone.txt"');
    expect(r.text).toContain('does not exist');
    expect(await listKeys(REG, '.quilt/packages/')).toEqual(before);
    expect(await listKeys(REG, '.quilt/named_packages/team/missing/')).toEqual([]);
  });

  it('an S3 failure while writing the manifest leaves no pointer', async () => {
    deny = (r) => (r.method === 'PUT' && r.key.startsWith('.quilt/packages/') ? 'AccessDenied' : undefined);
    try {
      const r = await call(h.client, 'package_create', { bucket: REG, name: 'team/halfway', entries: [{ logical_key: 'a.txt', text: 'a' }] });
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/denied/i);
    } finally {
      deny = () => undefined;
    }
    expect(await listKeys(REG, '.quilt/named_packages/team/halfway/')).toEqual([]);
  });

  it('a connection cut while a source streams fails cleanly and commits nothing', async () => {
    cut = (r) => (r.method === 'GET' && r.key === 'raw/big.bin' ? MiB : undefined);
    try {
      const r = await call(h.client, 'package_create', {
        bucket: REG,
        name: 'team/cut',
        entries: [
          { logical_key: 'big.bin', s3_uri: `s3://${DATA}/raw/big.bin` },
          { logical_key: 'note.txt', text: 'stored only if everything else worked' },
        ],
      });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('Entry "big.bin"');
      expect(r.text).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      cut = () => undefined;
    }
    expect(await listKeys(REG, '.quilt/named_packages/team/cut/')).toEqual([]);
    expect(await listKeys(REG, 'team/cut/')).toEqual([]);
  });

  it('an update racing another writer is refused, not lost', async () => {
    const base = ok(await call(h.client, 'package_create', { bucket: REG, name: 'team/race', entries: [{ logical_key: 'race.txt', text: 'r' }] }));
    const other = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'other/beta' })).top_hash as string;
    // Another writer moves latest while this update writes its manifest.
    before = async (r) => {
      if (r.method === 'PUT' && r.key.startsWith('.quilt/packages/')) {
        before = () => undefined;
        await s3.put(REG, '.quilt/named_packages/team/race/latest', other);
      }
    };
    try {
      const r = await call(h.client, 'package_update', { bucket: REG, name: 'team/race', add: [{ logical_key: 'b.txt', text: 'b' }] });
      expect(r.isError, r.text).toBe(true);
      expect(r.text).toContain('changed meanwhile');
      expect(r.text).toContain('Nothing was committed');
    } finally {
      before = () => undefined;
    }
    expect((await getObject(REG, '.quilt/named_packages/team/race/latest'))?.toString()).toBe(other);
    expect(base.top_hash).not.toBe(other);
  });

  it('concurrent updates through one server are applied one after the other, none lost', async () => {
    ok(await call(h.client, 'package_create', { bucket: REG, name: 'team/busy', entries: [{ logical_key: 'seed.txt', text: 's' }] }));
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => call(h.client, 'package_update', { bucket: REG, name: 'team/busy', add: [{ logical_key: `f${i}.txt`, text: String(i) }] })),
    );
    for (const r of results) ok(r);
    const latest = ok(await call(h.client, 'package_browse', { bucket: REG, name: 'team/busy' }));
    expect(latest.total_files).toBe(6);
    // Six commits within a second or two: each revision still has its own timestamp pointer.
    const tags = (await listKeys(REG, '.quilt/named_packages/team/busy/')).filter((k) => /\/\d+$/.test(k));
    expect(tags).toHaveLength(6);
  });
});
