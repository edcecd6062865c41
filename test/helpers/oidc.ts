/**
 * A small OAuth authorization server / OpenID provider on 127.0.0.1, for tests: discovery documents
 * (RFC 8414 and OpenID Connect, either or both), a JWKS, and a token endpoint for the
 * client_credentials grant (client_secret_basic or client_secret_post) that binds tokens to the
 * requested resource (RFC 8707: `aud` = the `resource` parameter) and grants the requested scopes
 * the client is allowed. `sign()` issues any claims directly (the shortcut for token shapes of
 * other providers). Every request is recorded, so tests can check the discovery chain a client took.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface OidcClient {
  id: string;
  secret: string;
  /** Scopes the client may be granted. */
  scopes: string[];
  /** Resources (audiences) the client may ask tokens for. */
  resources: string[];
  /** Extra claims in its tokens (buckets, role_arn, roles ...). */
  claims?: Record<string, unknown>;
  /** `sub` of its tokens (default: the client id, as for client_credentials). */
  sub?: string;
}

export interface OidcRequest {
  method: string;
  path: string;
  /** Form fields of a token request (the client secret removed). */
  form?: Record<string, string>;
  status?: number;
}

export interface LocalOidc {
  /** The issuer identifier (iss), http://127.0.0.1:<port>[<path>]. */
  issuer: string;
  jwksUri: string;
  tokenEndpoint: string;
  requests: OidcRequest[];
  clients: Map<string, OidcClient>;
  /** Signs a token with this issuer's key: iss, iat, exp (expiresIn s, default 3600) set unless given. */
  sign(claims: Record<string, unknown>, opts?: { expiresIn?: number; kid?: string; alg?: 'RS256' | 'ES256' }): Promise<string>;
  /** The public keys, as served at jwks_uri. */
  jwks(): { keys: JWK[] };
  /** Overrides fields of the discovery documents (e.g. a wrong issuer). */
  metadataOverrides: Record<string, unknown>;
  close(): Promise<void>;
}

export interface OidcOptions {
  /** Issuer path, e.g. /realms/test (Keycloak style); default none. */
  path?: string;
  /** Which discovery documents to serve (default both). */
  discovery?: 'oauth' | 'oidc' | 'both';
}

export async function startOidc({ path = '', discovery = 'both' }: OidcOptions = {}): Promise<LocalOidc> {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const publicJwks: JWK[] = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  const privateKeys: Record<'RS256' | 'ES256', { key: CryptoKey; kid: string }> = {
    RS256: { key: rsa.privateKey, kid: 'rsa-1' },
    ES256: { key: ec.privateKey, kid: 'ec-1' },
  };

  const oidc: LocalOidc = {
    issuer: '',
    jwksUri: '',
    tokenEndpoint: '',
    requests: [],
    clients: new Map(),
    metadataOverrides: {},
    jwks: () => ({ keys: publicJwks }),
    async sign(claims, { expiresIn = 3600, kid, alg = 'RS256' } = {}) {
      const now = Math.floor(Date.now() / 1000);
      const k = privateKeys[alg];
      return new SignJWT({ iss: oidc.issuer, iat: now, exp: now + expiresIn, ...claims })
        .setProtectedHeader({ alg, typ: 'at+jwt', kid: kid ?? k.kid })
        .sign(k.key);
    },
    close: async () => {},
  };

  const metadata = () => ({
    issuer: oidc.issuer,
    jwks_uri: oidc.jwksUri,
    token_endpoint: oidc.tokenEndpoint,
    // Required of an OpenID provider; this one answers no interactive sign-in there.
    authorization_endpoint: `${oidc.issuer}/authorize`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    response_types_supported: ['code'],
    scopes_supported: ['quilt:read', 'quilt:write'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    ...oidc.metadataOverrides,
  });

  const send = (res: http.ServerResponse, status: number, body: unknown, entry: OidcRequest) => {
    entry.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(text);
  };

  const token = async (req: http.IncomingMessage, form: URLSearchParams, entry: OidcRequest, res: http.ServerResponse) => {
    let id = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [u, p] = Buffer.from(basic[1] ?? '', 'base64').toString('utf8').split(':');
      id = decodeURIComponent(u ?? '');
      secret = decodeURIComponent(p ?? '');
    }
    const client = id ? oidc.clients.get(id) : undefined;
    if (!client || client.secret !== secret) return send(res, 401, { error: 'invalid_client' }, entry);
    if (form.get('grant_type') !== 'client_credentials') return send(res, 400, { error: 'unsupported_grant_type' }, entry);
    const resource = form.get('resource');
    if (resource !== null && !client.resources.includes(resource)) return send(res, 400, { error: 'invalid_target', error_description: 'resource not allowed for this client' }, entry);
    const asked = form.get('scope')?.split(' ').filter(Boolean) ?? client.scopes;
    // Grant what was asked and is allowed (a narrower grant than asked is legal, RFC 6749 3.3).
    const granted = asked.filter((s) => client.scopes.includes(s));
    const expiresIn = 3600;
    const accessToken = await oidc.sign({
      sub: client.sub ?? client.id,
      client_id: client.id,
      aud: resource ?? client.id,
      scope: granted.join(' '),
      jti: randomBytes(8).toString('hex'),
      ...client.claims,
    });
    send(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn, scope: granted.join(' ') }, entry);
  };

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const entry: OidcRequest = { method: req.method ?? '', path: url.pathname };
      oidc.requests.push(entry);
      const p = url.pathname;
      const oauthPaths = [`/.well-known/oauth-authorization-server${path}`];
      const oidcPaths = [`${path}/.well-known/openid-configuration`, ...(path ? [`/.well-known/openid-configuration${path}`] : [])];
      if ((discovery !== 'oidc' && oauthPaths.includes(p)) || (discovery !== 'oauth' && oidcPaths.includes(p))) return send(res, 200, metadata(), entry);
      if (p === `${path}/jwks`) return send(res, 200, oidc.jwks(), entry);
      if (p === `${path}/token` && req.method === 'POST') {
        const form = new URLSearchParams(body);
        const shown = Object.fromEntries([...form.entries()].filter(([k]) => k !== 'client_secret'));
        entry.form = shown;
        void token(req, form, entry, res).catch(() => send(res, 500, { error: 'server_error' }, entry));
        return;
      }
      send(res, 404, { error: 'not_found' }, entry);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  oidc.issuer = `${base}${path}`;
  oidc.jwksUri = `${base}${path}/jwks`;
  oidc.tokenEndpoint = `${base}${path}/token`;
  oidc.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return oidc;
}
