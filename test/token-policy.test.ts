/**
 * The server's token policy as real Quilt stacks meet it: a registry on its own host, tokens with
 * roles and no catalog_token, MCP_JWT_REQUIRE_CATALOG; the diagnostics (validate_jwt_token and
 * `quilt-mcp jwt inspect`) apply exactly the door's rules; and session ids without sessions
 * (some clients attach their token only once they hold an Mcp-Session-Id).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sameSite, TokenPolicy } from '../src/auth/token-policy.js';
import { normalizeClaims } from '../src/auth/claims.js';
import { loadConfig } from '../src/config.js';
import { ToolError } from '../src/core/errors.js';
import { connectHttp, rawPost, signToken, startHttpServer, TOOLS_CALL } from './helpers/http.js';
import { call, SERVER_ENTRY } from './helpers/mcp.js';
import { ROLE_A, startTenants, type Tenants } from './security/tenants.js';

const run = promisify(execFile);
const LINUX = { platform: 'linux' as const, homedir: '/home/u' };

let t: Tenants;
beforeAll(async () => {
  t = await startTenants();
}, 60_000);
afterAll(async () => {
  await t?.close();
});

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };

async function inspect(token: string, env: Record<string, string>): Promise<{ verification: string }> {
  const { stdout } = await run(process.execPath, [SERVER_ENTRY, 'jwt', 'inspect', token], { env });
  return JSON.parse(stdout) as { verification: string };
}

describe('a registry on its own host', () => {
  it('sameSite: the catalog\'s own host or a sibling in its parent domain, never a bare suffix or an IP', () => {
    expect(sameSite('demo.quiltdata.com', 'demo-registry.quiltdata.com')).toBe(true);
    expect(sameSite('demo.quiltdata.com', 'demo.quiltdata.com')).toBe(true);
    expect(sameSite('quilt.corp.example.com', 'quilt-registry.corp.example.com')).toBe(true);
    expect(sameSite('demo.quiltdata.com', 'evil.example.com')).toBe(false);
    expect(sameSite('demo.quiltdata.com', 'a.b.quiltdata.com')).toBe(false);
    expect(sameSite('demo.quiltdata.com', 'demo-registry.quiltdata.com:8443')).toBe(false);
    // quiltdata.com's parent would be "com": every .com host would be a sibling.
    expect(sameSite('quiltdata.com', 'evil.com')).toBe(false);
    expect(sameSite('127.0.0.1:3000', '127.0.0.2:3000')).toBe(false);
  });

  const policyFor = (registryUrl: string, env: Record<string, string> = {}) => {
    const config = loadConfig(['--http'], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: 'x'.repeat(32), QUILT_CATALOG_URL: 'https://demo.quiltdata.com', ...env }, LINUX);
    return new TokenPolicy(config, async () => ({ registryUrl, region: undefined, raw: {} }));
  };
  const claims = (c: Record<string, unknown>) => normalizeClaims({ sub: 's', exp: Math.floor(Date.now() / 1000) + 60, ...c });

  it('admits a token naming the registry its catalog\'s config.json names (demo / demo-registry) without an allowlist entry', async () => {
    const policy = policyFor('https://demo-registry.quiltdata.com');
    await expect(policy.check(claims({ catalog_token: 'ct', registry_url: 'https://demo-registry.quiltdata.com' }))).resolves.toBeUndefined();
    await expect(policy.registryOf('https://demo.quiltdata.com')).resolves.toBe('https://demo-registry.quiltdata.com');
  });

  it('refuses a registry the catalog does not name, and a named one off the catalog\'s site unless listed', async () => {
    await expect(policyFor('https://demo-registry.quiltdata.com').check(claims({ registry_url: 'https://other-registry.quiltdata.com' }))).rejects.toThrow(
      /registry_url points at other-registry\.quiltdata\.com, which this server does not allow and which is not the registry https:\/\/demo\.quiltdata\.com names/,
    );
    const offSite = policyFor('https://registry.elsewhere.example');
    await expect(offSite.registryOf('https://demo.quiltdata.com')).rejects.toThrow(/names its registry at registry\.elsewhere\.example, which is neither/);
    await expect(offSite.check(claims({ registry_url: 'https://registry.elsewhere.example' }))).rejects.toThrow(/registry_url points at/);
    const listed = policyFor('https://registry.elsewhere.example', { QUILT_CATALOG_ALLOWED_HOSTS: 'registry.elsewhere.example' });
    await expect(listed.check(claims({ registry_url: 'https://registry.elsewhere.example' }))).resolves.toBeUndefined();
  });

  it('an unreachable catalog is not a verdict on the token (the door answers 503, not 401)', async () => {
    const config = loadConfig(['--http'], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: 'x'.repeat(32), QUILT_CATALOG_URL: 'https://demo.quiltdata.com' }, LINUX);
    const policy = new TokenPolicy(config, async () => {
      throw new ToolError('unreachable', 'The Quilt catalog did not answer.');
    });
    await expect(policy.check(claims({ registry_url: 'https://demo-registry.quiltdata.com' }))).rejects.toMatchObject({ code: 'unreachable' });
  });
});

describe('the diagnostics apply the door\'s policy', () => {
  it('a token the door refuses for its registry_url is invalid in validate_jwt_token and jwt inspect too', async () => {
    const bad = await signToken({ sub: 'mallory', role_arn: ROLE_A, buckets: ['tenant-a'], registry_url: 'https://registry.example.test' });
    const door = await rawPost(t.server.url, TOOLS_CALL('auth_status'), { authorization: `Bearer ${bad}` });
    expect(door.status).toBe(401);
    const reason = ((await door.json()) as { error_description: string }).error_description;
    expect(reason).toContain("registry_url points at registry.example.test, which this server does not allow");

    const check = await call(t.alice, 'validate_jwt_token', { token: bad });
    expect(check.data).toMatchObject({ valid: false, reason });
    expect((await inspect(bad, t.env())).verification).toBe(`INVALID: ${reason}`);

    const good = await signToken({ sub: 'carol', role_arn: ROLE_A, buckets: ['tenant-a'], registry_url: t.catalog.url });
    expect((await call(t.alice, 'validate_jwt_token', { token: good })).data).toMatchObject({ valid: true });
    expect((await inspect(good, t.env())).verification).toBe('valid for this server configuration');
  });

  it('MCP_JWT_REQUIRE_CATALOG refuses tokens without catalog_token at the door, and the diagnostics agree', async () => {
    const server = await startHttpServer(t.env({ MCP_JWT_REQUIRE_CATALOG: 'true' }));
    try {
      const rolesOnly = await signToken({ sub: 'seed', token_type: 'enhanced', role_arn: ROLE_A, buckets: ['tenant-a'] });
      const door = await rawPost(server.url, TOOLS_CALL('bucket_list'), { authorization: `Bearer ${rolesOnly}` });
      expect(door.status).toBe(401);
      const reason = ((await door.json()) as { error_description: string }).error_description;
      expect(reason).toContain('requires catalog access (MCP_JWT_REQUIRE_CATALOG)');
      const alice = await connectHttp(server.url, t.aliceToken);
      expect((await call(alice, 'validate_jwt_token', { token: rolesOnly })).data).toMatchObject({ valid: false, reason });
      expect((await call(alice, 'bucket_list')).isError).toBe(false);
      await alice.close();
      expect((await inspect(rolesOnly, t.env({ MCP_JWT_REQUIRE_CATALOG: 'true' }))).verification).toContain('MCP_JWT_REQUIRE_CATALOG');
    } finally {
      await server.stop();
    }
  });
});

describe('a token with roles and no catalog_token', () => {
  let carol: Client;
  beforeAll(async () => {
    carol = await connectHttp(t.server.url, await signToken({ sub: 'carol', token_type: 'enhanced', role_arn: ROLE_A, buckets: ['tenant-a'] }));
  });
  afterAll(async () => {
    await carol?.close();
  });

  it('auth_status says what it can and cannot do', async () => {
    const status = await call(carol, 'auth_status');
    expect(status.data.aws.available).toBe(true);
    expect(status.data.details.aws_access).toContain('S3 objects, packages and Athena in the buckets tenant-a, through STS AssumeRole');
    expect(status.data.details.catalog_access).toMatch(/^none: no catalog_token claim, so no catalog search/);
    expect(status.data.catalog).toMatchObject({ available: false, auth: 'none' });
    expect(status.text).toContain('catalog_access: none: no catalog_token claim');
  });

  it('search_catalog scans S3 in the token\'s buckets and says why; S3 tools work', async () => {
    const r = await call(carol, 'search_catalog', { query: 'own' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('s3_fallback');
    expect(r.data.results).toEqual([expect.objectContaining({ type: 'file', s3_uri: 's3://tenant-a/alpha/own.txt' })]);
    expect(r.data.note).toContain('This token carries no catalog access: it has no catalog_token claim, so this searched S3 directly');
    expect(r.data.note).toContain('Ask for a token that includes catalog_token');
    const list = await call(carol, 'bucket_list');
    expect(list.data).toMatchObject({ source: 'token', buckets: [{ name: 'tenant-a' }] });
    expect((await call(carol, 'bucket_object_text', { uri: 's3://tenant-a/alpha/own.txt' })).text).toContain('alice own data');
  });

  it('without a buckets claim, search scans the buckets the role can list, and says what works instead of the catalog', async () => {
    const wide = await connectHttp(t.server.url, await signToken({ sub: 'dave', role_arn: ROLE_A }));
    const r = await call(wide, 'search_catalog', { query: 'own' });
    await wide.close();
    expect(r.isError, r.text).toBe(false);
    expect(r.data.source).toBe('s3_fallback');
    expect(r.data.interpretation.buckets_from).toBe('listed');
    expect(r.text).toContain('This token carries no catalog access');
    expect(r.text).toContain('bucket_objects_list, package_list, package_browse and Athena work');
  });
});

describe('session ids without sessions', () => {
  const sessionOf = (res: Response) => res.headers.get('mcp-session-id');

  it('issues an Mcp-Session-Id on initialize only, and never advertises tools.listChanged', async () => {
    const init = await rawPost(t.server.url, INIT);
    expect(init.status).toBe(200);
    const id = sessionOf(init);
    expect(id).toMatch(/^[\x21-\x7e]{1,256}$/);
    const text = await init.text();
    expect(text).not.toContain('"listChanged":true');
    expect(text).toContain('"listChanged":false');
    const again = sessionOf(await rawPost(t.server.url, INIT));
    expect(again).not.toBe(id);
    const ping = await rawPost(t.server.url, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': id ?? '' });
    expect(ping.status).toBe(200);
    expect(sessionOf(ping)).toBeNull();
  });

  it('accepts any well-formed id on any replica, refuses a malformed one, and answers DELETE with success', async () => {
    const other = await startHttpServer(t.env());
    try {
      const id = sessionOf(await rawPost(t.server.url, INIT)) ?? '';
      // Another replica never saw this id: it has nothing to look up, so it answers.
      const res = await rawPost(other.url, TOOLS_CALL('bucket_object_text', { uri: 's3://tenant-a/alpha/own.txt' }), {
        authorization: `Bearer ${t.aliceToken}`,
        'mcp-session-id': id,
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('alice own data');
      for (const bad of ['has space', 'x'.repeat(257), '']) {
        const r = await rawPost(other.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': bad });
        expect(r.status, JSON.stringify(bad)).toBe(400);
        expect(await r.text()).toContain('Mcp-Session-Id must be 1 to 256 visible ASCII characters');
      }
      const del = await fetch(other.url, { method: 'DELETE', headers: { 'mcp-session-id': id } });
      expect(del.status).toBe(200);
      const delWithout = await fetch(other.url, { method: 'DELETE' });
      expect(delWithout.status).toBe(400);
      expect((await fetch(other.url, { method: 'GET', headers: { accept: 'text/event-stream' } })).status).toBe(405);
    } finally {
      await other.stop();
    }
  });

  it('the SDK client keeps the session id, sends it with its token, and terminates the session cleanly', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(t.server.url), { requestInit: { headers: { authorization: `Bearer ${t.aliceToken}` } } });
    const client = new McpClient({ name: 'session-test', version: '0' });
    await client.connect(transport);
    expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(client.getServerCapabilities()?.tools?.listChanged).toBe(false);
    expect((await call(client, 'bucket_object_text', { uri: 's3://tenant-a/alpha/own.txt' })).text).toContain('alice own data');
    await transport.terminateSession();
    expect(transport.sessionId).toBeUndefined();
    await client.close();
  });
});
