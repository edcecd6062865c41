/**
 * Standards-based sign-in, against the built server over real HTTP: RFC 9728 protected-resource
 * metadata and the `resource_metadata` challenge, tokens from an OpenID provider verified through
 * keys discovered from its metadata, bound to this server's resource (RFC 8707), OAuth scopes as
 * grants with `insufficient_scope` step-up, and the token shapes of common identity providers.
 * The MCP SDK's own client follows the whole discovery chain with the client_credentials grant.
 */
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, freePort, rawPost, startHttpServer, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { call, isolatedEnv } from './helpers/mcp.js';
import { startOidc, type LocalOidc } from './helpers/oidc.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const ROLE = 'arn:aws:iam::123456789012:role/oidc-reader';
const ROLE_TEMPLATE = 'arn:aws:iam::123456789012:role/{role}';
const ENV_KEY = 'OIDCENVKEY';

let s3: LocalS3;
let sts: LocalSts;
let idp: LocalOidc;
let server: HttpServer;
let resource: string;

beforeAll(async () => {
  sts = await startSts();
  // Keycloak-style issuer with a path, serving only OpenID Connect discovery: the server must find it.
  idp = await startOidc({ path: '/realms/quilt', discovery: 'oidc' });
  s3 = await startS3({
    buckets: ['oidc-data'],
    // The container's own key never reaches S3: only credentials STS issued for a role.
    deny: (r) => (r.accessKeyId === ENV_KEY || !sts.issued.has(r.sessionToken ?? '') ? 'AccessDenied' : undefined),
  });
  await s3.put('oidc-data', 'hello.txt', 'hello from oidc');
  const port = await freePort();
  resource = `http://127.0.0.1:${port}/mcp`;
  idp.clients.set('reader-app', { id: 'reader-app', secret: 'reader-secret', scopes: ['quilt:read'], resources: [resource], claims: { role_arn: ROLE } });
  idp.clients.set('writer-app', { id: 'writer-app', secret: 'writer-secret', scopes: ['quilt:read', 'quilt:write'], resources: [resource], claims: { role_arn: ROLE } });
  server = await startHttpServer(
    isolatedEnv({
      MCP_REQUIRE_JWT: 'true',
      MCP_RESOURCE_URL: resource,
      MCP_OAUTH_AUTHORIZATION_SERVERS: idp.issuer,
      MCP_JWT_ROLE_ARN_TEMPLATE: ROLE_TEMPLATE,
      MCP_JWT_ROLES_CLAIM: 'realm_access.roles',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: ENV_KEY,
      AWS_SECRET_ACCESS_KEY: 'env-secret',
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

const base = () => `http://127.0.0.1:${server.port}`;

/**
 * The SDK's client_credentials provider, asking for the scope the server's last challenge named. The
 * SDK resolves that scope (WWW-Authenticate first, then scopes_supported) for interactive flows but
 * its client_credentials request sends only the provider's configured scope, so this test client
 * reads the challenges itself (through the transport's fetch) and configures it.
 */
class ChallengeScopedProvider extends ClientCredentialsProvider {
  scope: string | undefined;
  override get clientMetadata() {
    return { ...super.clientMetadata, ...(this.scope ? { scope: this.scope } : {}) };
  }
}

/** The MCP SDK client with the client_credentials grant: it finds everything from the 401. */
async function oauthClient(id: string, secret: string): Promise<{ client: Client; provider: ChallengeScopedProvider }> {
  const provider = new ChallengeScopedProvider({ clientId: id, clientSecret: secret, expectedIssuer: idp.issuer });
  const watch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const scope = params(res.headers.get('www-authenticate')).scope;
    if ((res.status === 401 || res.status === 403) && scope) provider.scope = scope;
    return res;
  };
  const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider, fetch: watch });
  const client = new Client({ name: 'oauth-test', version: '0.0.0' });
  await client.connect(transport);
  return { client, provider };
}

function params(header: string | null): Record<string, string> {
  return Object.fromEntries([...(header ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

describe('protected-resource metadata (RFC 9728)', () => {
  it('is served without a token at the well-known path and its /mcp form', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await fetch(`${base()}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(await res.json()).toEqual({
        resource,
        authorization_servers: [idp.issuer],
        scopes_supported: ['quilt:read', 'quilt:write'],
        bearer_methods_supported: ['header'],
        resource_name: 'quilt-mcp',
      });
    }
    expect((await fetch(`${base()}/.well-known/oauth-protected-resource`, { method: 'POST' })).status).toBe(405);
  });

  it('is named in every 401 challenge, with the scope the call needs', async () => {
    const prm = `${base()}/.well-known/oauth-protected-resource/mcp`;
    const read = await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: 's3://oidc-data/hello.txt' }));
    expect(read.status).toBe(401);
    expect(params(read.headers.get('www-authenticate'))).toEqual({ realm: 'quilt-mcp', scope: 'quilt:read', resource_metadata: prm });
    const write = await rawPost(server.url, TOOLS_CALL('bucket_objects_put', { bucket: 'oidc-data', items: [{ key: 'x', text: 'x' }] }));
    expect(params(write.headers.get('www-authenticate')).scope).toBe('quilt:write');
    const bad = await rawPost(server.url, TOOLS_CALL('bucket_list'), { authorization: 'Bearer not.a.jwt' });
    expect(bad.status).toBe(401);
    expect(params(bad.headers.get('www-authenticate'))).toMatchObject({ error: 'invalid_token', resource_metadata: prm });
    const malformed = await rawPost(server.url, TOOLS_CALL('bucket_list'), { authorization: 'Basic abc' });
    expect(params(malformed.headers.get('www-authenticate'))).toMatchObject({ error: 'invalid_request', resource_metadata: prm });
  });
});

describe('an OAuth client following the discovery chain', () => {
  it('goes 401 -> resource metadata -> authorization server metadata -> token -> success', async () => {
    const before = idp.requests.length;
    const { client } = await oauthClient('reader-app', 'reader-secret');
    const stsBefore = sts.assumeRoleCalls.length;
    const r = await call(client, 'bucket_object_text', { uri: 's3://oidc-data/hello.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(r.text).toContain('hello from oidc');
    await client.close();

    const chain = idp.requests.slice(before);
    // The client found the provider's OpenID configuration and got a token bound to this server.
    const tokenRequest = chain.find((q) => q.path === '/realms/quilt/token');
    expect(tokenRequest?.status).toBe(200);
    expect(tokenRequest?.form).toMatchObject({ grant_type: 'client_credentials', resource, scope: 'quilt:read' });
    expect(chain.findIndex((q) => q.status === 200 && q.path.includes('openid-configuration'))).toBeLessThan(chain.indexOf(tokenRequest!));
    // And the server discovered the keys the same way (the JWKS), then assumed the token's role.
    expect(idp.requests.some((q) => q.path === '/realms/quilt/jwks')).toBe(true);
    expect(sts.assumeRoleCalls.slice(stsBefore).map((c) => [c.roleArn, c.sourceIdentity])).toEqual([[ROLE, 'reader-app']]);
  });

  it('steps up on insufficient_scope: a read token, a write call, 403, a token with quilt:write, success', async () => {
    const { client } = await oauthClient('writer-app', 'writer-secret');
    const tokensBefore = idp.requests.filter((q) => q.path.endsWith('/token')).length;
    // The 401 of a read asks for quilt:read only: the least the call needs.
    expect((await call(client, 'bucket_object_text', { uri: 's3://oidc-data/hello.txt' })).isError).toBe(false);
    const r = await call(client, 'bucket_objects_put', { bucket: 'oidc-data', items: [{ key: 'written.txt', text: 'written' }] });
    expect(r.isError, r.text).toBe(false);
    const tokens = idp.requests.filter((q) => q.path.endsWith('/token')).slice(tokensBefore);
    // The 403 named the scopes the token had plus the one it lacked, and the client asked for them.
    expect(tokens.map((t) => t.form?.scope)).toEqual(['quilt:read', 'quilt:read quilt:write']);
    expect(s3.requests.some((q) => q.key === 'written.txt' && q.method === 'PUT')).toBe(true);
    await client.close();
  });

  it('refuses a write when the authorization server will not grant quilt:write', async () => {
    const { client } = await oauthClient('reader-app', 'reader-secret');
    await expect(call(client, 'bucket_objects_put', { bucket: 'oidc-data', items: [{ key: 'nope.txt', text: 'x' }] })).rejects.toThrow(/403/);
    await client.close();
    expect(s3.requests.some((q) => q.key === 'nope.txt')).toBe(false);
  });
});

describe('tokens: audience, issuer, scopes', () => {
  async function post(token: string, tool = 'bucket_object_text', args: Record<string, unknown> = { uri: 's3://oidc-data/hello.txt' }) {
    return rawPost(server.url, TOOLS_CALL(tool, args), { authorization: `Bearer ${token}` });
  }

  it('refuses a token for another resource, or with no audience (RFC 8707)', async () => {
    for (const aud of ['https://other.example.com/mcp', undefined, [`${resource}/`]]) {
      const t = await idp.sign({ sub: 'eve', scope: 'quilt:read', role_arn: ROLE, ...(aud ? { aud } : {}) });
      const res = await post(t);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error_description: string };
      expect(body.error_description).toContain(`meant for another audience (aud); this server accepts tokens issued for ${resource}`);
    }
  });

  it('refuses a token from an issuer it does not name, and one signed by a key not in the JWKS', async () => {
    const other = await startOidc();
    try {
      const t = await other.sign({ sub: 'eve', aud: resource, scope: 'quilt:read' });
      const res = await post(t);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error_description: string }).error_description).toContain('issued by an issuer this server does not accept');
      // The other provider's key under this issuer's name: the signature fails.
      const forged = await other.sign({ iss: idp.issuer, sub: 'eve', aud: resource, scope: 'quilt:read' });
      const res2 = await post(forged);
      expect(res2.status).toBe(401);
      expect(((await res2.json()) as { error_description: string }).error_description).toMatch(/signature is invalid|No key in the JWKS/);
    } finally {
      await other.close();
    }
  });

  it('answers 403 insufficient_scope to a read-only token calling a write tool, before any AWS call', async () => {
    const t = await idp.sign({ sub: 'reader', aud: resource, scope: 'openid quilt:read', role_arn: ROLE });
    const stsBefore = sts.assumeRoleCalls.length;
    const res = await post(t, 'bucket_objects_put', { bucket: 'oidc-data', items: [{ key: 'denied.txt', text: 'x' }] });
    expect(res.status).toBe(403);
    expect(params(res.headers.get('www-authenticate'))).toMatchObject({
      error: 'insufficient_scope',
      scope: 'quilt:read quilt:write',
      resource_metadata: `${base()}/.well-known/oauth-protected-resource/mcp`,
    });
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="quilt-mcp", error="insufficient_scope"/);
    expect(sts.assumeRoleCalls.length).toBe(stsBefore);
    // A token with no quilt scope at all may not even read.
    const none = await idp.sign({ sub: 'nobody', aud: resource, scope: 'openid profile', role_arn: ROLE });
    const res2 = await post(none);
    expect(res2.status).toBe(403);
    expect(params(res2.headers.get('www-authenticate')).scope).toBe('quilt:read');
    // The handshake needs no scope: such a client can still connect and list tools.
    const client = await connectHttp(server.url, none);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });

  // Access-token shapes of common providers, as they sign them, with this server's audience.
  const shapes: Array<[string, () => Promise<string>, { sub: string; role: string }]> = [
    [
      'Keycloak (scope string, aud list, realm_access.roles via MCP_JWT_ROLES_CLAIM)',
      () => idp.sign({ sub: 'f3a1-keycloak', aud: [resource, 'account'], azp: 'mcp', typ: 'Bearer', scope: 'openid profile quilt:read', realm_access: { roles: ['oidc-reader', 'offline_access'] } }),
      { sub: 'f3a1-keycloak', role: ROLE },
    ],
    [
      'Okta (scp list, cid, groups)',
      () => idp.sign({ sub: 'alice@example.com', aud: resource, cid: '0oa1', uid: '00u1', scp: ['quilt:read', 'quilt:write'], groups: ['Everyone'], role_arn: ROLE }),
      { sub: 'alice@example.com', role: ROLE },
    ],
    [
      'Entra ID v2 (scp string, app roles in roles, oid, ES256)',
      () => idp.sign({ sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', aud: resource, oid: '0000-1111', tid: '2222', ver: '2.0', scp: 'quilt:read', roles: ['oidc-reader'] }, { alg: 'ES256' }),
      { sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', role: ROLE },
    ],
  ];
  for (const [name, make, want] of shapes) {
    it(`accepts a ${name} token: identity, role and read access`, async () => {
      const t = await make();
      const stsBefore = sts.assumeRoleCalls.length;
      const client = await connectHttp(server.url, t);
      const status = await call(client, 'auth_status');
      expect(status.isError, status.text).toBe(false);
      expect(status.text).toContain(want.sub);
      const r = await call(client, 'bucket_object_text', { uri: 's3://oidc-data/hello.txt' });
      expect(r.isError, r.text).toBe(false);
      expect(sts.assumeRoleCalls.slice(stsBefore).map((c) => c.roleArn)).toEqual([want.role]);
      await client.close();
    });
  }
});
