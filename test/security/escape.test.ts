/**
 * Escapes from the token's buckets: keys that a server would resolve into another bucket, and
 * cursors forged, altered or replayed to widen a search or a listing. Alice's IAM role reaches
 * bob's bucket, so only the server's own checks stand between her and his data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, objectText } from '../helpers/mcp.js';
import { graphqlHandler } from '../helpers/catalog-graphql.js';
import { refused, startTenants, type Tenants } from './tenants.js';

let t: Tenants;

beforeAll(async () => {
  t = await startTenants();
}, 60_000);

afterAll(async () => {
  await t?.close();
});

const RULE = /path segment|percent-encoding/;

/** Keys that resolve from tenant-a into tenant-b on some server, proxy or URL parser. */
const ESCAPES = [
  '../tenant-b/bravo/secret.txt',
  './../tenant-b/bravo/secret.txt',
  'alpha/../../tenant-b/bravo/secret.txt',
  '..\\tenant-b\\bravo\\secret.txt',
  '%2e%2e/tenant-b/bravo/secret.txt',
  '%252e%252e/tenant-b/bravo/secret.txt',
  '..%2ftenant-b%2fbravo%2fsecret.txt',
  '..;/tenant-b/bravo/secret.txt',
  '\uff0e\uff0e/tenant-b/bravo/secret.txt',
  '\uff0e\uff0e\uff0ftenant-b\uff0fbravo\uff0fsecret.txt',
];

describe('keys with dot segments never leave the server', () => {
  it('bucket_object_text, _info, _fetch and _link refuse every escape, naming the rule', async () => {
    for (const key of ESCAPES) {
      const uri = `s3://tenant-a/${key}`;
      for (const tool of ['bucket_object_text', 'bucket_object_info', 'bucket_object_fetch', 'bucket_object_link']) {
        const r = await refused(t.alice, tool, { uri }, RULE);
        expect(r.text).not.toContain('BOB SECRET');
        expect(r.text).toContain('could resolve them into another bucket');
      }
    }
    expect(t.aliceInB()).toBe(0);
  });

  it('bucket_objects_put refuses to write through a dot segment', async () => {
    const r = await refused(t.alice, 'bucket_objects_put', { bucket: 'tenant-a', items: [{ key: '../tenant-b/planted.txt', text: 'x' }] }, RULE);
    expect(r.text).toContain('No object was written');
    const listed = await t.s3.client.send(new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: 'tenant-b' }));
    expect((listed.Contents ?? []).map((o) => o.Key)).not.toContain('planted.txt');
    expect(t.aliceInB()).toBe(0);
  });

  it('bucket_objects_list and package_list refuse a dot-segment prefix', async () => {
    await refused(t.alice, 'bucket_objects_list', { bucket: 'tenant-a', prefix: '../tenant-b/' }, RULE);
    await refused(t.alice, 'package_list', { bucket: 'tenant-a', prefix: '../' }, RULE);
  });

  it('package_create refuses such a source, and a text entry whose storage key would escape', async () => {
    await refused(
      t.alice,
      'package_create',
      { bucket: 'tenant-a', name: 'alice/steal', entries: [{ logical_key: 'loot.txt', s3_uri: 's3://tenant-a/../tenant-b/bravo/secret.txt' }] },
      RULE,
    );
    // Stored at <name>/<logical key>: backslashes are separators to some servers.
    await refused(
      t.alice,
      'package_create',
      { bucket: 'tenant-a', name: 'alice/plant', entries: [{ logical_key: '..\\..\\..\\tenant-b\\planted.txt', text: 'x' }] },
      RULE,
    );
    await refused(t.alice, 'package_create_from_s3', { bucket: 'tenant-a', name: 'alice/steal', source_uri_prefix: 's3://tenant-a/../tenant-b/' }, RULE);
    expect(t.aliceInB()).toBe(0);
  });

  it('a workflow schema URL with a dot segment in the tenant\'s own bucket reads nothing of the other bucket', async () => {
    // Alice controls her bucket's workflow config: its schema URL points through "..".
    const config = [
      'version: "1"',
      'workflows:',
      '  w:',
      '    name: w',
      '    metadata_schema: s',
      'schemas:',
      '  s:',
      '    url: s3://tenant-a/../tenant-b/bravo/secret.txt',
    ].join('\n');
    await t.s3.put('tenant-a', '.quilt/workflows/config.yml', config);
    try {
      const r = await refused(t.alice, 'package_create', { bucket: 'tenant-a', name: 'alice/wf', entries: [{ logical_key: 'a.txt', text: 'a' }], workflow: 'w' }, RULE);
      expect(r.text).not.toContain('BOB SECRET');
    } finally {
      await t.s3.client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: 'tenant-a', Key: '.quilt/workflows/config.yml' }));
    }
    expect(t.aliceInB()).toBe(0);
  });

  it('catalog_uri refuses a dot-segment path', async () => {
    await refused(t.alice, 'catalog_uri', { bucket: 'tenant-a', path: '../tenant-b/bravo/secret.txt' }, RULE);
  });

  it('plain keys with dots in names still work', async () => {
    await t.s3.put('tenant-a', 'alpha/v1.0/..hidden/file.tar.gz', 'ok');
    const r = await call(t.alice, 'bucket_object_text', { uri: 's3://tenant-a/alpha/v1.0/..hidden/file.tar.gz' });
    expect(r.isError, r.text).toBe(false);
    expect(objectText(r).content).toBe('ok');
  });
});

describe('cursors cannot widen anything', () => {
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

  it('a hand-made search cursor with no buckets is refused instead of searching everything', async () => {
    const q = 'secret';
    const honest = await call(t.alice, 'search_catalog', { query: q, scope: 'package', limit: 1 });
    expect(honest.isError, honest.text).toBe(false);
    expect(honest.data.searched.buckets).toEqual(['tenant-a']);
    expect(honest.data.results.every((h: { bucket: string }) => h.bucket === 'tenant-a')).toBe(true);
    // The old, unsigned cursor shape, asking the catalog for every bucket.
    const inner = Buffer.from(JSON.stringify({ kind: 'p', q, b: null, offset: 0 })).toString('base64');
    const forged = encode({ v: 1, q, s: 'package', b: null, p: inner, o: null });
    const r = await refused(t.alice, 'search_catalog', { query: q, scope: 'package', limit: 50, cursor: forged }, /cursor was refused/);
    expect(r.text).not.toContain('tenant-b');
    // The honest cursor with its payload swapped (the tag kept) is refused too.
    const [, tag] = String(honest.data.next_cursor).split('.');
    await refused(t.alice, 'search_catalog', { query: q, scope: 'package', limit: 50, cursor: `${forged}.${tag}` }, /cursor was refused/);
    const more = await call(t.alice, 'search_catalog', { query: q, scope: 'package', limit: 50, cursor: honest.data.next_cursor });
    expect(more.isError, more.text).toBe(false);
    expect(more.data.results.length).toBeGreaterThan(0);
    expect(more.data.results.every((h: { bucket: string }) => h.bucket === 'tenant-a')).toBe(true);
  });

  it('a cursor issued to one tenant is refused for another', async () => {
    const a = await call(t.alice, 'search_catalog', { query: 'secret', scope: 'package', limit: 1 });
    expect(a.data.next_cursor).toBeTypeOf('string');
    await refused(t.bob, 'search_catalog', { query: 'secret', scope: 'package', limit: 1, cursor: a.data.next_cursor }, /not issued by this server to this caller/);
  });

  it('package_browse: forged, altered, replayed and cross-tool cursors are refused; the hash is a top hash', async () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ logical_key: `f${i}.txt`, text: `file ${i}` }));
    const made = await call(t.alice, 'package_create', { bucket: 'tenant-a', name: 'alice/pages', entries });
    expect(made.isError, made.text).toBe(false);
    const page1 = await call(t.alice, 'package_browse', { bucket: 'tenant-a', name: 'alice/pages', limit: 2 });
    expect(page1.isError, page1.text).toBe(false);
    const cursor = String(page1.data.next_cursor);
    const page2 = await call(t.alice, 'package_browse', { bucket: 'tenant-a', name: 'alice/pages', limit: 2, cursor });
    expect(page2.isError, page2.text).toBe(false);
    expect(page2.data.items.map((i: { logical_key: string }) => i.logical_key)).toEqual(['f2.txt', 'f3.txt']);

    // The old unsigned shape, with a "hash" that is a path.
    const forged = encode({ hash: '../../tenant-b/.quilt/packages/x', after: '' });
    await refused(t.alice, 'package_browse', { bucket: 'tenant-a', name: 'alice/pages', cursor: forged }, /cursor was refused/);
    const altered = `${encode({ hash: 'b'.repeat(64), after: '' })}.${cursor.split('.')[1]}`;
    await refused(t.alice, 'package_browse', { bucket: 'tenant-a', name: 'alice/pages', cursor: altered }, /cursor was refused/);
    await refused(t.bob, 'package_browse', { bucket: 'tenant-a', name: 'alice/pages', cursor }, /cursor was refused/);
    await refused(t.alice, 'package_list', { bucket: 'tenant-a', cursor }, /cursor was refused/);
    // The same cursor for another package or path is not this listing's.
    await refused(t.alice, 'package_browse', { bucket: 'tenant-a', name: 'alice/other', cursor }, /belongs to another listing/);
  });

  it('search results from buckets outside the token are withheld even when the catalog returns them', async () => {
    // A catalog that ignores the bucket filter (a bug, or a catalog token that reaches more).
    const honest = t.catalog.graphql;
    const lenient = graphqlHandler({
      packages: [
        { bucket: 'tenant-a', name: 'alice/x', hash: 'c'.repeat(64), size: 1, modified: '2026-01-01T00:00:00Z', entries: 1, comment: 'leaky' },
        { bucket: 'tenant-b', name: 'bob/x', hash: 'd'.repeat(64), size: 1, modified: '2026-01-01T00:00:00Z', entries: 1, comment: 'leaky' },
      ],
      objects: [],
    });
    t.catalog.graphql = (body, user) => lenient({ ...body, variables: { ...body.variables, buckets: null } }, user);
    try {
      const r = await call(t.alice, 'search_catalog', { query: 'leaky', scope: 'package' });
      expect(r.isError, r.text).toBe(false);
      expect(r.data.results.map((h: { bucket: string }) => h.bucket)).toEqual(['tenant-a']);
      expect(r.data.note).toContain('1 result(s) from buckets outside this token');
      expect(r.text).not.toContain('bob/x');
    } finally {
      t.catalog.graphql = honest;
    }
  });
});
