/**
 * Quilt API keys (qk_...): as a bearer over HTTP in JWT mode (MCP_QUILT_API_KEYS), and as
 * QUILT_API_KEY in desktop mode over stdio. The local catalog plays the registry strictly: a key is
 * a bearer on /graphql and /api/auth/get_credentials until it expires or is revoked, as the real
 * registry takes it (quilt3.login_with_api_key sends it exactly so).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCatalog, type LocalCatalog } from './helpers/catalog.js';
import { graphqlHandler } from './helpers/catalog-graphql.js';
import { connectHttp, rawPost, signToken, startHttpServer, TEST_SECRET, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { call, connectStdio, isolatedEnv } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let s3: LocalS3;
let catalog: LocalCatalog;
let server: HttpServer;

const awsEnv = () => ({
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_S3: s3.endpoint,
  AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
  AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
});

beforeAll(async () => {
  catalog = await startCatalog();
  catalog.graphql = graphqlHandler();
  s3 = await startS3({
    buckets: ['key-data'],
    // Only credentials the registry issued reach the data.
    deny: (r) => (r.sessionToken?.startsWith('catalog-session-') ? undefined : 'AccessDenied'),
  });
  await s3.put('key-data', 'hello.txt', 'hello with a key');
  server = await startHttpServer(
    isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, MCP_QUILT_API_KEYS: 'true', QUILT_CATALOG_URL: catalog.url, ...awsEnv() }),
  );
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await s3?.close();
  await catalog?.close();
});

const meCalls = (key: string) => catalog.requests.filter((r) => r.path === '/graphql' && r.bearer === key && r.body.includes('query Me')).length;

describe('an API key as the bearer over HTTP (JWT mode)', () => {
  it('acts as the key\'s user, with the registry\'s AWS credentials and catalog access', async () => {
    const key = catalog.createApiKey('ada');
    const client = await connectHttp(server.url, key);
    const status = await call(client, 'auth_status');
    expect(status.isError, status.text).toBe(false);
    expect(status.text).toContain('ada');
    expect(status.text).toContain('Quilt API key');
    const r = await call(client, 'bucket_object_text', { uri: 's3://key-data/hello.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(r.text).toContain('hello with a key');
    await client.close();
    expect(catalog.requests.some((q) => q.path === '/api/auth/get_credentials' && q.bearer === key && q.status === 200)).toBe(true);
    expect(server.stderr()).not.toContain(key);
  });

  it('caches by digest: later requests and concurrent first uses cost one exchange', async () => {
    const key = catalog.createApiKey('bea');
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectHttp(server.url, key)));
    await Promise.all(clients.map((c) => call(c, 'bucket_object_text', { uri: 's3://key-data/hello.txt' })));
    expect(meCalls(key)).toBe(1);
    const again = await connectHttp(server.url, key);
    expect((await call(again, 'bucket_object_text', { uri: 's3://key-data/hello.txt' })).isError).toBe(false);
    expect(meCalls(key)).toBe(1);
    await Promise.all([...clients, again].map((c) => c.close()));
  });

  it('refuses unknown, revoked, expired and malformed keys with a 401 that never shows the key', async () => {
    const revoked = catalog.createApiKey('cy');
    catalog.revokeApiKey(revoked);
    const expired = catalog.createApiKey('dee', -60);
    for (const key of ['qk_unknownunknownunknown', revoked, expired, 'qk_"bad"']) {
      const res = await rawPost(server.url, TOOLS_CALL('auth_status'), { authorization: `Bearer ${key}` });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
      const text = await res.text();
      expect(text).toMatch(/refused the API key|not a well-formed Quilt API key/);
      expect(text).not.toContain(key);
    }
    expect(server.stderr()).not.toContain(revoked);
  });

  it('still takes JWTs next to keys', async () => {
    const t = await signToken({ sub: 'jwt-user', buckets: ['key-data'] });
    const client = await connectHttp(server.url, t);
    expect((await call(client, 'auth_status')).text).toContain('jwt-user');
    await client.close();
  });
});

describe('QUILT_API_KEY in desktop mode over stdio', () => {
  it('uses the key for the catalog and AWS instead of any quilt3 login', async () => {
    const key = catalog.createApiKey('eve');
    const h = await connectStdio(isolatedEnv({ QUILT_API_KEY: key, QUILT_CATALOG_URL: catalog.url, ...awsEnv() }));
    try {
      const status = await call(h.client, 'auth_status');
      expect(status.isError, status.text).toBe(false);
      expect(status.text).toContain('Quilt API key');
      const r = await call(h.client, 'bucket_object_text', { uri: 's3://key-data/hello.txt' });
      expect(r.isError, r.text).toBe(false);
      expect(catalog.requests.some((q) => q.path === '/api/auth/get_credentials' && q.bearer === key && q.status === 200)).toBe(true);
      expect(h.stderr()).not.toContain(key);
    } finally {
      await h.close();
    }
  });

  it('says so when the key is refused', async () => {
    const key = catalog.createApiKey('fay');
    catalog.revokeApiKey(key);
    const h = await connectStdio(isolatedEnv({ QUILT_API_KEY: key, QUILT_CATALOG_URL: catalog.url, ...awsEnv() }));
    try {
      const r = await call(h.client, 'bucket_object_text', { uri: 's3://key-data/hello.txt' });
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/refused to issue AWS credentials/);
      expect(r.text).toContain('quilt3.api_keys.create');
      expect(r.text).not.toContain(key);
    } finally {
      await h.close();
    }
  });
});
