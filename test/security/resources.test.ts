/**
 * Resources and search suggestions under two JWT tenants over HTTP: alice's IAM role reaches
 * bob's bucket too, so only the server's checks keep her out. Neither a resource URI (object,
 * package, or a package entry pointing into bob's bucket), nor bob's resources/list cursor, nor
 * an altered one of her own, nor search_suggest shows alice anything of tenant-b, and no S3
 * request with her credentials touches tenant-b.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestLines, newManifestHeader } from '../../src/packages/manifest.js';
import { PAGE_SIZE } from '../../src/resources/list.js';
import { connectHttp, rawPost, signToken } from '../helpers/http.js';
import { call } from '../helpers/mcp.js';
import { ROLE_A, startTenants, type Tenants } from './tenants.js';

let t: Tenants;
let bobHash: string;
let aliceHash: string;
const EVIL = 'e'.repeat(64);
const textOf = (r: { contents: readonly unknown[] }) => (r.contents[0] as { text?: string } | undefined)?.text;
const ALL = ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:DeleteObject'];

async function readError(client: Client, uri: string): Promise<McpError> {
  const err = await client.readResource({ uri }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`reading ${uri} did not fail with an MCP error: ${String(err)}`);
  return err;
}

async function listError(client: Client, cursor: string): Promise<McpError> {
  const err = await client.listResources({ cursor }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error('listing with the cursor did not fail');
  return err;
}

beforeAll(async () => {
  t = await startTenants();
  const a = await call(t.alice, 'package_create', { bucket: 'tenant-a', name: 'alice/results', entries: [{ logical_key: 'own.txt', s3_uri: 's3://tenant-a/alpha/own.txt' }] });
  const b = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/results', meta: { project: 'bravo-secret' }, entries: [{ logical_key: 'secret.txt', s3_uri: 's3://tenant-b/bravo/secret.txt' }] });
  expect(a.isError, a.text).toBe(false);
  expect(b.isError, b.text).toBe(false);
  aliceHash = a.data.top_hash;
  bobHash = b.data.top_hash;
  // Enough packages in both buckets for a second resources/list page.
  for (let i = 0; i < PAGE_SIZE + 3; i++) {
    await t.s3.put('tenant-a', `.quilt/named_packages/alice/set-${i}/latest`, aliceHash);
    await t.s3.put('tenant-b', `.quilt/named_packages/bob/set-${i}/latest`, bobHash);
  }
  // In alice's own bucket, a manifest whose entry points into bob's (written around the server).
  const entry = { logical_key: 'stolen.txt', physical_keys: ['s3://tenant-b/bravo/secret.txt'], size: 10, hash: { type: 'SHA256' as const, value: '0'.repeat(64) } };
  await t.s3.put('tenant-a', `.quilt/packages/${EVIL}`, [...manifestLines(newManifestHeader({}), [entry])].join(''));
  await t.s3.put('tenant-a', '.quilt/named_packages/alice/evil/latest', EVIL);
}, 90_000);

afterAll(async () => {
  await t?.close();
});

describe('resources in JWT mode', () => {
  it('resources/list needs a token, like tools/call', async () => {
    const res = await rawPost(t.server.url, { jsonrpc: '2.0', id: 1, method: 'resources/list', params: {} });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('lists only the token\'s buckets, on every page', async () => {
    const uris: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.alice.listResources(cursor ? { cursor } : {});
      uris.push(...page.resources.map((r) => r.uri));
      cursor = page.nextCursor;
    } while (cursor);
    expect(uris[0]).toBe('auth://status');
    expect(uris.filter((u) => u.startsWith('quilt+s3://tenant-a#'))).toHaveLength(PAGE_SIZE + 3 + 2);
    expect(uris.filter((u) => u !== 'auth://status' && !u.startsWith('quilt+s3://tenant-a#'))).toEqual([]);
    expect(t.aliceInB()).toBe(0);
  });

  it('refuses bob\'s cursor and an altered cursor of alice\'s own, before any S3 request', async () => {
    const bobPage = await t.bob.listResources();
    expect(bobPage.resources.some((r) => r.uri.startsWith('quilt+s3://tenant-b#'))).toBe(true);
    expect(bobPage.nextCursor).toBeDefined();
    const own = (await t.alice.listResources()).nextCursor!;
    const before = t.s3.requests.length;
    const replay = await listError(t.alice, bobPage.nextCursor!);
    expect(replay.code).toBe(-32602);
    expect(replay.message).toMatch(/cursor was refused: it was not issued by this server to this caller/);

    const [payload, tag] = own.split('.');
    const value = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { b: string[] };
    expect(value.b).toEqual(['tenant-a']);
    const forged = `${Buffer.from(JSON.stringify({ ...value, b: ['tenant-b'] })).toString('base64url')}.${tag}`;
    const altered = await listError(t.alice, forged);
    expect(altered.message).toMatch(/cursor was refused/);
    expect(t.s3.requests.length).toBe(before);
    expect(t.aliceInB()).toBe(0);
  });

  it('refuses bob\'s objects and packages by URI, and a package entry of alice\'s that points into bob\'s bucket', async () => {
    for (const uri of [
      's3://tenant-b/bravo/secret.txt',
      `quilt+s3://tenant-b#package=bob/results@${bobHash}`,
      `quilt+s3://tenant-b#package=bob/results@${bobHash}&path=secret.txt`,
      'quilt+s3://tenant-b#package=bob/results',
      `quilt+s3://tenant-a#package=alice/evil@${EVIL}&path=stolen.txt`,
      'quilt+s3://tenant-a#package=alice/evil&path=stolen.txt',
    ]) {
      const err = await readError(t.alice, uri);
      expect(err.message, uri).toMatch(/Bucket "tenant-b" is not in this token's buckets \(tenant-a\)/);
      expect(err.message).not.toMatch(/BOB SECRET|bravo-secret/);
      expect(err.data).toMatchObject({ reason: 'access_denied' });
    }
    expect(t.aliceInB()).toBe(0);
    // Alice's own data reads.
    const own = await t.alice.readResource({ uri: `quilt+s3://tenant-a#package=alice/results@${aliceHash}&path=own.txt` });
    expect(textOf(own)).toBe('alice own data');
  });

  it('auth://status answers for the caller of the request', async () => {
    const a = JSON.parse(String(textOf(await t.alice.readResource({ uri: 'auth://status' }))));
    const b = JSON.parse(String(textOf(await t.bob.readResource({ uri: 'auth://status' }))));
    expect([a.mode, a.user, b.user]).toEqual(['jwt', 'alice', 'bob']);
  });
});

describe('search helpers in JWT mode', () => {
  it('search_suggest from the catalog searches only the token\'s buckets and names nothing else', async () => {
    const calls = t.catalog.requests.length;
    const r = await call(t.alice, 'search_suggest', { query: 'results secret' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('catalog');
    expect(JSON.stringify(r.data)).not.toMatch(/tenant-b|bob/);
    expect(r.data.packages.map((p: { name: string }) => p.name)).toContain('alice/results');
    const sent = t.catalog.requests.slice(calls).filter((q) => q.path === '/graphql' && q.body.includes('SearchSuggest'));
    expect(sent.length).toBeGreaterThan(0);
    for (const q of sent) expect((JSON.parse(q.body) as { variables: { buckets: unknown } }).variables.buckets).toEqual(['tenant-a']);
    const refused = await call(t.alice, 'search_suggest', { query: 'x', buckets: ['tenant-b'] });
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(/not in this token's buckets/);
  });

  it('search_suggest without a catalog token scans only the token\'s buckets in S3', async () => {
    const token = await signToken({ sub: 'alice', role_arn: ROLE_A, buckets: ['tenant-a'], permissions: ALL }, { expiresIn: 3600 });
    const client = await connectHttp(t.server.url, token);
    try {
      const r = await call(client, 'search_suggest', { query: 'results' });
      expect(r.isError, r.text).toBe(false);
      expect(r.data.source).toBe('s3_scan');
      expect(r.data.packages.map((p: { bucket: string; name: string }) => `${p.bucket}/${p.name}`)).toEqual(['tenant-a/alice/results']);
      expect(r.data.note).toMatch(/scanning S3: package names in 1 of 1 bucket\(s\) \(the token's buckets\)/);
      expect(JSON.stringify(r.data)).not.toMatch(/tenant-b|bob/);
      const s = await call(client, 'search_catalog', { query: 'results AND own' });
      expect(s.data.interpretation).toMatchObject({ backend: 's3_fallback', buckets: ['tenant-a'], buckets_from: 'token', operators: ['AND'] });
      expect(s.data.interpretation.fallback_reason).toMatch(/catalog/i);
      expect(t.aliceInB()).toBe(0);
    } finally {
      await client.close();
    }
  });
});
