/**
 * Catalog search and catalog tools against a local catalog whose GraphQL is validated and
 * executed against the real schema: the two-token system (quilt3 session, JWT catalog_token),
 * every search outcome, retries, pagination, the S3 fallback, and graceful degradation.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse, validate } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCUMENTS } from '../src/catalog/documents.js';
import { startCatalog, writeQuilt3Login, type LocalCatalog } from './helpers/catalog.js';
import { catalogSchema, graphqlHandler } from './helpers/catalog-graphql.js';
import { connectHttp, signToken, startHttpServer, TEST_SECRET, type HttpServer } from './helpers/http.js';
import { call, connectStdio, isolatedEnv, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let catalog: LocalCatalog;
let gql: ReturnType<typeof graphqlHandler>;
let s3: LocalS3;
let desktop: Harness;
let jwtServer: HttpServer;
let sessionToken: string;
const CATALOG_TOKEN = 'jwt-catalog-token-alice';

function s3Settings(extra: Record<string, string | undefined> = {}) {
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9',
    ...extra,
  };
}

/** A desktop server whose quilt3 session belongs to `user` at the local catalog. */
async function desktopWithSession(user: string): Promise<{ h: Harness; token: string }> {
  const env = isolatedEnv(s3Settings());
  const session = catalog.login(user);
  writeQuilt3Login(env, catalog.url, session);
  return { h: await connectStdio(env), token: session.access_token };
}

beforeAll(async () => {
  catalog = await startCatalog();
  gql = graphqlHandler();
  catalog.graphql = gql;
  catalog.addAccessToken(CATALOG_TOKEN, 'alice');
  s3 = await startS3({ buckets: ['quilt-sandbox', 'quilt-demo', 'fallback-bucket'], deny: (r) => (r.key.startsWith('locked/') ? 'AccessDenied' : undefined) });
  await s3.put('quilt-sandbox', 'images/cells/a.png', 'x');
  await s3.put('fallback-bucket', 'data/cells/counts.csv', 'a,b\n1,2\n');
  await s3.put('fallback-bucket', 'data/cells/notes.md', '# notes');
  await s3.put('fallback-bucket', 'data/other.txt', 'other');
  await s3.put('fallback-bucket', '.quilt/named_packages/lab/cells-study/latest', 'a'.repeat(64));
  await s3.put('fallback-bucket', '.quilt/named_packages/lab/cells-study/1700000000', 'a'.repeat(64));
  await s3.put('fallback-bucket', '.quilt/named_packages/lab/unrelated/latest', 'b'.repeat(64));
  await s3.put('fallback-bucket', '.quilt/packages/' + 'a'.repeat(64), '{}');
  ({ h: desktop, token: sessionToken } = await desktopWithSession('alice'));
  jwtServer = await startHttpServer(
    isolatedEnv(s3Settings({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, QUILT_CATALOG_URL: catalog.url })),
  );
}, 60_000);

afterAll(async () => {
  await desktop?.close();
  await jwtServer?.stop();
  await catalog?.close();
  await s3?.close();
});

const jwtClient = async (claims: Record<string, unknown>) => connectHttp(jwtServer.url, await signToken(claims));

describe('GraphQL documents', () => {
  it('every document the server sends is valid against the catalog schema', () => {
    expect(Object.keys(DOCUMENTS).length).toBeGreaterThanOrEqual(6);
    for (const [name, doc] of Object.entries(DOCUMENTS)) {
      const errors = validate(catalogSchema(), parse(doc));
      expect(errors.map((e) => e.message), name).toEqual([]);
    }
  });

  it('the test catalog refuses an invalid document (so the check above is real)', async () => {
    const res = await fetch(`${catalog.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ searchPackages(searchString: "x") { total } }' }),
    });
    expect(res.status).toBe(400);
  });
});

describe('the two-token system', () => {
  it('desktop: searches with the token from the quilt3 session', async () => {
    const before = catalog.requests.length;
    const r = await call(desktop.client, 'search_catalog', { query: 'cells', scope: 'package', limit: 5 });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('catalog');
    expect(r.data.results).toHaveLength(5);
    expect(r.data.total).toEqual({ packages: 30 });
    expect(r.data.searched).toEqual({ buckets: 'all', as: 'alice <alice@example.com>' });
    const hit = r.data.results[0];
    expect(hit).toMatchObject({ type: 'package', bucket: 'quilt-sandbox', name: 'lab/cells-000', entries: 3, comment: 'cell images batch 0' });
    expect(hit.quilt_uri).toBe(`quilt+s3://quilt-sandbox#package=lab/cells-000@${hit.hash}`);
    expect(hit.catalog_url).toBe(`${catalog.url}/b/quilt-sandbox/packages/lab/cells-000/tree/${hit.hash}/`);
    const graphqlCalls = catalog.requests.slice(before).filter((q) => q.path === '/graphql');
    expect(graphqlCalls.map((q) => q.bearer)).toEqual([sessionToken]);
  });

  it('JWT: searches with the token\'s catalog_token, over HTTP', async () => {
    const client = await jwtClient({ sub: 'alice', catalog_token: CATALOG_TOKEN });
    const before = catalog.requests.length;
    const r = await call(client, 'search_catalog', { query: 'cells', scope: 'file', limit: 3 });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.results[0]).toMatchObject({
      type: 'file',
      bucket: 'quilt-sandbox',
      key: 'images/cells/img-000.png',
      version_id: 'v0',
      s3_uri: 's3://quilt-sandbox/images/cells/img-000.png?versionId=v0',
      catalog_url: `${catalog.url}/b/quilt-sandbox/tree/images/cells/img-000.png?version=v0`,
    });
    expect(catalog.requests.slice(before).filter((q) => q.path === '/graphql').map((q) => q.bearer)).toEqual([CATALOG_TOKEN]);
    await client.close();
  });

  it('the same search gives the same structured content in desktop and JWT mode', async () => {
    const args = { query: 'cells batch', scope: 'global', limit: 8 };
    const d = await call(desktop.client, 'search_catalog', args);
    const client = await jwtClient({ sub: 'alice', catalog_token: CATALOG_TOKEN });
    const j = await call(client, 'search_catalog', args);
    await client.close();
    expect(d.isError).toBe(false);
    // Cursors are sealed for their caller, so only they differ.
    const { next_cursor: dc, ...dRest } = d.data;
    const { next_cursor: jc, ...jRest } = j.data;
    expect(jRest).toEqual(dRest);
    expect(typeof dc).toBe('string');
    expect(typeof jc).toBe('string');
    expect(d.data.results.filter((x: { type: string }) => x.type === 'package')).toHaveLength(4);
  });

  it('JWT without catalog_token: catalog tools say why, AWS tools still work', async () => {
    // No buckets either: nothing to scan instead (token-policy.test.ts has the scan).
    const client = await jwtClient({ sub: 'aws-only', role_arn: 'arn:aws:iam::123456789012:role/x' });
    const r = await call(client, 'search_catalog', { query: 'cells' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('This token carries no catalog access: it has no catalog_token claim');
    const status = await call(client, 'auth_status');
    expect(status.data.catalog).toMatchObject({ configured: true, available: false, auth: 'none' });
    expect(status.data.catalog.error).toContain('no catalog_token');
    await client.close();
  });

  it('catalog token without AWS access: search works, AWS tools say why', async () => {
    const client = await jwtClient({ sub: 'alice', catalog_token: CATALOG_TOKEN, registry_url: catalog.url });
    const ok = await call(client, 'search_catalog', { query: 'cells', limit: 2 });
    expect(ok.isError, ok.text).toBe(false);
    const status = await call(client, 'auth_status');
    expect(status.data.catalog).toMatchObject({ available: true, auth: 'catalog_token', identity: { email: 'alice@example.com' } });
    await client.close();
    // The registry refuses AWS credentials for this user: the AWS half fails clearly, search still works.
    // (A token of its own: credentials of the token above are cached by the server, as they should be.)
    catalog.addAccessToken('alice-second-token', 'alice');
    catalog.failNext('/api/auth/get_credentials', 403, 5);
    const c2 = await jwtClient({ sub: 'alice', catalog_token: 'alice-second-token', catalog_url: catalog.url });
    const aws = await call(c2, 'bucket_objects_list', { bucket: 'quilt-sandbox' });
    expect(aws.isError, aws.text).toBe(true);
    expect(aws.text).toContain('refused to issue AWS credentials');
    const search = await call(c2, 'search_catalog', { query: 'cells', limit: 2 });
    expect(search.isError).toBe(false);
    await c2.close();
  });

  it('desktop: a catalog that needs a login says to run quilt3 login', async () => {
    const env = isolatedEnv(s3Settings({ QUILT_CATALOG_URL: catalog.url, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }));
    const h = await connectStdio(env);
    catalog.failNext('/graphql', 401);
    const r = await call(h.client, 'search_catalog', { query: 'cells' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('needs a login');
    expect(r.text).toContain(`quilt3 config ${catalog.url}`);
    // Anonymous access works when the catalog allows it, and says so.
    const anon = await call(h.client, 'search_catalog', { query: 'cells', limit: 1 });
    expect(anon.isError, anon.text).toBe(false);
    expect(anon.data.searched.as).toBe('anonymous');
    const objects = await call(h.client, 'bucket_objects_list', { bucket: 'quilt-sandbox' });
    expect(objects.isError).toBe(false);
    await h.close();
  });
});

describe('search outcomes', () => {
  it('pages through results with the cursor', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await call(desktop.client, 'search_catalog', { query: 'cells', scope: 'package', limit: 12, ...(cursor ? { cursor } : {}) });
      expect(r.isError, r.text).toBe(false);
      seen.push(...r.data.results.map((x: { name: string }) => x.name));
      cursor = r.data.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(30);
    expect(new Set(seen).size).toBe(30);
    expect(gql.calls.some((c) => c.operation === 'SearchMorePackages')).toBe(true);
  });

  it('pages a global search through both kinds', async () => {
    const r1 = await call(desktop.client, 'search_catalog', { query: 'cells', limit: 40 });
    expect(r1.data.total).toEqual({ packages: 30, files: 40 });
    expect(r1.data.results).toHaveLength(40);
    const r2 = await call(desktop.client, 'search_catalog', { query: 'cells', limit: 40, cursor: r1.data.next_cursor });
    expect(r2.data.results).toHaveLength(30);
    expect(r2.data.results.every((x: { type: string }) => x.type === 'file')).toBe(false);
    const keys = [...r1.data.results, ...r2.data.results].map((x: { name?: string; key?: string }) => x.name ?? x.key);
    expect(new Set(keys).size).toBe(70);
    expect(r2.data.next_cursor).toBeUndefined();
  });

  it('refuses a cursor from another search', async () => {
    const r1 = await call(desktop.client, 'search_catalog', { query: 'cells', scope: 'package', limit: 5 });
    const r2 = await call(desktop.client, 'search_catalog', { query: 'images', scope: 'package', limit: 5, cursor: r1.data.next_cursor });
    expect(r2.isError).toBe(true);
    expect(r2.text).toContain('belongs to another search');
  });

  it('an empty result says which buckets were searched and as whom', async () => {
    const r = await call(desktop.client, 'search_catalog', { query: 'zzz-nothing', buckets: ['quilt-demo'] });
    expect(r.isError).toBe(false);
    expect(r.data.results).toEqual([]);
    expect(r.data.total).toEqual({ packages: 0, files: 0 });
    expect(r.data.note).toBe('No results for "zzz-nothing" in quilt-demo, searching as alice <alice@example.com>.');
  });

  it('InvalidInput and OperationError are errors with the catalog\'s message, never "0 results"', async () => {
    const invalid = await call(desktop.client, 'search_catalog', { query: 'invalid:(', scope: 'package' });
    expect(invalid.isError).toBe(true);
    expect(invalid.text).toContain('The catalog rejected the package search: searchString: Cannot parse query: unbalanced parenthesis');
    const op = await call(desktop.client, 'search_catalog', { query: 'explode', scope: 'file' });
    expect(op.isError).toBe(true);
    expect(op.text).toContain("The catalog's file search failed: Search backend timed out");
  });

  it('retries a 500 and succeeds', async () => {
    const before = catalog.requests.filter((q) => q.path === '/graphql').length;
    catalog.failNext('/graphql', 500);
    const r = await call(desktop.client, 'search_catalog', { query: 'cells', scope: 'package', limit: 1 });
    expect(r.isError, r.text).toBe(false);
    expect(catalog.requests.filter((q) => q.path === '/graphql').length - before).toBe(2);
  });

  it('says so when the catalog keeps failing', async () => {
    catalog.failNext('/graphql', 503, 3);
    const r = await call(desktop.client, 'search_catalog', { query: 'cells', scope: 'package' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('failed (HTTP 503');
  });

  it('reports an unreachable catalog', async () => {
    const h = await connectStdio(isolatedEnv(s3Settings({ QUILT_CATALOG_URL: 'http://127.0.0.1:9' })));
    const r = await call(h.client, 'search_catalog', { query: 'cells' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('Could not reach the Quilt catalog at http://127.0.0.1:9');
    await h.close();
  });

  it('never follows a catalog redirect, and refuses an answer too large for a catalog', async () => {
    const seen: string[] = [];
    const elsewhere = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('{}');
    });
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    const odd = http.createServer((req, res) => {
      if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        for (let i = 0; i < 17; i++) res.write(chunk);
        res.end('{}');
        return;
      }
      res.writeHead(302, { location: `${target}${req.url}` });
      res.end();
    });
    await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
    try {
      const h = await connectStdio(isolatedEnv(s3Settings({ QUILT_CATALOG_URL: base })));
      const moved = await call(h.client, 'search_catalog', { query: 'cells' });
      await h.close();
      expect(moved.isError).toBe(true);
      expect(moved.text).toContain('answered with a redirect (HTTP 302)');
      expect(seen).toEqual([]);
      const h2 = await connectStdio(isolatedEnv(s3Settings({ QUILT_CATALOG_URL: `${base}/big` })));
      const big = await call(h2.client, 'search_catalog', { query: 'cells' });
      await h2.close();
      expect(big.isError).toBe(true);
      expect(big.text).toContain('more than 16 MiB');
    } finally {
      odd.close();
      elsewhere.close();
    }
  });

  it('reports an expired catalog token', async () => {
    const client = await jwtClient({ sub: 'alice', catalog_token: 'revoked-token' });
    const r = await call(client, 'search_catalog', { query: 'cells' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain("refused the token's catalog_token (expired or revoked)");
    expect(r.text).toContain('get a new token');
    await client.close();
  });

  it('keeps JWT searches inside the token\'s buckets', async () => {
    const client = await jwtClient({ sub: 'alice', catalog_token: CATALOG_TOKEN, buckets: ['quilt-demo'] });
    const r = await call(client, 'search_catalog', { query: 'cells', scope: 'package', limit: 50 });
    expect(r.data.results.every((x: { bucket: string }) => x.bucket === 'quilt-demo')).toBe(true);
    expect(r.data.searched.buckets).toEqual(['quilt-demo']);
    const outside = await call(client, 'search_catalog', { query: 'cells', buckets: ['quilt-sandbox'] });
    expect(outside.isError).toBe(true);
    expect(outside.text).toContain('not in this token\'s buckets');
    await client.close();
  });
});

describe('without a catalog', () => {
  it('falls back to scanning S3 and says what it cannot do', async () => {
    const h = await connectStdio(s3Env(s3.endpoint));
    const r = await call(h.client, 'search_catalog', { query: 'cells', buckets: ['fallback-bucket'] });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('s3_fallback');
    expect(r.data.results).toEqual([
      { type: 'package', bucket: 'fallback-bucket', name: 'lab/cells-study', hash: 'a'.repeat(64), modified: expect.any(String), quilt_uri: `quilt+s3://fallback-bucket#package=lab/cells-study@${'a'.repeat(64)}` },
      expect.objectContaining({ type: 'file', key: 'data/cells/counts.csv', size: 8, s3_uri: 's3://fallback-bucket/data/cells/counts.csv' }),
      expect.objectContaining({ type: 'file', key: 'data/cells/notes.md' }),
    ]);
    expect(r.data.note).toContain('No Quilt catalog is configured, so this searched S3 directly');
    expect(r.data.note).toContain('not file contents');
    // Without buckets it searches those the credentials can see (S3 lists them), and says so.
    const none = await call(h.client, 'search_catalog', { query: 'cells' });
    expect(none.isError, none.text).toBe(false);
    expect(none.data.interpretation.buckets_from).toBe('listed');
    expect(none.data.searched.buckets).toContain('fallback-bucket');
    expect(none.data.results.map((x: { bucket: string }) => x.bucket)).toContain('fallback-bucket');
    const uri = await call(h.client, 'catalog_uri', { bucket: 'fallback-bucket', package: 'lab/cells-study' });
    expect(uri.data).toMatchObject({ quilt_uri: 'quilt+s3://fallback-bucket#package=lab/cells-study' });
    expect(uri.data.note).toContain('No Quilt catalog is configured');
    const status = await call(h.client, 'auth_status');
    expect(status.data.catalog).toMatchObject({ configured: false, available: false, auth: 'none' });
    await h.close();
  });
});

describe('catalog tools', () => {
  it('bucket_list comes from the catalog with titles', async () => {
    const r = await call(desktop.client, 'bucket_list');
    expect(r.data.source).toBe('catalog');
    expect(r.data.buckets).toEqual([
      { name: 'quilt-sandbox', uri: 's3://quilt-sandbox', title: 'Sandbox', description: 'Scratch data for experiments' },
      { name: 'quilt-demo', uri: 's3://quilt-demo', title: 'Demo data' },
    ]);
  });

  it('bucket_list says when the catalog failed and lists from the token instead', async () => {
    const client = await jwtClient({ sub: 'alice', catalog_token: CATALOG_TOKEN, buckets: ['quilt-demo'] });
    catalog.failNext('/graphql', 500, 3);
    const r = await call(client, 'bucket_list');
    expect(r.data.source).toBe('token');
    expect(r.data.note).toContain("The catalog's bucket list could not be read");
    await client.close();
  });

  it('catalog_uri builds catalog URLs and quilt+ URIs', async () => {
    const hash = 'c'.repeat(64);
    const pkg = await call(desktop.client, 'catalog_uri', { bucket: 'quilt-demo', package: 'lab/cells-001', path: 'a dir/x.csv', hash });
    expect(pkg.data).toEqual({
      catalog_url: `${catalog.url}/b/quilt-demo/packages/lab/cells-001/tree/${hash}/a%20dir/x.csv`,
      quilt_uri: `quilt+s3://quilt-demo#package=lab/cells-001@${hash}&path=a%20dir/x.csv`,
    });
    const obj = await call(desktop.client, 'catalog_uri', { bucket: 'quilt-demo', path: 'images/a.png' });
    expect(obj.data).toEqual({ catalog_url: `${catalog.url}/b/quilt-demo/tree/images/a.png`, s3_uri: 's3://quilt-demo/images/a.png' });
    const bad = await call(desktop.client, 'catalog_uri', { bucket: 'quilt-demo', package: 'no-slash' });
    expect(bad.isError).toBe(true);
  });

  it('auth_status reports the AWS and catalog halves', async () => {
    const r = await call(desktop.client, 'auth_status');
    expect(r.data.catalog).toEqual({
      configured: true,
      available: true,
      url: catalog.url,
      auth: 'quilt3 session',
      identity: { name: 'alice', email: 'alice@example.com', role: 'ReadWriteQuiltBucket' },
    });
    expect(r.data.aws.source).toContain('quilt3 login session');
  });

  it('discover_permissions probes in desktop mode and reads claims in JWT mode', async () => {
    await s3.put('quilt-demo', 'locked/secret.txt', 'x');
    const h = await connectStdio(s3Env(s3.endpoint));
    const r = await call(h.client, 'discover_permissions', { buckets: ['quilt-sandbox', 'no-such-bucket'] });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.buckets[0]).toMatchObject({ bucket: 'quilt-sandbox', list: 'yes', read: 'yes', write: 'yes', source: 'probe' });
    // The bucket is named as it was given (it used to read `Bucket "?" does not exist`).
    expect(r.data.buckets[1]).toMatchObject({ bucket: 'no-such-bucket', list: 'unknown', detail: 'Bucket "no-such-bucket" does not exist.' });
    expect(r.text).toContain('Bucket "no-such-bucket" does not exist');
    await h.close();
    const client = await jwtClient({ sub: 'x', role_arn: 'arn:aws:iam::123456789012:role/r', buckets: ['quilt-demo'], permissions: ['s3:ListBucket', 's3:GetObject'] });
    const before = s3.requests.length;
    const j = await call(client, 'discover_permissions', { buckets: ['quilt-demo', 'quilt-sandbox'] });
    expect(j.data.buckets).toEqual([
      expect.objectContaining({ bucket: 'quilt-demo', list: 'yes', read: 'yes', write: 'no', source: 'token' }),
      expect.objectContaining({ bucket: 'quilt-sandbox', list: 'no', read: 'no', write: 'no', source: 'token' }),
    ]);
    expect(s3.requests.length).toBe(before);
    await client.close();
  });
});
