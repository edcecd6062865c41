/**
 * MCP_JWT_WEB_IDENTITY: the caller's OIDC token buys the AWS credentials through
 * sts:AssumeRoleWithWebIdentity, so the container needs no AWS identity of its own. The server
 * runs with none (no keys in its environment, instance metadata off) and with a canary ~/.aws that
 * the SDK's default chain would pick up; the local STS plays AssumeRoleWithWebIdentity strictly
 * (signature against the issuer's JWKS, iss, aud, exp, and the role's trust).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, freePort, startHttpServer, type HttpServer } from './helpers/http.js';
import { call, isolatedEnv } from './helpers/mcp.js';
import { startOidc, type LocalOidc } from './helpers/oidc.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const ROLE = 'arn:aws:iam::123456789012:role/web-reader';
const UNTRUSTING_ROLE = 'arn:aws:iam::123456789012:role/trusts-nobody';
const CANARY_KEY = 'CANARYHOMEKEY';

let s3: LocalS3;
let sts: LocalSts;
let idp: LocalOidc;
let server: HttpServer;
let resource: string;

beforeAll(async () => {
  sts = await startSts();
  idp = await startOidc();
  s3 = await startS3({
    buckets: ['web-data'],
    // Only credentials STS issued for the trusted role reach the data.
    deny: (r) => (sts.issued.get(r.sessionToken ?? '') === ROLE ? undefined : 'AccessDenied'),
  });
  await s3.put('web-data', 'hello.txt', 'hello through web identity');
  const port = await freePort();
  resource = `http://127.0.0.1:${port}/mcp`;
  // The role's trust policy: the IAM OIDC provider for this issuer, registered with this server's resource as client id.
  sts.trustWebIdentity(ROLE, { issuer: idp.issuer, audiences: [resource], jwksUri: idp.jwksUri });

  // A HOME with keys the SDK's default chain would use: the server must never.
  const home = mkdtempSync(path.join(os.tmpdir(), 'web-identity-home-'));
  mkdirSync(path.join(home, '.aws'));
  writeFileSync(path.join(home, '.aws', 'credentials'), `[canary]\naws_access_key_id = ${CANARY_KEY}\naws_secret_access_key = canary-secret\n`);
  server = await startHttpServer(
    isolatedEnv({
      HOME: home,
      AWS_CONFIG_FILE: undefined,
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, '.aws', 'credentials'),
      AWS_PROFILE: 'canary',
      MCP_REQUIRE_JWT: 'true',
      MCP_JWT_WEB_IDENTITY: 'true',
      MCP_RESOURCE_URL: resource,
      MCP_OAUTH_AUTHORIZATION_SERVERS: idp.issuer,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_STS: sts.endpoint,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    }),
    { port },
  );
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await s3?.close();
  await sts?.close();
  await idp?.close();
});

const userToken = (sub: string, extra: Record<string, unknown> = {}, expiresIn?: number) =>
  idp.sign({ sub, aud: resource, scope: 'quilt:read', role_arn: ROLE, ...extra }, expiresIn ? { expiresIn } : {});

describe('AssumeRoleWithWebIdentity with the caller\'s token', () => {
  it('reads S3 as the token\'s role with no AWS identity of the server\'s own', async () => {
    const t = await userToken('wendy');
    const before = sts.webIdentityCalls.length;
    const client = await connectHttp(server.url, t);
    const r = await call(client, 'bucket_object_text', { uri: 's3://web-data/hello.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(r.text).toContain('hello through web identity');
    const status = await call(client, 'auth_status');
    expect(status.text).toContain('AssumeRoleWithWebIdentity');
    await client.close();

    const calls = sts.webIdentityCalls.slice(before);
    expect(calls.map((c) => [c.roleArn, c.outcome, c.subject, c.callerAccessKeyId])).toEqual([[ROLE, 'ok', 'wendy', undefined]]);
    expect(calls[0]?.roleSessionName).toMatch(/^mcp-wendy-\d+$/);
    // Nothing signed with any key of the server's: no AssumeRole, no canary anywhere.
    expect(sts.assumeRoleCalls).toEqual([]);
    expect(s3.requests.some((q) => q.accessKeyId === CANARY_KEY)).toBe(false);
    expect(server.stderr()).not.toContain(t);
  });

  it('caches per token and shares one STS call among concurrent requests', async () => {
    const t = await userToken('carl');
    const before = sts.webIdentityCalls.length;
    const clients = await Promise.all(Array.from({ length: 4 }, () => connectHttp(server.url, t)));
    const results = await Promise.all(clients.map((c) => call(c, 'bucket_object_text', { uri: 's3://web-data/hello.txt' })));
    expect(results.every((r) => !r.isError)).toBe(true);
    expect(sts.webIdentityCalls.slice(before)).toHaveLength(1);
    // A new token of the same user is a new credential: its own STS call.
    const t2 = await userToken('carl', { jti: 'second' });
    const c2 = await connectHttp(server.url, t2);
    expect((await call(c2, 'bucket_object_text', { uri: 's3://web-data/hello.txt' })).isError).toBe(false);
    expect(sts.webIdentityCalls.slice(before)).toHaveLength(2);
    await Promise.all([...clients, c2].map((c) => c.close()));
  });

  it('says clearly when the role does not trust the token\'s provider', async () => {
    const t = await userToken('mallory', { role_arn: UNTRUSTING_ROLE });
    const client = await connectHttp(server.url, t);
    const r = await call(client, 'bucket_object_text', { uri: 's3://web-data/hello.txt' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain(`AWS STS refused to assume ${UNTRUSTING_ROLE} with this token's web identity`);
    expect(r.text).not.toContain(t);
    await client.close();
  });
});

describe('the local STS plays AssumeRoleWithWebIdentity strictly', () => {
  const assume = async (token: string, roleArn = ROLE) => {
    const client = new STSClient({
      region: 'us-east-1',
      endpoint: sts.endpoint,
      credentials: async () => {
        throw new Error('unsigned call: no credentials');
      },
    });
    try {
      const out = await client.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, RoleSessionName: 'direct', WebIdentityToken: token }));
      return out.Credentials?.AccessKeyId ? 'ok' : 'no credentials';
    } catch (err) {
      return (err as Error).name;
    } finally {
      client.destroy();
    }
  };

  it('accepts a valid token and refuses wrong audience, issuer, signature, expiry and untrusted roles', async () => {
    expect(await assume(await userToken('direct'))).toBe('ok');
    expect(await assume(await idp.sign({ sub: 'x', aud: 'https://elsewhere.example.com' }))).toBe('InvalidIdentityTokenException');
    expect(await assume(await idp.sign({ sub: 'x', aud: resource, iss: 'https://other-issuer.example.com' }))).toBe('AccessDenied');
    const other = await startOidc();
    try {
      expect(await assume(await other.sign({ sub: 'x', aud: resource, iss: idp.issuer }))).toBe('InvalidIdentityTokenException');
    } finally {
      await other.close();
    }
    expect(await assume(await userToken('late', {}, -60))).toBe('ExpiredTokenException');
    expect(await assume(await userToken('direct'), UNTRUSTING_ROLE)).toBe('AccessDenied');
  });
});
