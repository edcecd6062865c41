/**
 * JWT mode over stateless HTTP, against the built server with a local STS and s3rver:
 * the attack matrix, tenant isolation under concurrency, statelessness across two processes,
 * no fallback to the container's credentials or files, and no secret in any log line.
 */
import { mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapBounded } from '../src/core/concurrency.js';
import { startCatalog, type LocalCatalog } from './helpers/catalog.js';
import { connectHttp, rawPost, signToken, startHttpServer, TEST_SECRET, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { call, connectStdio, isolatedEnv, objectText } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const TENANTS = 50;
const tenant = (i: number) => `tenant-${String(i).padStart(2, '0')}`;
const roleOf = (name: string) => `arn:aws:iam::123456789012:role/${name}`;
const ENV_KEY = 'ENVKEYCANARY';

let s3: LocalS3;
let sts: LocalSts;
let catalog: LocalCatalog;
let server: HttpServer;
let home: string;
const CANARY_QUILT_TOKEN = 'canary-quilt3-access-token';

function jwtEnv(extra: Record<string, string> = {}): Record<string, string> {
  return isolatedEnv({
    HOME: home,
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    MCP_REQUIRE_JWT: 'true',
    MCP_JWT_SECRET: TEST_SECRET,
    AWS_REGION: 'us-east-1',
    // The container's own credentials: only good for calling STS, never for data.
    AWS_ACCESS_KEY_ID: ENV_KEY,
    AWS_SECRET_ACCESS_KEY: 'env-secret-canary',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    QUILT_CATALOG_URL: catalog.url,
    ...extra,
  });
}

beforeAll(async () => {
  sts = await startSts();
  catalog = await startCatalog();
  const buckets = Array.from({ length: TENANTS }, (_, i) => tenant(i));
  s3 = await startS3({
    buckets: [...buckets, 'shared-data'],
    // Play IAM: a tenant bucket only accepts credentials issued for that tenant's role.
    deny: (r) => {
      if (r.accessKeyId === ENV_KEY) return 'AccessDenied';
      if (r.bucket.startsWith('tenant-') && sts.issued.get(r.sessionToken ?? '') !== roleOf(r.bucket)) return 'AccessDenied';
      return undefined;
    },
  });
  await mapBounded(buckets, 8, (b) => s3.put(b, 'owner.txt', b));
  await s3.put('shared-data', 'readme.txt', 'shared');

  // A quilt3 session on disk with a canary token, and a read-only HOME: JWT mode must use neither.
  home = mkdtempSync(path.join(os.tmpdir(), 'jwt-home-'));
  const q = path.join(home, '.local', 'share', 'Quilt');
  mkdirSync(q, { recursive: true });
  writeFileSync(path.join(q, 'config.yml'), `navigator_url: ${catalog.url}\nregistryUrl: ${catalog.url}\n`);
  writeFileSync(
    path.join(q, 'auth.json'),
    JSON.stringify({ [catalog.url]: { refresh_token: 'canary-refresh', access_token: CANARY_QUILT_TOKEN, expires_at: Date.now() / 1000 + 3600 } }),
  );
  chmodSync(home, 0o555);

  server = await startHttpServer(jwtEnv());
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await s3?.close();
  await sts?.close();
  await catalog?.close();
});

const tokensUsed: string[] = [];
async function token(claims: Record<string, unknown>, opts?: Parameters<typeof signToken>[1]): Promise<string> {
  const t = await signToken(claims, opts);
  tokensUsed.push(t);
  return t;
}

describe('public methods and the 401 challenge', () => {
  it('serves initialize and tools/list without a token', async () => {
    const client = await connectHttp(server.url);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('jwt_diagnostics');
    await client.close();
  });

  it('answers tools/call without a token with 401 and WWW-Authenticate: Bearer', async () => {
    const res = await rawPost(server.url, TOOLS_CALL('bucket_list'));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="quilt-mcp"/);
    const body = (await res.json()) as { error: string; error_description: string };
    expect(body.error_description).toContain('requires a JWT');
  });

  it('serves /health without a token, refuses GET, and DELETE without a session id, on /mcp', async () => {
    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', mode: 'jwt' });
    expect((await fetch(server.url, { method: 'GET' })).status).toBe(405);
    // DELETE ends a session (see token-policy.test.ts); without a session id there is nothing to end.
    expect((await fetch(server.url, { method: 'DELETE' })).status).toBe(400);
  });

  it('limits the request body size: small without a token, MCP_MAX_BODY_BYTES with one', async () => {
    const big = { jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(5 * 1024 * 1024) } };
    const tokenless = await rawPost(server.url, { ...big, params: { pad: 'x'.repeat(100 * 1024) } });
    expect(tokenless.status).toBe(401);
    expect(((await tokenless.json()) as { error_description: string }).error_description).toContain('without a token may carry at most 65536 bytes');
    const t = await token({ sub: 'big-body', buckets: ['shared-data'] });
    const res = await rawPost(server.url, big, { authorization: `Bearer ${t}` });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { message: expect.stringContaining('larger than 1048576 bytes') } });
  });
});

describe('attack matrix: each is a clear 401 or tool error, and no AWS call is made', () => {
  const roleClaims = { sub: 'mallory', role_arn: roleOf('tenant-00'), buckets: ['tenant-00'], permissions: ['s3:GetObject', 's3:ListBucket'] };

  async function expect401(bearer: string, reason: RegExp) {
    const stsBefore = sts.assumeRoleCalls.length;
    const s3Before = s3.requests.length;
    const res = await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: 's3://tenant-00/owner.txt' }), {
      authorization: `Bearer ${bearer}`,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="quilt-mcp", error="invalid_token"/);
    const body = (await res.json()) as { error_description: string };
    expect(body.error_description).toMatch(reason);
    expect(sts.assumeRoleCalls.length).toBe(stsBefore);
    expect(s3.requests.length).toBe(s3Before);
    return body.error_description;
  }

  it('garbage', async () => {
    await expect401('not-a-jwt', /not a JWT/);
  });

  it('alg: none', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ ...roleClaims, exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    tokensUsed.push(unsigned);
    await expect401(unsigned, /algorithm is not allowed|not a valid signed JWT/);
  });

  it('wrong secret', async () => {
    await expect401(await token(roleClaims, { secret: 'another-secret-of-sufficient-length!!' }), /signature is invalid/);
  });

  it('expired', async () => {
    await expect401(await token(roleClaims, { expiresIn: -600 }), /expired 10 minutes ago/);
  });

  it('not yet valid', async () => {
    await expect401(await token({ ...roleClaims, nbf: Math.floor(Date.now() / 1000) + 3600 }), /not valid yet/);
  });

  it('tampered payload', async () => {
    const good = await token(roleClaims);
    const [h, , sig] = good.split('.');
    const evil = Buffer.from(JSON.stringify({ ...roleClaims, buckets: ['*'], exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
    const tampered = `${h}.${evil}.${sig}`;
    tokensUsed.push(tampered);
    await expect401(tampered, /signature is invalid/);
  });

  it('oversized token', async () => {
    await expect401(await token({ ...roleClaims, pad: 'x'.repeat(20_000) }), /too large/);
  });

  it('catalog_url pointing at a disallowed host', async () => {
    await expect401(await token({ ...roleClaims, catalog_url: 'https://evil.example.net' }), /catalog_url points at evil\.example\.net/);
  });

  it('malformed compressed claims', async () => {
    await expect401(await token({ sub: 'x', b: { _type: 'groups', _data: ['not', 'an', 'object'] } }), /Claim "b"/);
  });

  it('bucket outside the token\'s buckets, and a write with read-only permissions', async () => {
    const t = await token(roleClaims);
    const client = await connectHttp(server.url, t);
    const stsBefore = sts.assumeRoleCalls.length;
    const s3Before = s3.requests.length;
    const other = await call(client, 'bucket_object_text', { uri: 's3://tenant-01/owner.txt' });
    expect(other.isError).toBe(true);
    expect(other.text).toContain('Bucket "tenant-01" is not in this token\'s buckets (tenant-00)');
    const write = await call(client, 'bucket_objects_put', { bucket: 'tenant-00', items: [{ key: 'x.txt', text: 'x' }] });
    expect(write.isError).toBe(true);
    expect(write.text).toContain('This token does not allow s3:PutObject (write)');
    // Package tools go through the same checks.
    const pkgWrite = await call(client, 'package_create', { bucket: 'tenant-00', name: 'a/b', entries: [{ logical_key: 'x.txt', text: 'x' }] });
    expect(pkgWrite.isError).toBe(true);
    expect(pkgWrite.text).toContain('This token does not allow s3:PutObject (write)');
    const pkgRead = await call(client, 'package_browse', { bucket: 'tenant-01', name: 'a/b' });
    expect(pkgRead.isError).toBe(true);
    expect(pkgRead.text).toContain('Bucket "tenant-01" is not in this token\'s buckets (tenant-00)');
    const pkgSource = await call(client, 'package_list', { bucket: 'shared-data' });
    expect(pkgSource.isError).toBe(true);
    expect(pkgSource.text).toContain('Bucket "shared-data" is not in this token\'s buckets');
    expect(sts.assumeRoleCalls.length).toBe(stsBefore);
    expect(s3.requests.length).toBe(s3Before);
    await client.close();
  });

  it('an enhanced token is required when configured', async () => {
    const strict = await startHttpServer(jwtEnv({ MCP_JWT_REQUIRE_ENHANCED: 'true' }));
    try {
      const basic = await token({ sub: 'basic-user', catalog_token: 'ct' });
      const res = await rawPost(strict.url, TOOLS_CALL('bucket_list'), { authorization: `Bearer ${basic}` });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error_description: string }).error_description).toContain('requires an enhanced token');
      const enhanced = await token({ sub: 'e', token_type: 'enhanced', roles: ['r'], buckets: ['shared-data'] });
      expect((await rawPost(strict.url, TOOLS_CALL('jwt_diagnostics'), { authorization: `Bearer ${enhanced}` })).status).toBe(200);
    } finally {
      await strict.stop();
    }
  });

  it('iss and aud are enforced when configured', async () => {
    const strict = await startHttpServer(jwtEnv({ MCP_JWT_ISSUER: 'quilt-frontend', MCP_JWT_AUDIENCE: 'quilt-mcp-server' }));
    try {
      const wrongIss = await token({ ...roleClaims, iss: 'someone-else', aud: 'quilt-mcp-server' });
      const wrongAud = await token({ ...roleClaims, iss: 'quilt-frontend', aud: 'another-service' });
      const right = await token({ ...roleClaims, iss: 'quilt-frontend', aud: 'quilt-mcp-server' });
      const post = (t: string) => rawPost(strict.url, TOOLS_CALL('jwt_diagnostics'), { authorization: `Bearer ${t}` });
      const iss = await post(wrongIss);
      expect(iss.status).toBe(401);
      expect(((await iss.json()) as { error_description: string }).error_description).toContain('issuer');
      const aud = await post(wrongAud);
      expect(aud.status).toBe(401);
      expect(((await aud.json()) as { error_description: string }).error_description).toContain('audience');
      expect((await post(right)).status).toBe(200);
    } finally {
      await strict.stop();
    }
  });

  it('HS256 signed with the public key of an RS256 setup', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    const rs = await startHttpServer(jwtEnv({ MCP_JWT_SECRET: '', MCP_JWT_JWKS_URL: jwksUrl, MCP_JWT_AUDIENCE: 'quilt-mcp' }));
    try {
      const now = Math.floor(Date.now() / 1000);
      const good = await new SignJWT({ sub: 'rs-user', aud: 'quilt-mcp', buckets: ['shared-data'], exp: now + 600 })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .sign(privateKey);
      expect((await rawPost(rs.url, TOOLS_CALL('jwt_diagnostics'), { authorization: `Bearer ${good}` })).status).toBe(200);
      // The classic confusion attack: HMAC keyed with the (public) RSA key material.
      const confused = await new SignJWT({ sub: 'attacker', aud: 'quilt-mcp', buckets: ['*'], exp: now + 600 })
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .sign(new TextEncoder().encode(JSON.stringify(jwk)));
      tokensUsed.push(good, confused);
      const res = await rawPost(rs.url, TOOLS_CALL('jwt_diagnostics'), { authorization: `Bearer ${confused}` });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error_description: string }).error_description).toContain('algorithm is not allowed');
    } finally {
      await rs.stop();
      jwks.close();
    }
  });
});

describe('credentials come only from the token', () => {
  it('assumes the token role with source identity, session tags and a clamped duration', async () => {
    const t = await token({ sub: 'alice@example.com', role_arn: roleOf('tenant-05'), session_tags: { team: 'genomics' }, buckets: ['tenant-05'] });
    const client = await connectHttp(server.url, t);
    const r = await call(client, 'bucket_object_text', { uri: 's3://tenant-05/owner.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(objectText(r).content).toBe('tenant-05');
    const assumed = sts.assumeRoleCalls.filter((c) => c.sourceIdentity === 'alice@example.com');
    expect(assumed).toHaveLength(1);
    expect(assumed[0]).toMatchObject({ roleArn: roleOf('tenant-05'), tags: { team: 'genomics' }, durationSeconds: 3600 });
    expect(assumed[0]?.roleSessionName).toMatch(/^mcp-alice@example\.com-\d+$/);
    expect(assumed[0]?.callerAccessKeyId).toBe(ENV_KEY);
    const diag = await call(client, 'jwt_diagnostics');
    expect(diag.data.claims).toMatchObject({ sub: 'alice@example.com', buckets: ['tenant-05'], catalog_token: 'absent' });
    expect(diag.data.credential_source).toBe(`STS AssumeRole of ${roleOf('tenant-05')}`);
    const status = await call(client, 'auth_status');
    expect(status.data).toMatchObject({ mode: 'jwt', user: 'alice@example.com' });
    await client.close();
  });

  it('builds the role from roles + MCP_JWT_ROLE_ARN_TEMPLATE', async () => {
    const templ = await startHttpServer(jwtEnv({ MCP_JWT_ROLE_ARN_TEMPLATE: 'arn:aws:iam::123456789012:role/{role}' }));
    try {
      const t = await token({ sub: 'tpl-user', token_type: 'enhanced', roles: ['tenant-07'], buckets: ['tenant-07'] });
      const client = await connectHttp(templ.url, t);
      const r = await call(client, 'bucket_object_text', { uri: 's3://tenant-07/owner.txt' });
      expect(r.isError, r.text).toBe(false);
      expect(sts.assumeRoleCalls.at(-1)).toMatchObject({ roleArn: roleOf('tenant-07'), sourceIdentity: 'tpl-user' });
      await client.close();
    } finally {
      await templ.stop();
    }
  });

  it('uses the catalog credential endpoint with catalog_token', async () => {
    catalog.addAccessToken('jwt-catalog-token', 'catalog-user');
    const t = await token({ sub: 'catalog-user', catalog_token: 'jwt-catalog-token', buckets: ['shared-data'] });
    const client = await connectHttp(server.url, t);
    const r = await call(client, 'bucket_object_text', { uri: 's3://shared-data/readme.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(catalog.requests.filter((q) => q.path === '/api/auth/get_credentials').map((q) => q.bearer)).toEqual(['jwt-catalog-token']);
    expect(s3.requests.at(-1)?.sessionToken).toBe('catalog-session-catalog-user');
    await client.close();
  });

  it('says when a token grants no AWS access, and calls nothing', async () => {
    const t = await token({ sub: 'nobody', buckets: ['shared-data'] });
    const client = await connectHttp(server.url, t);
    const s3Before = s3.requests.length;
    const r = await call(client, 'bucket_object_text', { uri: 's3://shared-data/readme.txt' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('This token grants no AWS access');
    expect(s3.requests.length).toBe(s3Before);
    await client.close();
  });

  it('reports STS refusals clearly', async () => {
    sts.failNext('AccessDenied');
    const t = await token({ sub: 'denied-user', role_arn: roleOf('tenant-09'), buckets: ['tenant-09'] });
    const client = await connectHttp(server.url, t);
    const r = await call(client, 'bucket_object_text', { uri: 's3://tenant-09/owner.txt' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain(`AWS STS refused to assume ${roleOf('tenant-09')}`);
    // The refusal is remembered for this token for a minute: the next call does not ask STS again.
    const calls = sts.assumeRoleCalls.length;
    const again = await call(client, 'bucket_object_text', { uri: 's3://tenant-09/owner.txt' });
    expect(again.isError).toBe(true);
    expect(again.text).toContain(`AWS STS refused to assume ${roleOf('tenant-09')}`);
    expect(sts.assumeRoleCalls.length).toBe(calls);
    await client.close();
    // A new token (the role's trust policy may have been fixed meanwhile) asks STS again.
    const fresh = await connectHttp(server.url, await token({ sub: 'denied-user', role_arn: roleOf('tenant-09'), buckets: ['tenant-09'], jti: 'second' }));
    const ok = await call(fresh, 'bucket_object_text', { uri: 's3://tenant-09/owner.txt' });
    expect(ok.isError, ok.text).toBe(false);
    expect(sts.assumeRoleCalls.length).toBe(calls + 1);
    await fresh.close();
  });

  it('never uses the container credentials for data nor the quilt3 session on disk', () => {
    expect(s3.requests.some((r) => r.accessKeyId === ENV_KEY)).toBe(false);
    expect(s3.requests.filter((r) => r.sessionToken === undefined)).toEqual([]);
    expect(catalog.requests.some((r) => r.bearer === CANARY_QUILT_TOKEN)).toBe(false);
    expect(catalog.requests.some((r) => r.path === '/api/token')).toBe(false);
  });
});

describe('isolation under concurrency', () => {
  it(`keeps ${TENANTS} tenants apart and assumes each role once`, async () => {
    const before = sts.assumeRoleCalls.length;
    const clients: Array<{ i: number; client: Client }> = [];
    for (let i = 0; i < TENANTS; i++) {
      const t = await token({ sub: `user-${i}`, role_arn: roleOf(tenant(i)), buckets: [tenant(i)] });
      clients.push({ i, client: await connectHttp(server.url, t) });
    }
    // A fixed number of rounds, all tenants at once (a time-boxed loop made this a speed test).
    const ROUNDS = 3;
    const mismatches: string[] = [];
    await Promise.all(
      clients.map(async ({ i, client }) => {
        for (let round = 0; round < ROUNDS; round++) {
          const r = await call(client, 'bucket_object_text', { uri: `s3://${tenant(i)}/owner.txt` });
          if (r.isError || objectText(r).content !== tenant(i)) mismatches.push(`${tenant(i)}: ${r.text}`);
          const l = await call(client, 'bucket_list');
          if (JSON.stringify(l.data.buckets.map((b: { name: string }) => b.name)) !== JSON.stringify([tenant(i)])) mismatches.push(`list ${tenant(i)}`);
        }
      }),
    );
    expect(mismatches).toEqual([]);
    const assumed = sts.assumeRoleCalls.slice(before);
    expect(assumed).toHaveLength(TENANTS);
    expect(new Set(assumed.map((a) => a.roleArn)).size).toBe(TENANTS);
    // Each tenant sees its own session, never the process's counters (they move with other tenants).
    const diag = await call(clients[0]!.client, 'session_diagnostics');
    expect(diag.data.credentials_expire_at).toBeTruthy();
    expect(diag.data.stats.sts_credentials_expire_at).toBe(diag.data.credentials_expire_at);
    expect(Object.keys(diag.data.stats)).not.toContain('token_cache');
    expect(diag.text).not.toMatch(/tokens_verified|hit_rate/);
    await Promise.all(clients.map(({ client }) => client.close()));
  }, 60_000);
});

describe('stateless', () => {
  it('serves one client through a round-robin proxy over two server processes', async () => {
    const second = await startHttpServer(jwtEnv());
    const upstreams = [server.port, second.port];
    const hits = [0, 0];
    let next = 0;
    const proxy = http.createServer((req, res) => {
      const k = next++ % 2;
      hits[k]!++;
      const up = http.request({ host: '127.0.0.1', port: upstreams[k], path: req.url, method: req.method, headers: { ...req.headers, host: `127.0.0.1:${upstreams[k]}` } }, (u) => {
        res.writeHead(u.statusCode ?? 502, u.headers);
        u.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const t = await token({ sub: 'roamer', role_arn: roleOf('tenant-11'), buckets: ['tenant-11'] });
      const client = await connectHttp(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}/mcp`, t);
      for (let k = 0; k < 6; k++) {
        const r = await call(client, 'bucket_object_text', { uri: 's3://tenant-11/owner.txt' });
        expect(r.isError, r.text).toBe(false);
        expect(objectText(r).content).toBe('tenant-11');
      }
      await client.close();
      expect(hits[0]).toBeGreaterThan(2);
      expect(hits[1]).toBeGreaterThan(2);
    } finally {
      proxy.close();
      await second.stop();
    }
  });
});

describe('stdio in JWT mode', () => {
  it('takes the token from MCP_JWT_TOKEN and re-checks its expiry on every call', async () => {
    const t = await token({ sub: 'stdio-user', role_arn: roleOf('tenant-12'), buckets: ['tenant-12'] }, { expiresIn: 3 });
    const h = await connectStdio(jwtEnv({ MCP_JWT_TOKEN: t, MCP_JWT_CLOCK_TOLERANCE: '0' }));
    try {
      const ok = await call(h.client, 'bucket_object_text', { uri: 's3://tenant-12/owner.txt' });
      expect(ok.isError, ok.text).toBe(false);
      await new Promise((r) => setTimeout(r, 3500));
      const late = await call(h.client, 'bucket_object_text', { uri: 's3://tenant-12/owner.txt' });
      expect(late.isError).toBe(true);
      expect(late.text).toMatch(/The token expired \d+ seconds ago/);
    } finally {
      await h.close();
    }
  });

  it('refuses to start without a way to verify tokens', async () => {
    const { spawnSync } = await import('node:child_process');
    const { SERVER_ENTRY } = await import('./helpers/mcp.js');
    const r = spawnSync(process.execPath, [SERVER_ENTRY], { env: isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_TOKEN: 'x' }), encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('MCP_JWT_SECRET');
  });
});

describe('no secret in any log line', () => {
  it('never logs a token, signature or secret', () => {
    const log = server.stderr();
    expect(log.length).toBeGreaterThan(100);
    expect(log).not.toContain(TEST_SECRET);
    expect(log).not.toContain('env-secret-canary');
    expect(log).not.toContain('jwt-catalog-token');
    expect(log).not.toContain('local-session-token');
    for (const t of tokensUsed) {
      const sig = t.split('.')[2];
      expect(log).not.toContain(t);
      if (sig && sig.length > 10) expect(log).not.toContain(sig);
    }
  });
});
