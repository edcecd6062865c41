/**
 * The commands users bring from the design documents this project was built from
 * (shared/reference/seed-commands.md, written for the Python server's jwt_helper.py and make
 * targets), each run as written against the built CLI and server: it works, or it is answered
 * with the exact fix, and the fixed command then works. `make test-stateless-mcp` is
 * `npm run test:stateless` (scripts/test-stateless.ts, run by CI against the real image).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeVersionWarning } from '../src/core/node-version.js';
import { loadConfig } from '../src/config.js';
import { startCatalog, writeQuilt3Login, type LocalCatalog } from './helpers/catalog.js';
import { defaultFixtures, graphqlHandler } from './helpers/catalog-graphql.js';
import { startHttpServer, type HttpServer } from './helpers/http.js';
import { isolatedEnv, SERVER_ENTRY } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSsm, type LocalSsm } from './helpers/ssm.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const exec = promisify(execFile);
const SECRET = 'seed-secret-0123456789abcdef0123456789abcdef';
const ROLE = 'arn:aws:iam::123456789012:role/TestRole';

let catalog: LocalCatalog;
let sts: LocalSts;
let s3: LocalS3;
const servers: HttpServer[] = [];

beforeAll(async () => {
  catalog = await startCatalog();
  const fixtures = defaultFixtures();
  fixtures.objects.push({ bucket: 'quilt-demo', key: 'README.md', version: 'v1', size: 10, modified: '2026-03-01T00:00:00.000Z' });
  catalog.graphql = graphqlHandler(fixtures);
  sts = await startSts();
  s3 = await startS3({ buckets: ['quilt-demo'] });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await catalog.close();
  await sts.close();
  await s3.close();
});

async function cli(args: string[], env: Record<string, string> = isolatedEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [SERVER_ENTRY, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A home with a quilt3 login on the local catalog, as `quilt3 login` leaves it. */
function loggedIn(user: string): Record<string, string> {
  const env = isolatedEnv();
  const s = catalog.login(user);
  writeQuilt3Login(env, catalog.url, s);
  return { ...env, ACCESS_TOKEN: s.access_token };
}

async function server(extra: Record<string, string>): Promise<HttpServer> {
  const s = await startHttpServer(
    isolatedEnv({
      MCP_REQUIRE_JWT: 'true',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'SERVERKEY',
      AWS_SECRET_ACCESS_KEY: 'server-secret',
      AWS_ENDPOINT_URL_STS: sts.endpoint,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      ...extra,
    }),
  );
  servers.push(s);
  return s;
}

describe('jwt_helper.py generate, as quilt-mcp jwt generate', () => {
  it('generate --role-arn "arn:aws:iam::123456789:role/TestRole" --secret "test-secret": both mistakes with their fixes, exit 2; the fixed command works', async () => {
    const r = await cli(['jwt', 'generate', '--role-arn', 'arn:aws:iam::123456789:role/TestRole', '--secret', 'test-secret']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('2 problems');
    expect(r.stderr).toContain('--secret is 11 characters; the server refuses HS256 secrets under 32 characters');
    expect(r.stderr).toContain('--secret "$(openssl rand -hex 32)"');
    expect(r.stderr).toContain('its account id "123456789" has 9 digits; AWS account ids have 12');
    expect(r.stderr).toContain('e.g. arn:aws:iam::123456789012:role/TestRole');
    expect(r.stderr).not.toContain('test-secret"');
    const fixed = await cli(['jwt', 'generate', '--role-arn', ROLE, '--secret', SECRET]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(decodeJwt(fixed.stdout.trim())).toMatchObject({ sub: 'mcp-test-user', role_arn: ROLE });
    expect(fixed.stderr).toContain('sub is "mcp-test-user". Pass --sub to choose it.');
  });

  it('generate --role-arn "$ROLE_ARN" --catalog-token "$CATALOG_TOKEN" --secret "test-secret-key": the secret\'s fix; fixed, the token reaches the catalog as the login\'s user', async () => {
    const env = loggedIn('carol');
    const r = await cli(['jwt', 'generate', '--role-arn', ROLE, '--catalog-token', env.ACCESS_TOKEN!, '--secret', 'test-secret-key'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--secret is 15 characters');
    expect(r.stderr).not.toContain(env.ACCESS_TOKEN!);
    const fixed = await cli(['jwt', 'generate', '--role-arn', ROLE, '--catalog-token', env.ACCESS_TOKEN!, '--secret', SECRET], env);
    expect(fixed.code, fixed.stderr).toBe(0);
    // No --sub: the user the catalog says the login (and this catalog token) belongs to.
    expect(decodeJwt(fixed.stdout.trim())).toMatchObject({ sub: 'carol', role_arn: ROLE, catalog_token: env.ACCESS_TOKEN, catalog_url: catalog.url });
  });

  it('generate --role-arn ARN --secret S --auto-extract: from the quilt3 login; without one, exit 1 and "run quilt3 login"', async () => {
    const env = loggedIn('dave');
    const r = await cli(['jwt', 'generate', '--role-arn', ROLE, '--secret', SECRET, '--auto-extract'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(decodeJwt(r.stdout.trim())).toMatchObject({ sub: 'dave', role_arn: ROLE, catalog_token: env.ACCESS_TOKEN, catalog_url: catalog.url, registry_url: catalog.url });
    const none = await cli(['jwt', 'generate', '--role-arn', ROLE, '--secret', SECRET, '--auto-extract']);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('No quilt3 login session found');
    expect(none.stderr).toContain('Run `quilt3 login`');
  });

  it('generate --role-arn ARN --secret S --expiry 7200 --auto-extract: a two-hour token', async () => {
    const r = await cli(['jwt', 'generate', '--role-arn', ROLE, '--secret', SECRET, '--expiry', '7200', '--auto-extract'], loggedIn('erin'));
    expect(r.code, r.stderr).toBe(0);
    const c = decodeJwt(r.stdout.trim());
    expect((c.exp ?? 0) - (c.iat ?? 0)).toBe(7200);
    const bad = await cli(['jwt', 'generate', '--sub', 'x', '--secret', SECRET, '--expiry', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--expiry must be a positive whole number of seconds');
  });

  it('--session-tags (a JSON object) and --external-id reach AssumeRole; what the server would refuse is refused with the reason', async () => {
    const r = await cli(['jwt', 'generate', '--sub', 'frank', '--role-arn', ROLE, '--secret', SECRET, '--session-tags', '{"team":"data","tier":2}', '--external-id', 'partner-42']);
    expect(r.code, r.stderr).toBe(0);
    const token = r.stdout.trim();
    expect(decodeJwt(token)).toMatchObject({ session_tags: { team: 'data', tier: '2' }, external_id: 'partner-42' });
    const s = await server({ MCP_JWT_SECRET: SECRET });
    const call = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'bucket_objects_list', arguments: { bucket: 'quilt-demo' } } }),
    });
    expect(call.status).toBe(200);
    expect(sts.assumeRoleCalls.at(-1)).toMatchObject({ roleArn: ROLE, sourceIdentity: 'frank', externalId: 'partner-42', tags: { team: 'data', tier: '2' } });

    expect((await cli(['jwt', 'generate', '--sub', 'x', '--secret', SECRET, '--session-tags', '[1]'])).stderr).toContain('--session-tags must be a JSON object');
    expect((await cli(['jwt', 'generate', '--sub', 'x', '--secret', SECRET, '--role-arn', ROLE, '--external-id', 'a b'])).stderr).toContain('--external-id must be 2 to 1224 characters');
    const tagKey = await cli(['jwt', 'generate', '--sub', 'x', '--secret', SECRET, '--session-tags', '{"bad key!":"v"}']);
    expect(tagKey.code).toBe(2);
    expect(tagKey.stderr).toContain('--tags/--session-tags: the server would refuse this token');
  });
});

describe('jwt_helper.py inspect --token "$JWT_TOKEN" --secret "test-secret"', () => {
  it('shows the payload and when it expires; a short --secret is answered with why and what to use; the right one verifies', async () => {
    const token = (await cli(['jwt', 'generate', '--sub', 'gina', '--role-arn', ROLE, '--secret', SECRET])).stdout.trim();
    const r = await cli(['jwt', 'inspect', '--token', token, '--secret', 'test-secret']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { claims: { sub: string }; expires: string; verification: string };
    expect(out.claims.sub).toBe('gina');
    expect(out.expires).toMatch(/^in (59m|1h)/);
    expect(out.verification).toContain('--secret is 11 characters; this server refuses HS256 secrets under 32 characters');
    expect(out.verification).toContain('--secret "$MCP_JWT_SECRET"');
    const ok = JSON.parse((await cli(['jwt', 'inspect', '--token', token, '--secret', SECRET])).stdout) as { verification: string };
    expect(ok.verification).toBe("valid with the key from --secret and this server's other rules");
  });
});

describe('the documents\' curl, step by step', () => {
  it('curl -X POST .../mcp -H "Authorization: Bearer $JWT_TOKEN" -d \'{"method":"tools/call",...}\': each answer says what to add, and the request then works', async () => {
    const s = await server({ MCP_JWT_SECRET: SECRET, QUILT_CATALOG_URL: catalog.url });
    const env = loggedIn('henry');
    const token = (await cli(['jwt', 'generate', '--role-arn', ROLE, '--secret', SECRET, '--auto-extract'], env)).stdout.trim();
    const data = '{"method":"tools/call","params":{"name":"search_catalog","arguments":{"query":"README.md"}}}';
    // As written: curl -d sends Content-Type application/x-www-form-urlencoded and Accept */*.
    const asWritten = await fetch(s.url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded', accept: '*/*' }, body: data });
    expect(asWritten.status).toBe(415);
    expect(((await asWritten.json()) as { error: { message: string } }).error.message).toContain("curl: -H 'Content-Type: application/json'");
    // With the Content-Type: the missing envelope, with an example to copy.
    const typed = await fetch(s.url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: '*/*' }, body: data });
    expect(typed.status).toBe(400);
    expect(((await typed.json()) as { error: { message: string } }).error.message).toContain('add "jsonrpc": "2.0" and an "id"');
    // With the envelope: answered, as JSON, though curl never asked for an event stream.
    const fixed = await fetch(s.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: '*/*' },
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_catalog","arguments":{"query":"README.md"}}}',
    });
    expect(fixed.status).toBe(200);
    expect(fixed.headers.get('content-type')).toMatch(/^application\/json/);
    const result = ((await fixed.json()) as { result: { isError?: boolean; structuredContent: { results: Array<{ key?: string }>; source: string } } }).result;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent.source).toBe('catalog');
    expect(result.structuredContent.results.length).toBeGreaterThanOrEqual(1);
  });
});

describe('environment names in the documents', () => {
  it('FASTMCP_TRANSPORT=http serves HTTP (the Python server\'s switch); sse is answered with what to set', async () => {
    const s = await server({ MCP_JWT_SECRET: SECRET, FASTMCP_TRANSPORT: 'http' });
    expect((await fetch(`http://127.0.0.1:${s.port}/health`)).status).toBe(200);
    expect(loadConfig([], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: SECRET, FASTMCP_TRANSPORT: 'streamable-http' }).transport).toBe('http');
    expect(() => loadConfig([], { FASTMCP_TRANSPORT: 'sse' })).toThrow(/FASTMCP_TRANSPORT is invalid: must be http or stdio \(quilt-mcp serves Streamable HTTP, not the older SSE transport\)/);
    expect(() => loadConfig([], { FASTMCP_TRANSPORT: 'http', MCP_TRANSPORT: 'stdio' })).toThrow(/MCP_TRANSPORT and FASTMCP_TRANSPORT are both set, to different values/);
    // Without either, JWT mode over stdio says how to serve HTTP instead.
    expect(() => loadConfig([], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: SECRET })).toThrow(/set MCP_TRANSPORT=http \(or pass --http\)/);
  });

  it('MCP_ENHANCED_JWT_SECRET_SSM_PARAMETER: the secret is read once at start from SSM with the server\'s own identity, decrypted', async () => {
    const ssm: LocalSsm = await startSsm(['SERVERKEY']);
    try {
      ssm.parameters.set('/quilt/mcp/jwt-secret', { value: SECRET, type: 'SecureString', readers: ['SERVERKEY'] });
      const s = await server({ MCP_ENHANCED_JWT_SECRET_SSM_PARAMETER: '/quilt/mcp/jwt-secret', AWS_ENDPOINT_URL_SSM: ssm.endpoint, MCP_TRANSPORT: 'http' });
      expect(ssm.calls).toEqual([expect.objectContaining({ target: 'AmazonSSM.GetParameter', name: '/quilt/mcp/jwt-secret', withDecryption: true, accessKeyId: 'SERVERKEY', service: 'ssm', status: 200 })]);
      expect(s.stderr()).toContain('Read the JWT secret from SSM parameter=/quilt/mcp/jwt-secret');
      expect(s.stderr()).not.toContain(SECRET);
      const token = (await cli(['jwt', 'generate', '--sub', 'iris', '--secret', SECRET])).stdout.trim();
      const ok = await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'jwt_diagnostics', arguments: {} } }),
      });
      expect(ok.status).toBe(200);
      const other = (await cli(['jwt', 'generate', '--sub', 'iris', '--secret', `${SECRET}-other`])).stdout.trim();
      const refused = await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${other}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'jwt_diagnostics', arguments: {} } }),
      });
      expect(refused.status).toBe(401);
      expect(ssm.calls).toHaveLength(1);
    } finally {
      await ssm.close();
    }
  });

  it('an SSM parameter that is missing, unreadable or too short stops the start with what to fix (exit 1); set with MCP_JWT_SECRET it is exit 2', async () => {
    const ssm: LocalSsm = await startSsm(['SERVERKEY']);
    const start = (extra: Record<string, string>) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [SERVER_ENTRY, '--http', '--port', '0'], {
          env: isolatedEnv({ MCP_REQUIRE_JWT: 'true', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'SERVERKEY', AWS_SECRET_ACCESS_KEY: 'x', AWS_ENDPOINT_URL_SSM: ssm.endpoint, MCP_JWT_SECRET_SSM_PARAMETER: '/quilt/mcp/jwt-secret', ...extra }),
        });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('exit', (code) => resolve({ code, stderr }));
      });
    try {
      const missing = await start({});
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('Could not read the JWT secret from the SSM parameter /quilt/mcp/jwt-secret (us-east-1): it does not exist');
      ssm.parameters.set('/quilt/mcp/jwt-secret', { value: SECRET, readers: ['SOMEONEELSE'] });
      const denied = await start({});
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('needs ssm:GetParameter on this parameter, and kms:Decrypt');
      ssm.parameters.set('/quilt/mcp/jwt-secret', { value: 'short' });
      const short = await start({});
      expect(short.code).toBe(1);
      expect(short.stderr).toContain('holds 5 characters; the HS256 secret must be at least 32 characters');
      expect(short.stderr).not.toContain('short"');
      const both = await start({ MCP_JWT_SECRET: SECRET });
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('MCP_JWT_SECRET_SSM_PARAMETER and MCP_JWT_SECRET are both set');
    } finally {
      await ssm.close();
    }
  });
});

describe('Node 20', () => {
  it('is named at start with the fix; 22 and later say nothing', () => {
    expect(nodeVersionWarning('v20.20.2')).toBe(
      'This is Node v20.20.2; quilt-mcp needs Node 22 or later (Node 20 is past its end of life, and AWS SDK releases from 2027 require 22). Install Node 22 LTS or newer (https://nodejs.org, or `nvm install 22`) and start quilt-mcp with it.',
    );
    expect(nodeVersionWarning('v22.0.0')).toBeUndefined();
    expect(nodeVersionWarning('v24.3.1')).toBeUndefined();
  });
});
