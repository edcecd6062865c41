/**
 * The search helpers: search_suggest (refinements from what exists, from the catalog or a bounded
 * S3 scan) and search_catalog's `interpretation` (how a query was read), over stdio against the
 * local catalog (GraphQL validated against the real schema) and s3rver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuery } from '../src/search/explain.js';
import { queryWords, SCAN_BUCKETS } from '../src/search/suggest.js';
import { startCatalog, type LocalCatalog } from './helpers/catalog.js';
import { defaultFixtures, graphqlHandler } from './helpers/catalog-graphql.js';
import { freePort } from './helpers/http.js';
import { call, connectStdio, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let catalog: LocalCatalog;
let gql: ReturnType<typeof graphqlHandler>;
let s3: LocalS3;
let withCatalog: Harness;
let s3Only: Harness;

beforeAll(async () => {
  catalog = await startCatalog();
  const fixtures = defaultFixtures();
  // Metadata on some packages: the catalog's facets come from it.
  fixtures.packages.forEach((p, i) => {
    if (i < 10) p.meta = { organism: i % 2 ? 'mouse' : 'human', stage: { day: i } };
    else if (i < 14) p.meta = { instrument: 'confocal-lsm', reviewed: true };
  });
  gql = graphqlHandler(fixtures);
  catalog.graphql = gql;
  s3 = await startS3({ buckets: ['scan-cells', 'scan-misc', ...Array.from({ length: SCAN_BUCKETS }, (_, i) => `scan-zz-${i}`)] });
  await s3.put('scan-misc', 'raw/a.txt', 'a');
  await s3.put('scan-misc', 'raw/b.csv', 'x,y\n');
  withCatalog = await connectStdio(s3Env(s3.endpoint, { QUILT_CATALOG_URL: catalog.url }));
  s3Only = await connectStdio(s3Env(s3.endpoint));
  for (const [bucket, name, meta, uri] of [
    ['scan-cells', 'lab/cell-atlas', { organism: 'zebrafish', lab: { pi: 'Ada' } }, 's3://scan-misc/raw/a.txt'],
    ['scan-cells', 'lab/cell-counts', { organism: 'mouse', count: 12 }, 's3://scan-misc/raw/b.csv'],
    ['scan-misc', 'ops/backups', { retention: 30 }, 's3://scan-misc/raw/a.txt'],
  ] as const) {
    const r = await call(s3Only.client, 'package_create', { bucket, name, meta, entries: [{ logical_key: 'f', s3_uri: uri }] });
    expect(r.isError, r.text).toBe(false);
  }
}, 60_000);

afterAll(async () => {
  await withCatalog?.close();
  await s3Only?.close();
  await catalog?.close();
  await s3?.close();
});

describe('query reading', () => {
  it('takes plain words out of query syntax', () => {
    expect(queryWords('name:"lab/Cells" AND organism:mouse* -draft')).toEqual(['name', 'lab', 'cells', 'organism', 'mouse', 'draft']);
    expect(queryWords('  ')).toEqual([]);
  });

  it('reads query-string syntax: terms, phrases, fields, operators, wildcards', () => {
    expect(parseQuery('cells AND "cell images" organism:mouse -draft ima*')).toEqual({
      terms: ['cells', 'draft', 'ima*'],
      phrases: ['cell images'],
      fields: [{ field: 'organism', value: 'mouse' }],
      operators: ['AND', '- (must not)'],
      wildcards: true,
    });
  });
});

describe('search_suggest from the catalog', () => {
  it('suggests package names, metadata keys (with values) and runnable queries that exist', async () => {
    const r = await call(withCatalog.client, 'search_suggest', { query: 'cells mouse' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('catalog');
    expect(r.data.words).toEqual(['cells', 'mouse']);
    expect(r.data.packages.length).toBeGreaterThan(0);
    for (const p of r.data.packages) expect(p.name).toMatch(/^lab\/cells-\d{3}$/);
    const organism = r.data.metadata_keys.find((k: { key: string }) => k.key === 'organism');
    expect(organism).toMatchObject({ type: 'keyword', matched: ['mouse'] });
    // Facets of the packages that match: a refinement, so only the values among them.
    expect(organism.values).toEqual(['mouse']);
    expect(r.data.metadata_keys.find((k: { key: string }) => k.key === 'stage.day')).toMatchObject({ type: 'number', range: { min: 1, max: 9 }, matched: [] });
    expect(r.data.queries).toContainEqual(expect.objectContaining({ query: `"${r.data.packages[0].name}"`, scope: 'package' }));
    expect(r.data.queries).toContainEqual(expect.objectContaining({ query: '"mouse"', why: 'Packages have metadata organism = "mouse".' }));
    expect(r.text).toMatch(/Queries:\n {2}search_catalog\(query=/);
  });

  it('suggests a bucket the words name, and searching inside it', async () => {
    const r = await call(withCatalog.client, 'search_suggest', { query: 'demo cells' });
    expect(r.data.buckets[0]).toMatchObject({ name: 'quilt-demo', title: 'Demo data', matched: ['demo'] });
    expect(r.data.queries[0]).toMatchObject({ query: 'cells', scope: 'global', buckets: ['quilt-demo'] });
  });

  it('an empty query shows what exists; given buckets limit every part', async () => {
    const r = await call(withCatalog.client, 'search_suggest', { query: '', buckets: ['quilt-sandbox'], limit: 50 });
    expect(r.data.buckets.map((b: { name: string }) => b.name)).toEqual(['quilt-sandbox']);
    expect(new Set(r.data.packages.map((p: { bucket: string }) => p.bucket))).toEqual(new Set(['quilt-sandbox']));
    expect(r.data.metadata_keys.map((k: { key: string }) => k.key).sort()).toEqual(['instrument', 'organism', 'reviewed', 'stage.day']);
    const sent = gql.calls.filter((c) => c.operation === 'SearchSuggest').slice(-1)[0];
    expect(sent?.variables.buckets).toEqual(['quilt-sandbox']);
  });

  it('a word nothing has gets a wildcard suggestion, not an error', async () => {
    const r = await call(withCatalog.client, 'search_suggest', { query: 'zebra' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.packages).toEqual([]);
    expect(r.data.queries).toContainEqual(expect.objectContaining({ query: 'zebra*' }));
    expect(r.text).toMatch(/Nothing that exists matches these words/);
  });
});

describe('search_suggest from S3 (no catalog)', () => {
  it('scans registry listings and manifest headers, says so, and suggests literal queries', async () => {
    const r = await call(s3Only.client, 'search_suggest', { query: 'cell zebrafish' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('s3_scan');
    expect(r.data.buckets[0]).toMatchObject({ name: 'scan-cells', matched: ['cell'] });
    expect(r.data.packages.map((p: { name: string }) => p.name).sort()).toEqual(['lab/cell-atlas', 'lab/cell-counts']);
    expect(r.data.packages[0].quilt_uri).toMatch(/^quilt\+s3:\/\/scan-cells#package=lab\/cell-/);
    const keys = Object.fromEntries(r.data.metadata_keys.map((k: { key: string }) => [k.key, k]));
    expect(keys.organism).toMatchObject({ type: 'string', matched: ['zebrafish'] });
    expect(keys.organism.values.sort()).toEqual(['mouse', 'zebrafish']);
    // Unquoted: the S3 scan matches words literally.
    expect(r.data.queries).toContainEqual(expect.objectContaining({ query: 'lab/cell-atlas', scope: 'package', buckets: ['scan-cells'] }));
    expect(r.data.note).toMatch(/No Quilt catalog|catalog/);
    // Bounded: SCAN_BUCKETS of the visible buckets, the ones the words name first.
    expect(r.data.note).toMatch(new RegExp(`package names in ${SCAN_BUCKETS} of ${SCAN_BUCKETS + 2} bucket\\(s\\)`));
    expect(r.data.note).toMatch(/Buckets not scanned: 2 \(pass buckets to choose\)/);
  });
});

describe('search_catalog explains how it read the query', () => {
  it('catalog: backend, catalog URL, buckets and where they came from, syntax, parsed query', async () => {
    const r = await call(withCatalog.client, 'search_catalog', { query: 'cells AND comment:"batch 1"', scope: 'package', limit: 2 });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.interpretation).toMatchObject({
      backend: 'catalog',
      catalog: catalog.url,
      kinds: ['packages'],
      buckets: 'all',
      buckets_from: 'catalog',
      terms: ['cells'],
      fields: [{ field: 'comment', value: 'batch 1' }],
      operators: ['AND'],
      wildcards: false,
      revisions: 'Every revision of a package (not only latest).',
    });
    expect(r.data.interpretation.syntax).toMatch(/Elasticsearch query-string/);
    expect(r.data.interpretation.fallback_reason).toBeUndefined();
    const more = await call(withCatalog.client, 'search_catalog', { query: 'cells', buckets: ['quilt-demo'], limit: 2 });
    expect(more.data.interpretation).toMatchObject({ buckets: ['quilt-demo'], buckets_from: 'argument', kinds: ['packages', 'files'] });
    const next = await call(withCatalog.client, 'search_catalog', { query: 'cells', buckets: ['quilt-demo'], limit: 2, cursor: more.data.next_cursor });
    expect(next.data.interpretation.buckets_from).toBe('cursor');
  });

  it('S3 fallback: why no catalog, and the syntax it understands (AND/OR/NOT, phrases) or refuses (fields, inner wildcards)', async () => {
    const r = await call(s3Only.client, 'search_catalog', { query: 'raw AND (csv OR txt) NOT backups', buckets: ['scan-misc'], scope: 'file' });
    expect(r.isError, r.text).toBe(false);
    const i = r.data.interpretation;
    expect(i).toMatchObject({ backend: 's3_fallback', catalog: null, buckets: ['scan-misc'], buckets_from: 'argument', operators: ['AND', 'OR', 'NOT'] });
    expect(i.fallback_reason.length).toBeGreaterThan(10);
    expect(i.syntax).toMatch(/S3 scan.*AND, OR, NOT/);
    expect(r.data.results.map((x: { key: string }) => x.key).sort()).toEqual(['raw/a.txt', 'raw/b.csv']);
    // "AND" is an operator, not a word that keys must contain.
    const literal = await call(s3Only.client, 'search_catalog', { query: 'csv AND raw', buckets: ['scan-misc'], scope: 'file' });
    expect(literal.data.results.map((x: { key: string }) => x.key)).toEqual(['raw/b.csv']);
    // A phrase is words next to each other, whatever separates them in the key.
    const phrase = await call(s3Only.client, 'search_catalog', { query: '"raw b"', buckets: ['scan-misc'], scope: 'file' });
    expect(phrase.data.results.map((x: { key: string }) => x.key)).toEqual(['raw/b.csv']);
    expect(phrase.data.interpretation.phrases).toEqual(['raw b']);
    const not = await call(s3Only.client, 'search_catalog', { query: 'raw -csv', buckets: ['scan-misc'], scope: 'file' });
    expect(not.data.results.map((x: { key: string }) => x.key)).toEqual(['raw/a.txt']);
    // What it cannot honour is refused with a message, before any S3 call.
    const before = s3.requests.length;
    for (const [query, message] of [
      ['organism:mouse', /cannot filter by field \(organism:mouse\)/],
      ['ra*w', /cannot match a wildcard inside a word/],
      ['"raw data', /cannot read an unclosed quote/],
      ['(raw OR csv', /cannot read unbalanced parentheses/],
    ] as const) {
      const bad = await call(s3Only.client, 'search_catalog', { query, buckets: ['scan-misc'] });
      expect(bad.isError, query).toBe(true);
      expect(bad.text).toMatch(message);
      expect(bad.text).toContain('Fix: It understands words, "quoted phrases", AND, OR, NOT');
    }
    expect(s3.requests.length).toBe(before);
  });

  it('S3 mode: every query search_suggest offers runs and finds something', async () => {
    const r = await call(s3Only.client, 'search_suggest', { query: 'cell zebrafish' });
    expect(r.data.queries.length).toBeGreaterThan(0);
    for (const q of r.data.queries as Array<{ query: string; scope: string; buckets?: string[] }>) {
      const run = await call(s3Only.client, 'search_catalog', { query: q.query, scope: q.scope, ...(q.buckets ? { buckets: q.buckets } : {}) });
      expect(run.isError, `${q.query}: ${run.text}`).toBe(false);
      expect(run.data.results.length, q.query).toBeGreaterThan(0);
    }
  });

  it('a configured catalog that does not answer: the search falls back to an S3 scan, labelled as one', async () => {
    const down = await connectStdio(s3Env(s3.endpoint, { QUILT_CATALOG_URL: `http://127.0.0.1:${await freePort()}` }));
    try {
      const r = await call(down.client, 'search_catalog', { query: 'csv', buckets: ['scan-misc'], scope: 'file' });
      expect(r.isError, r.text).toBe(false);
      expect(r.data.source).toBe('s3_fallback');
      expect(r.data.interpretation.fallback_reason).toMatch(/The Quilt catalog http:\/\/127\.0\.0\.1:\d+ did not answer/);
      expect(r.data.results.map((x: { key: string }) => x.key)).toEqual(['raw/b.csv']);
      expect(r.text).toContain('S3 scan, no catalog');
      expect(r.text).toMatch(/did not answer .*so this searched S3 directly/);
    } finally {
      await down.close();
    }
  }, 60_000);
});
