/**
 * Sign-in without servers: the configuration rules of OAuth, web identity and API keys, issuer
 * discovery (RFC 8414 and OpenID Connect, and refusing a document that names another issuer),
 * OAuth scopes as grants, and redaction of Quilt API keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingScope, normalizeClaims } from '../src/auth/claims.js';
import { discoveryUrls, IssuerDiscovery } from '../src/auth/oidc-discovery.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { ToolError } from '../src/core/errors.js';
import { redact } from '../src/core/redact.js';
import { startOidc, type LocalOidc } from './helpers/oidc.js';

const LINUX = { platform: 'linux' as const, homedir: '/home/u' };
const jwt = (env: Record<string, string>) => loadConfig(['--http'], { MCP_REQUIRE_JWT: 'true', ...env }, LINUX);
const RESOURCE = 'https://mcp.example.com/mcp';

describe('configuration', () => {
  it('binds tokens to MCP_RESOURCE_URL and trusts the authorization servers as issuers', () => {
    const c = jwt({ MCP_RESOURCE_URL: RESOURCE, MCP_OAUTH_AUTHORIZATION_SERVERS: 'https://idp.example.com/, https://login.example.org/tenant/v2.0' });
    expect(c.jwt.audiences).toEqual([RESOURCE]);
    // Issuer identifiers are kept exactly, trailing slash included (they are compared as strings).
    expect(c.jwt.issuers).toEqual(['https://idp.example.com/', 'https://login.example.org/tenant/v2.0']);
    expect(c.jwt.authorizationServers).toEqual(c.jwt.issuers);
    // Explicit settings win.
    const d = jwt({ MCP_RESOURCE_URL: RESOURCE, MCP_OAUTH_AUTHORIZATION_SERVERS: 'https://idp.example.com', MCP_JWT_AUDIENCE: 'api://quilt', MCP_JWT_ISSUER: 'https://x.example.com' });
    expect(d.jwt.audiences).toEqual(['api://quilt']);
    expect(d.jwt.issuers).toEqual(['https://x.example.com']);
  });

  it('refuses settings that would weaken sign-in, naming the variable', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ MCP_OAUTH_AUTHORIZATION_SERVERS: 'https://idp.example.com' }, /without MCP_RESOURCE_URL/],
      [{ MCP_RESOURCE_URL: RESOURCE, MCP_OAUTH_AUTHORIZATION_SERVERS: 'http://idp.example.com' }, /MCP_OAUTH_AUTHORIZATION_SERVERS is invalid: must be https/],
      [{ MCP_RESOURCE_URL: 'http://mcp.example.com/mcp', MCP_JWT_SECRET: 'x'.repeat(32) }, /MCP_RESOURCE_URL is invalid/],
      [{ MCP_JWT_SECRET: 'x'.repeat(32), MCP_JWT_WEB_IDENTITY: 'true' }, /MCP_JWT_WEB_IDENTITY needs tokens AWS can verify/],
      [{ MCP_QUILT_API_KEYS: 'true' }, /MCP_QUILT_API_KEYS needs QUILT_CATALOG_URL/],
      [{ QUILT_API_KEY: 'not-a-key', MCP_JWT_SECRET: 'x'.repeat(32) }, /QUILT_API_KEY is invalid: must be a Quilt API key .*the value is not shown/],
    ];
    for (const [env, message] of bad) expect(() => jwt(env)).toThrow(message);
    expect(() => jwt({})).toThrow(ConfigError);
    // Loopback issuers (local providers, tests) may use http; API keys alone are a way in.
    expect(jwt({ MCP_RESOURCE_URL: 'http://127.0.0.1:3000/mcp', MCP_OAUTH_AUTHORIZATION_SERVERS: 'http://localhost:8080/realms/q' }).jwt.resource).toBe('http://127.0.0.1:3000/mcp');
    expect(jwt({ MCP_QUILT_API_KEYS: 'true', QUILT_CATALOG_URL: 'https://quilt.example.com' }).jwt.quiltApiKeys).toBe(true);
  });
});

describe('issuer discovery', () => {
  let oauthOnly: LocalOidc;
  let oidcOnly: LocalOidc;
  beforeAll(async () => {
    oauthOnly = await startOidc({ path: '/tenant', discovery: 'oauth' });
    oidcOnly = await startOidc({ discovery: 'oidc' });
  });
  afterAll(async () => {
    await oauthOnly?.close();
    await oidcOnly?.close();
  });

  it('tries RFC 8414 (path inserted), then OpenID Connect (appended, then inserted)', () => {
    expect(discoveryUrls('https://idp.example.com/tenant/')).toEqual([
      'https://idp.example.com/.well-known/oauth-authorization-server/tenant',
      'https://idp.example.com/tenant/.well-known/openid-configuration',
      'https://idp.example.com/.well-known/openid-configuration/tenant',
    ]);
    expect(discoveryUrls('https://idp.example.com')).toEqual([
      'https://idp.example.com/.well-known/oauth-authorization-server',
      'https://idp.example.com/.well-known/openid-configuration',
    ]);
  });

  it('finds the key set from either kind of metadata, once', async () => {
    const d = new IssuerDiscovery();
    expect(await d.metadata(oauthOnly.issuer)).toMatchObject({ jwksUri: oauthOnly.jwksUri, from: expect.stringContaining('oauth-authorization-server/tenant') });
    expect(await d.metadata(oidcOnly.issuer)).toMatchObject({ jwksUri: oidcOnly.jwksUri, from: expect.stringContaining('openid-configuration') });
    const before = oidcOnly.requests.length;
    await d.metadata(oidcOnly.issuer);
    expect(oidcOnly.requests.length).toBe(before);
  });

  it('refuses metadata that names another issuer, or no usable jwks_uri', async () => {
    oidcOnly.metadataOverrides = { issuer: 'https://evil.example.com' };
    await expect(new IssuerDiscovery().metadata(oidcOnly.issuer)).rejects.toThrow(/names a different issuer \(https:\/\/evil\.example\.com\)/);
    oidcOnly.metadataOverrides = { jwks_uri: 'http://keys.example.com/jwks' };
    await expect(new IssuerDiscovery().metadata(oidcOnly.issuer)).rejects.toThrow(/no usable jwks_uri/);
    oidcOnly.metadataOverrides = {};
    const err = await new IssuerDiscovery().metadata('http://127.0.0.1:9/none').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).code).toBe('unreachable');
  });
});

describe('OAuth scopes as grants', () => {
  const base = { sub: 'u', exp: Math.floor(Date.now() / 1000) + 60 };

  it('maps quilt:read and quilt:write to permissions, from scope or scp', () => {
    expect(normalizeClaims({ ...base, scope: 'openid quilt:read' }).permissions).toEqual(['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 's3:ListAllMyBuckets']);
    const okta = normalizeClaims({ ...base, scp: ['quilt:read', 'quilt:write'] });
    expect(okta.scopeGrant).toBe(true);
    expect(okta.permissions).toContain('s3:PutObject');
    // An explicit permissions claim wins; the catalog's own scope words change nothing.
    expect(normalizeClaims({ ...base, scope: 'quilt:read', permissions: ['s3:PutObject'] }).permissions).toEqual(['s3:PutObject']);
    expect(normalizeClaims({ ...base, scope: 'read write' }).permissions).toBeUndefined();
    // With authorization servers configured, a token without quilt scopes is granted nothing.
    expect(normalizeClaims({ ...base, scope: 'openid' }, { scopesRequired: true }).permissions).toEqual([]);
  });

  it('reads roles from MCP_JWT_ROLES_CLAIM (a dotted path), else from roles', () => {
    const keycloak = { ...base, realm_access: { roles: ['QuiltReader', 'offline_access'] }, roles: ['ignored'] };
    expect(normalizeClaims(keycloak, { rolesClaim: 'realm_access.roles' }).roles).toEqual(['QuiltReader', 'offline_access']);
    expect(normalizeClaims({ ...base, roles: ['Fallback'] }, { rolesClaim: 'realm_access.roles' }).roles).toEqual(['Fallback']);
    expect(normalizeClaims({ ...base, groups: 'QuiltWriter' }, { rolesClaim: 'groups' }).roles).toEqual(['QuiltWriter']);
    expect(() => normalizeClaims({ ...base, groups: [1] }, { rolesClaim: 'groups' })).toThrow(/Claim "groups" must be a list/);
  });

  it('names the scope to step up to, keeping the ones the token has', () => {
    const reader = normalizeClaims({ ...base, scope: 'openid quilt:read' });
    expect(missingScope(reader, 'read')).toBeUndefined();
    expect(missingScope(reader, 'write')).toBe('quilt:read quilt:write');
    expect(missingScope(reader, 'destructive')).toBe('quilt:read quilt:write');
    expect(missingScope(normalizeClaims({ ...base, permissions: ['s3:GetObject'] }), 'write')).toBeUndefined();
  });
});

it('redacts Quilt API keys wherever they appear', () => {
  expect(redact('key qk_abcdefghijklmnop12345 refused')).toBe('key qk_[redacted] refused');
  expect(redact('{"k":"qk_abcdefghijkl"}')).toBe('{"k":"qk_[redacted]"}');
});
