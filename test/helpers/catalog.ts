/**
 * A small Quilt catalog + registry on 127.0.0.1: `/config.json`, `/api/token` (refresh tokens
 * rotate as the real registry's do: each works once, a reused one gets 401),
 * `/api/auth/get_credentials`, and `/graphql` (see catalog-graphql.ts). It records every request
 * with its bearer token and the status it got, fails on demand, and can lose a reply after doing
 * the work (as a reset connection or a crashed proxy does).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface CatalogRequest {
  method: string;
  path: string;
  bearer: string | undefined;
  body: string;
  /** The status answered; undefined while in flight or when the reply was dropped. */
  status?: number;
  /** The request was processed (or not, see dropNext) and the connection reset without a reply. */
  dropped?: boolean;
}

export interface Session {
  user: string;
  refresh_token: string;
  access_token: string;
  expires_at: number;
}

/**
 * Leaves a quilt3 login in `env`'s home (isolatedEnv), as `quilt3 login` does: config.yml naming
 * `url` as the catalog and registry, and auth.json holding `session` for it.
 */
export function writeQuilt3Login(env: Record<string, string>, url: string, session: Session): void {
  const dir = path.join(env.XDG_DATA_HOME ?? '', 'Quilt');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.yml'), `navigator_url: ${url}\nregistryUrl: ${url}\n`);
  writeFileSync(path.join(dir, 'auth.json'), JSON.stringify({ [url]: { refresh_token: session.refresh_token, access_token: session.access_token, expires_at: session.expires_at } }));
}

export type GraphqlHandler = (body: { query: string; variables?: Record<string, unknown> }, user: string | undefined) => Promise<unknown> | unknown;

export interface LocalCatalog {
  url: string;
  requests: CatalogRequest[];
  /** Issues a fresh session for a user (as `quilt3 login` would store it). */
  login(user: string, expiresInSeconds?: number): Session;
  /** Makes a refresh token invalid (as after a long absence). */
  expireRefreshToken(token: string): void;
  /** Makes an access token invalid for the credential and GraphQL endpoints. */
  revokeAccessToken(token: string): void;
  /** The next `times` requests to `path` answer with `status`. */
  failNext(path: string, status: number, times?: number): void;
  /** Milliseconds every request to a path waits before it is answered (a slow registry). */
  delays: Map<string, number>;
  /**
   * The next `times` requests to `path` get no reply: the connection is reset. With `after` (the
   * default) the request is processed first (a refresh token is spent and a new one issued, then
   * lost); with `before` nothing is done.
   */
  dropNext(path: string, when?: 'before' | 'after', times?: number): void;
  /** Refresh tokens issued by /api/token and not yet used. */
  liveRefreshTokens(): string[];
  /** Credentials handed out by get_credentials, per user. */
  credentialsFor: (user: string) => { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: string };
  /** config.json extra keys. */
  config: Record<string, unknown>;
  graphql: GraphqlHandler | undefined;
  /** Adds a valid catalog access token for a user (JWT catalog_token). */
  addAccessToken(token: string, user: string): void;
  /**
   * Creates a Quilt API key for a user (as apiKeyCreate does): a qk_ secret the registry takes as
   * a bearer on /graphql and /api/auth/get_credentials until it expires or is revoked, never on
   * /api/token (keys are not refreshed).
   */
  createApiKey(user: string, expiresInSeconds?: number): string;
  revokeApiKey(secret: string): void;
  close(): Promise<void>;
}

export async function startCatalog(): Promise<LocalCatalog> {
  const refreshTokens = new Map<string, string>(); // token -> user
  const accessTokens = new Map<string, string>();
  const apiKeys = new Map<string, { user: string; expiresAt: number }>();
  const failures = new Map<string, number[]>();
  const drops = new Map<string, ('before' | 'after')[]>();
  const requests: CatalogRequest[] = [];
  const token = () => randomBytes(12).toString('hex');

  const catalog: LocalCatalog = {
    url: '',
    requests,
    login(user, expiresInSeconds = 3600) {
      const s: Session = {
        user,
        refresh_token: `refresh-${token()}`,
        access_token: `access-${token()}`,
        expires_at: Date.now() / 1000 + expiresInSeconds,
      };
      refreshTokens.set(s.refresh_token, user);
      accessTokens.set(s.access_token, user);
      return s;
    },
    expireRefreshToken: (t) => void refreshTokens.delete(t),
    revokeAccessToken: (t) => void accessTokens.delete(t),
    failNext(path, status, times = 1) {
      const list = failures.get(path) ?? [];
      for (let i = 0; i < times; i++) list.push(status);
      failures.set(path, list);
    },
    delays: new Map(),
    credentialsFor: (user) => ({
      AccessKeyId: 'S3RVER',
      SecretAccessKey: 'S3RVER',
      SessionToken: `catalog-session-${user}`,
      Expiration: new Date(Date.now() + 3600_000).toISOString(),
    }),
    dropNext(path, when = 'after', times = 1) {
      const list = drops.get(path) ?? [];
      for (let i = 0; i < times; i++) list.push(when);
      drops.set(path, list);
    },
    liveRefreshTokens: () => [...refreshTokens.keys()],
    config: {},
    graphql: undefined,
    addAccessToken: (t, user) => void accessTokens.set(t, user),
    createApiKey(user, expiresInSeconds = 90 * 86400) {
      const secret = `qk_${randomBytes(24).toString('base64url')}`;
      apiKeys.set(secret, { user, expiresAt: Date.now() + expiresInSeconds * 1000 });
      return secret;
    },
    revokeApiKey: (secret) => void apiKeys.delete(secret),
    close: async () => {},
  };

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const entry: CatalogRequest = { method: req.method ?? 'GET', path: url.pathname, bearer, body };
      requests.push(entry);
      const drop = drops.get(url.pathname)?.shift();
      const reset = () => {
        entry.dropped = true;
        req.socket.destroy();
      };
      if (drop === 'before') return reset();
      const json = (status: number, value: unknown) => {
        // The work is done; with a drop pending, the reply never leaves.
        if (drop === 'after') return reset();
        entry.status = status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const delay = catalog.delays.get(url.pathname);
      if (delay) await new Promise((r) => setTimeout(r, delay));
      const failure = failures.get(url.pathname)?.shift();
      if (failure) return json(failure, { message: `injected failure ${failure}` });
      // A qk_ bearer is an API key: valid until it expires or is revoked; anything else is a session access token.
      const key = bearer?.startsWith('qk_') ? apiKeys.get(bearer) : undefined;
      const user = bearer?.startsWith('qk_') ? (key && key.expiresAt > Date.now() ? key.user : undefined) : bearer ? accessTokens.get(bearer) : undefined;

      switch (url.pathname) {
        case '/config.json':
          return json(200, { registryUrl: catalog.url, region: 'us-east-1', ...catalog.config });
        case '/api/token': {
          const refresh = new URLSearchParams(body).get('refresh_token') ?? '';
          const owner = refreshTokens.get(refresh);
          if (!owner) return json(401, { message: 'Invalid refresh token' });
          refreshTokens.delete(refresh); // rotation: a refresh token works once
          const s = catalog.login(owner);
          return json(200, { refresh_token: s.refresh_token, access_token: s.access_token, expires_at: s.expires_at });
        }
        case '/api/auth/get_credentials':
          if (!user) return json(401, { message: 'Invalid token' });
          return json(200, catalog.credentialsFor(user));
        case '/graphql': {
          if (req.method !== 'POST') return json(405, { message: 'POST only' });
          if (!catalog.graphql) return json(404, { message: 'no GraphQL here' });
          if (bearer && !user) return json(401, { message: 'Invalid token' });
          try {
            return json(200, await catalog.graphql(JSON.parse(body), user));
          } catch (err) {
            return json(400, { errors: [{ message: (err as Error).message }] });
          }
        }
        default:
          return json(404, { message: 'not found' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  catalog.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  catalog.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return catalog;
}
