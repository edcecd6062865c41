/**
 * The defects the fault campaign (campaign.test.ts) found, one test each, small enough to say
 * exactly what was wrong. Each runs the built server against the local stand-ins through the
 * network proxy (test/helpers/network-proxy.ts), with the one fault that showed the defect.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCatalog, writeQuilt3Login, type LocalCatalog } from '../helpers/catalog.js';
import { graphqlHandler, TABULATOR_CONFIG } from '../helpers/catalog-graphql.js';
import { jwtEnv, signToken, startHttpServer, type HttpServer } from '../helpers/http.js';
import { call, connectStdio, isolatedEnv, s3Env, type Harness } from '../helpers/mcp.js';
import { startNetworkProxy, type Conditions, type NetworkProxy } from '../helpers/network-proxy.js';
import { checkRegistry, s3Registry } from '../helpers/registry-check.js';
import { startS3, type LocalS3, type S3Request } from '../helpers/s3.js';
import { startSts, type LocalSts } from '../helpers/sts.js';
import { callTool } from './world.js';

const BUCKET = 'defects';
const CLEAN: Conditions = { delayMs: 0, connectMs: 0 };
const firstAttempt = (h: http.IncomingHttpHeaders) => /attempt=1;/.test(String(h['amz-sdk-request'] ?? ''));
const texts = (n: number, tag = 'x') => Array.from({ length: n }, (_, i) => ({ logical_key: `f${String(i).padStart(3, '0')}.txt`, text: `${tag} ${i}\n` }));

let s3: LocalS3;
/** Awaited by the local S3 before it serves a request (a test acts "at the same moment"). */
let before: ((r: S3Request) => Promise<void>) | undefined;
let net: NetworkProxy;
/** Desktop mode, AWS keys from the environment, S3 through the proxy. */
let desk: Harness;

beforeAll(async () => {
  s3 = await startS3({ buckets: [BUCKET], before: (r) => before?.(r) });
  net = await startNetworkProxy(s3.endpoint, CLEAN);
  await s3.put(BUCKET, 'big.csv', Array.from({ length: 2000 }, (_, i) => `row-${i},${i * 7}`).join('\n'), 'text/csv');
  desk = await connectStdio(s3Env(net.endpoint));
}, 60_000);

afterAll(async () => {
  await desk?.close();
  await net?.close();
  await s3?.close();
});

const registry = () => s3Registry(s3.client, BUCKET);

describe('S3 faults', () => {
  it("a blip failing the first attempt of every request does not fail an 80-entry write (the SDK's client-wide retry quota ran out at ~50 retries)", async () => {
    net.set((req) => (firstAttempt(req.headers) ? { ...CLEAN, fault: { kind: 'status', status: 500, code: 'InternalError' } } : CLEAN));
    const before = net.exchanges.length;
    const r = await call(desk.client, 'package_create', { bucket: BUCKET, name: 'blip/eighty', entries: texts(80) });
    net.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    // Each request twice (the failed attempt and its retry), never a storm.
    expect(net.exchanges.length - before).toBeLessThanOrEqual(2 * 90);
    expect(await checkRegistry(registry(), { names: ['blip/eighty'], expect: [{ name: 'blip/eighty', latest: [r.data.top_hash] }] })).toEqual([]);
  });

  it('a commit whose answer to the write of latest is lost is reported committed, not as a conflict that changed nothing', async () => {
    // The PUT of latest lands, its answer is lost; the SDK sends it again and S3 refuses it (412: the ETag moved).
    net.set((req) => (req.method === 'PUT' && req.url!.includes('/latest') && firstAttempt(req.headers) ? { ...CLEAN, fault: { kind: 'reset-after' } } : CLEAN));
    const made = await call(desk.client, 'package_create', { bucket: BUCKET, name: 'lost/reply', entries: texts(2), message: 'one' });
    const updated = await call(desk.client, 'package_update', { bucket: BUCKET, name: 'lost/reply', add: [{ logical_key: 'more.txt', text: 'more' }], message: 'two' });
    net.set(CLEAN);
    expect(made.isError, made.text).toBe(false);
    expect(updated.isError, updated.text).toBe(false);
    expect(await checkRegistry(registry(), { names: ['lost/reply'], expect: [{ name: 'lost/reply', latest: [updated.data.top_hash] }] })).toEqual([]);
    // Deleting the latest revision moves latest back, with the same lost answer.
    net.set((req) => (req.method === 'PUT' && req.url!.includes('/latest') && firstAttempt(req.headers) ? { ...CLEAN, fault: { kind: 'reset-after' } } : CLEAN));
    const deleted = await call(desk.client, 'package_delete', { bucket: BUCKET, name: 'lost/reply', hash: updated.data.top_hash });
    net.set(CLEAN);
    expect(deleted.isError, deleted.text).toBe(false);
    expect(deleted.data.latest).toBe(made.data.top_hash);
    expect(await checkRegistry(registry(), { names: ['lost/reply'], expect: [{ name: 'lost/reply', latest: [made.data.top_hash] }] })).toEqual([]);
  });

  it('a retry goes out on a new connection: pooled connections the server dropped do not take every attempt (s3-midway-first failed a 200-entry write)', async () => {
    // The keep-alive race at its worst: S3 resets any request sent on a connection it already
    // answered on. In the campaign, connections reset just after a complete answer went back to the
    // pool, and a retry that took one failed again, 3 attempts in a row. Here every retry that
    // takes a pooled connection fails, so only retries on new connections can succeed.
    const answered = new WeakSet<object>();
    net.set((req) => {
      const again = answered.has(req.socket);
      answered.add(req.socket);
      return again ? { ...CLEAN, fault: { kind: 'reset-before' } } : CLEAN;
    });
    const r = await call(desk.client, 'package_create', { bucket: BUCKET, name: 'keepalive/race', entries: texts(40) });
    net.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    expect(await checkRegistry(registry(), { names: ['keepalive/race'], expect: [{ name: 'keepalive/race', latest: [r.data.top_hash] }] })).toEqual([]);
  });

  it('a body cut midway is read on from where it stopped (it used to fail the call)', async () => {
    net.set((req) => (req.method === 'GET' && firstAttempt(req.headers) && !req.headers['if-match'] ? { ...CLEAN, fault: { kind: 'reset-midway' } } : CLEAN));
    const text = await call(desk.client, 'bucket_object_text', { uri: `s3://${BUCKET}/big.csv`, max_bytes: 100_000 });
    const made = await call(desk.client, 'package_create', { bucket: BUCKET, name: 'cut/body', entries: texts(30) });
    const browsed = await call(desk.client, 'package_browse', { bucket: BUCKET, name: 'cut/body', recursive: true, limit: 100 });
    net.set(CLEAN);
    expect(text.isError, text.text).toBe(false);
    expect(text.text).toContain('row-1999,13993');
    expect(browsed.isError, browsed.text).toBe(false);
    expect(browsed.data.items).toHaveLength(30);
    // The rest of a body was asked for with a Range, pinned to the ETag.
    const resumed = net.exchanges.filter((x) => x.method === 'GET' && x.headers.range && x.headers['if-match']);
    expect(resumed.length).toBeGreaterThan(0);
    expect(made.isError, made.text).toBe(false);
  });

  it('a body cut midway while the object changes is a conflict, never half of each version', async () => {
    await s3.put(BUCKET, 'moving.csv', 'a'.repeat(50_000), 'text/csv');
    // The first GET of it (bucket_object_text reads with a Range of its own) is cut midway.
    net.set((req) => (req.method === 'GET' && req.url!.includes('moving.csv') && !req.headers['if-match'] ? { ...CLEAN, fault: { kind: 'reset-midway' } } : CLEAN));
    // Another writer replaces the object before the rest of it is asked for.
    let changed = false;
    before = async (r) => {
      // The resumed request: the rest, pinned to the ETag of the first.
      if (r.key !== 'moving.csv' || r.method !== 'GET' || !r.headers['if-match'] || changed) return;
      changed = true;
      await s3.put(BUCKET, 'moving.csv', 'b'.repeat(50_000), 'text/csv');
    };
    const r = await call(desk.client, 'bucket_object_text', { uri: `s3://${BUCKET}/moving.csv`, max_bytes: 100_000 });
    before = undefined;
    net.set(CLEAN);
    expect(changed).toBe(true);
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/changed by someone else/);
  });
});

describe('call deadlines', () => {
  let quick: Harness;
  beforeAll(async () => {
    quick = await connectStdio(s3Env(net.endpoint, { MCP_CALL_TIMEOUT: '2' }));
  });
  afterAll(async () => quick?.close());

  it('a call waiting on S3 that never answers ends at its deadline, saying to retry (it used to wait 3 x 60 s)', async () => {
    net.set((req) => (req.method === 'GET' ? { ...CLEAN, fault: { kind: 'hang' } } : CLEAN));
    const started = performance.now();
    const r = await call(quick.client, 'bucket_object_text', { uri: `s3://${BUCKET}/big.csv` });
    const ms = performance.now() - started;
    net.set(CLEAN);
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/made no progress for 2 s/);
    expect(r.text).toMatch(/Retry/);
    expect(ms).toBeLessThan(20_000);
  });

  it('a call that keeps getting answers runs past the deadline: the deadline is for silence, not for work', async () => {
    // Every answer takes 0.7 s; the write waits for several in a row, over 2 s in all.
    net.set({ delayMs: 700, connectMs: 0 });
    const started = performance.now();
    const r = await call(quick.client, 'package_create', { bucket: BUCKET, name: 'slow/steady', entries: texts(3) });
    net.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    expect(performance.now() - started).toBeGreaterThan(2_000);
  });

  it("a bucket's region lookup that S3 never answers is given up, so calls after S3 recovers do not wait on it for minutes", async () => {
    const slow = await connectStdio(s3Env(net.endpoint, { MCP_CALL_TIMEOUT: '60' }));
    try {
      // bucket_object_link signs in the bucket's region, which HeadBucket tells.
      net.set((req) => (req.method === 'HEAD' && /^\/defects\/?$/.test(req.url!.split('?')[0]!) ? { ...CLEAN, fault: { kind: 'hang' } } : CLEAN));
      const first = call(slow.client, 'bucket_object_link', { uri: `s3://${BUCKET}/big.csv` });
      await new Promise((r) => setTimeout(r, 500));
      net.set(CLEAN);
      const started = performance.now();
      const second = await call(slow.client, 'bucket_object_link', { uri: `s3://${BUCKET}/big.csv` });
      expect(second.isError, second.text).toBe(false);
      // The lookup gives up after 10 s (it used to hold on for 3 x 60 s).
      expect(performance.now() - started).toBeLessThan(40_000);
      expect((await first).isError).toBe(false);
    } finally {
      net.set(CLEAN);
      await slow.close();
    }
  }, 90_000);
});

describe('credentials that expire early', () => {
  let sts: LocalSts;
  let stsNet: NetworkProxy;
  let jwt: HttpServer;
  let catalog: LocalCatalog;

  beforeAll(async () => {
    sts = await startSts();
    stsNet = await startNetworkProxy(sts.endpoint, CLEAN, { dialect: 'sts' });
    jwt = await startHttpServer(jwtEnv({ s3: net.endpoint, sts: stsNet.endpoint }, { MCP_LOG_LEVEL: 'info' }));
    catalog = await startCatalog();
  });
  afterAll(async () => {
    await jwt?.stop();
    await stsNet?.close();
    await sts?.close();
    await catalog?.close();
  });

  /**
   * Session tokens S3 answers ExpiredToken for once they have made some requests: the first
   * token after `first`, each later one after `later` (more than a write sends at once, so that
   * a refresh serves the requests it was made for, as an hour-long session does).
   */
  const expireAfter = (first: number, later = 100) => {
    const used = new Map<string, { n: number; limit: number }>();
    net.set((req) => {
      const token = req.headers['x-amz-security-token'];
      if (typeof token !== 'string') return CLEAN;
      const u = used.get(token) ?? { n: 0, limit: used.size === 0 ? first : later };
      used.set(token, u);
      const k = ++u.n;
      const limit = u.limit;
      return k > limit ? { ...CLEAN, fault: { kind: 'status', status: 400, code: 'ExpiredToken' } } : CLEAN;
    });
  };

  it('JWT mode: STS credentials refused as expired are assumed again and the write finishes (it used to fail)', async () => {
    const token = await signToken({ sub: 'expiring', role_arn: 'arn:aws:iam::123456789012:role/expiring' });
    expireAfter(5);
    const assumed = sts.assumeRoleCalls.length;
    const r = await callTool(jwt.url, token, 'package_create', { bucket: BUCKET, name: 'expiry/jwt', entries: texts(250) });
    net.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    // New credentials several times, one STS call per expiry, not per request refused.
    const calls = sts.assumeRoleCalls.length - assumed;
    expect(calls).toBeGreaterThan(2);
    expect(calls).toBeLessThan(30);
  });

  it("an STS request that hangs is given up at its request timeout, so the tenant's calls go on once STS answers (the SDK only warned, and the shared AssumeRole waited forever)", async () => {
    const token = await signToken({ sub: 'sts-hang', role_arn: 'arn:aws:iam::123456789012:role/sts-hang' });
    stsNet.set({ ...CLEAN, fault: { kind: 'hang' } });
    const call = callTool(jwt.url, token, 'bucket_objects_list', { bucket: BUCKET });
    try {
      for (const t = Date.now(); stsNet.inFlight() === 0 && Date.now() - t < 30_000; ) await new Promise((r) => setTimeout(r, 50));
      expect(stsNet.inFlight()).toBeGreaterThan(0);
    } finally {
      stsNet.set(CLEAN);
    }
    const started = performance.now();
    const r = await call;
    expect(r.isError, r.text).toBe(false);
    // The hung attempt ends at the STS client's 15 s request timeout, and its retry is answered.
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 150_000);

  it('a HEAD refused as expired (no body, so no error code to read) gets new credentials too (package_push failed on it)', async () => {
    const token = await signToken({ sub: 'head-expiry', role_arn: 'arn:aws:iam::123456789012:role/head-expiry' });
    await s3.put(BUCKET, 'head.txt', 'head', 'text/plain');
    let first: string | undefined;
    net.set((req) => {
      const session = req.headers['x-amz-security-token'];
      if (typeof session !== 'string') return CLEAN;
      first ??= session;
      return req.method === 'HEAD' && session === first ? { ...CLEAN, fault: { kind: 'status', status: 400, code: 'ExpiredToken' } } : CLEAN;
    });
    const assumed = sts.assumeRoleCalls.length;
    const r = await callTool(jwt.url, token, 'bucket_object_info', { uri: `s3://${BUCKET}/head.txt` });
    net.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    expect(r.data.size).toBe(4);
    expect(sts.assumeRoleCalls.length - assumed).toBe(2);
  });

  it('desktop mode with a quilt3 login: registry credentials refused as expired are fetched again', async () => {
    let n = 0;
    catalog.credentialsFor = () => ({ AccessKeyId: 'S3RVER', SecretAccessKey: 'S3RVER', SessionToken: `registry-session-${++n}`, Expiration: new Date(Date.now() + 3600_000).toISOString() });
    const env = isolatedEnv({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: net.endpoint, AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED', AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED' });
    writeQuilt3Login(env, catalog.url, catalog.login('dana'));
    const h = await connectStdio(env);
    try {
      expireAfter(4);
      const r = await call(h.client, 'package_create', { bucket: BUCKET, name: 'expiry/desktop', entries: texts(250) });
      net.set(CLEAN);
      expect(r.isError, r.text).toBe(false);
      expect(n).toBeGreaterThan(2);
    } finally {
      net.set(CLEAN);
      await h.close();
    }
  });

  it('keys that cannot be renewed (from the environment) give one clear error, and the request is not sent again with the same keys', async () => {
    net.set((req) => (req.method === 'GET' ? { ...CLEAN, fault: { kind: 'status', status: 400, code: 'ExpiredToken' } } : CLEAN));
    const since = net.exchanges.length;
    const r = await call(desk.client, 'bucket_object_text', { uri: `s3://${BUCKET}/big.csv` });
    net.set(CLEAN);
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/credentials have expired/);
    expect(net.exchanges.slice(since).filter((x) => x.method === 'GET')).toHaveLength(1);
  });

  it('a request sent again with new credentials that are refused as expired too gets one more refresh (the campaign: package_create_200 failed when its refreshed session ran out)', async () => {
    const token = await signToken({ sub: 'twice-expired', role_arn: 'arn:aws:iam::123456789012:role/twice-expired' });
    await s3.put(BUCKET, 'twice.txt', 'twice', 'text/plain');
    // The first two session tokens this tenant gets are refused as expired; the third works.
    const refused: string[] = [];
    net.set((req) => {
      const session = req.headers['x-amz-security-token'];
      if (typeof session !== 'string') return CLEAN;
      if (refused.length < 2 && !refused.includes(session)) refused.push(session);
      return refused.includes(session) ? { ...CLEAN, fault: { kind: 'status', status: 400, code: 'ExpiredToken' } } : CLEAN;
    });
    const assumed = sts.assumeRoleCalls.length;
    const since = net.exchanges.length;
    const r = await callTool(jwt.url, token, 'bucket_object_text', { uri: `s3://${BUCKET}/twice.txt` });
    net.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    expect(r.text).toContain('twice');
    expect(sts.assumeRoleCalls.length - assumed).toBe(3);
    expect(net.exchanges.slice(since).filter((x) => x.method === 'GET')).toHaveLength(3);
  });

  it('a session refused as expired again and again ends with the error after three sends, not a storm', async () => {
    const token = await signToken({ sub: 'always-expired', role_arn: 'arn:aws:iam::123456789012:role/always-expired' });
    net.set((req) => (typeof req.headers['x-amz-security-token'] === 'string' ? { ...CLEAN, fault: { kind: 'status', status: 400, code: 'ExpiredToken' } } : CLEAN));
    const assumed = sts.assumeRoleCalls.length;
    const since = net.exchanges.length;
    const r = await callTool(jwt.url, token, 'bucket_object_text', { uri: `s3://${BUCKET}/twice.txt` });
    net.set(CLEAN);
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/credentials have expired/);
    expect(net.exchanges.slice(since).filter((x) => x.method === 'GET')).toHaveLength(3);
    expect(sts.assumeRoleCalls.length - assumed).toBe(3);
  });

  it('after an STS outage, a passing STS failure is retried again (the shared client had used up its retry quota)', async () => {
    // An outage: every AssumeRole fails for a while, each retried until the attempts run out.
    stsNet.set({ ...CLEAN, fault: { kind: 'status', status: 500, code: 'InternalFailure' } });
    for (let i = 0; i < 30; i++) {
      const t = await signToken({ sub: `outage-${i}`, role_arn: `arn:aws:iam::123456789012:role/outage-${i}` });
      expect((await callTool(jwt.url, t, 'bucket_objects_list', { bucket: BUCKET })).isError).toBe(true);
    }
    // Then STS is back, failing only the first attempt of each request.
    stsNet.set((req) => (firstAttempt(req.headers) ? { ...CLEAN, fault: { kind: 'status', status: 500, code: 'InternalFailure' } } : CLEAN));
    const t = await signToken({ sub: 'after', role_arn: 'arn:aws:iam::123456789012:role/after' });
    const r = await callTool(jwt.url, t, 'bucket_objects_list', { bucket: BUCKET });
    stsNet.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
  }, 120_000);
});

describe('catalog faults', () => {
  let catalog: LocalCatalog;
  let catNet: NetworkProxy;
  let h: Harness;
  const gql = graphqlHandler();

  beforeAll(async () => {
    catalog = await startCatalog();
    catalog.graphql = gql;
    gql.tabulator.admins.add('erin');
    catNet = await startNetworkProxy(catalog.url, CLEAN, { dialect: 'json' });
    catalog.config = { registryUrl: catNet.endpoint };
    const env = isolatedEnv({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: net.endpoint, AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9', MCP_TOOLSETS: 'buckets,packages,search,catalog,athena,admin' });
    writeQuilt3Login(env, catNet.endpoint, catalog.login('erin'));
    h = await connectStdio(env);
  });
  afterAll(async () => {
    await h?.close();
    await catNet?.close();
    await catalog?.close();
  });

  it("the catalog's 429 is retried after its Retry-After, and one that lasts is reported as throttling to retry later", async () => {
    let n = 0;
    catNet.set((req) => (req.url === '/graphql' && ++n === 1 ? { ...CLEAN, fault: { kind: 'status', status: 429, code: 'TooManyRequests', retryAfterSeconds: 1 } } : CLEAN));
    const once = await call(h.client, 'tabulator_tables_list', { bucket: 'quilt-sandbox' });
    expect(once.isError, once.text).toBe(false);
    catNet.set((req) => (req.url === '/graphql' ? { ...CLEAN, fault: { kind: 'status', status: 429, code: 'TooManyRequests', retryAfterSeconds: 1 } } : CLEAN));
    const lasting = await call(h.client, 'tabulator_tables_list', { bucket: 'quilt-sandbox' });
    catNet.set(CLEAN);
    expect(lasting.isError).toBe(true);
    expect(lasting.text).toMatch(/limiting requests \(HTTP 429/);
    expect(lasting.text).toMatch(/retry/i);
  });

  it('a rename whose answer was lost is reported done (the request sent again used to fail: "table not found")', async () => {
    gql.tabulator.tables.get('quilt-demo')!.push({ name: 'before_rename', config: TABULATOR_CONFIG });
    let n = 0;
    catNet.set((req) => (req.url === '/graphql' && req.method === 'POST' && ++n === 1 ? { ...CLEAN, fault: { kind: 'reset-after' } } : CLEAN));
    const r = await call(h.client, 'tabulator_table_rename', { bucket: 'quilt-demo', table: 'before_rename', new_name: 'after_rename' });
    catNet.set(CLEAN);
    expect(r.isError, r.text).toBe(false);
    expect(r.text).toMatch(/the rename is done/);
    const names = gql.tabulator.tables.get('quilt-demo')!.map((t) => t.name);
    expect(names).toContain('after_rename');
    expect(names).not.toContain('before_rename');
  });
});
