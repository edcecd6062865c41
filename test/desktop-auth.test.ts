/**
 * Desktop mode's quilt3 session against a local registry: where quilt3 keeps it on each OS,
 * token refresh with rotation written back, credentials, and the errors a person sees.
 */
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesktopAuthService } from '../src/auth/desktop.js';
import { loadConfig, quilt3DataDir, type Config } from '../src/config.js';
import type { RuntimeContext } from '../src/context.js';
import { silentLogger } from '../src/log.js';
import type { ToolExtras } from '../src/tools/define.js';
import { bucketObjectsList } from '../src/tools/objects-list.js';
import { startCatalog, type LocalCatalog, type Session } from './helpers/catalog.js';
import { call, connectStdio, isolatedEnv } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let catalog: LocalCatalog;
let s3: LocalS3;

beforeAll(async () => {
  catalog = await startCatalog();
  s3 = await startS3({ buckets: ['team-bucket'] });
  await s3.put('team-bucket', 'hello.txt', 'hello');
});
afterAll(async () => {
  await catalog?.close();
  await s3?.close();
});

const extras: ToolExtras = { signal: new AbortController().signal, progress: async () => {} };

function writeSession(dir: string, session: Session | undefined, registry = catalog.url, other = true) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.yml'), `navigator_url: ${catalog.url}\nregistryUrl: ${registry}\ntelemetry_disabled: true\n`);
  if (session) {
    const auth: Record<string, unknown> = {
      [registry]: { refresh_token: session.refresh_token, access_token: session.access_token, expires_at: session.expires_at },
    };
    if (other) auth['https://other-registry.example.com'] = { refresh_token: 'keep-me', access_token: 'x', expires_at: 1 };
    writeFileSync(path.join(dir, 'auth.json'), JSON.stringify(auth), { mode: 0o600 });
  }
}

function configFor(platform: NodeJS.Platform, env: Record<string, string> = {}): Config {
  const home = mkdtempSync(path.join(os.tmpdir(), `home-${platform}-`));
  return loadConfig(
    [],
    {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      AWS_REGION: 'us-east-1',
      ...env,
    },
    { platform, homedir: home },
  );
}

const list = (ctx: RuntimeContext) => bucketObjectsList.handler({ bucket: 'team-bucket', max_keys: 10 }, ctx, extras);

describe('where quilt3 keeps its session', () => {
  it('follows platformdirs on Linux, macOS and Windows', () => {
    expect(quilt3DataDir({}, { platform: 'linux', homedir: '/home/ann' })).toBe('/home/ann/.local/share/Quilt');
    expect(quilt3DataDir({ XDG_DATA_HOME: '/data/xdg' }, { platform: 'linux', homedir: '/home/ann' })).toBe('/data/xdg/Quilt');
    // platformdirs ignores a relative XDG_DATA_HOME, as the XDG spec says.
    expect(quilt3DataDir({ XDG_DATA_HOME: 'rel' }, { platform: 'linux', homedir: '/home/ann' })).toBe('/home/ann/.local/share/Quilt');
    expect(quilt3DataDir({ XDG_DATA_HOME: '/x' }, { platform: 'darwin', homedir: '/Users/ann' })).toBe(
      '/Users/ann/Library/Application Support/Quilt',
    );
    expect(quilt3DataDir({ LOCALAPPDATA: 'C:\\Users\\ann\\AppData\\Local' }, { platform: 'win32', homedir: 'C:\\Users\\ann' })).toBe(
      'C:\\Users\\ann\\AppData\\Local\\QuiltData\\Quilt',
    );
    expect(quilt3DataDir({}, { platform: 'win32', homedir: 'C:\\Users\\ann' })).toBe('C:\\Users\\ann\\AppData\\Local\\QuiltData\\Quilt');
  });

  for (const platform of ['linux', 'darwin'] as const) {
    it(`uses a session laid out at the ${platform} path`, async () => {
      const config = configFor(platform);
      const expected =
        platform === 'darwin' ? path.join('Library', 'Application Support', 'Quilt') : path.join('.local', 'share', 'Quilt');
      expect(config.quilt.dataDir.endsWith(expected)).toBe(true);
      const session = catalog.login(`user-${platform}`);
      writeSession(config.quilt.dataDir, session);
      const ctx = await new DesktopAuthService(config, silentLogger).context();
      expect(ctx.aws.source).toBe(`quilt3 login session (${catalog.url})`);
      const out = await list(ctx);
      expect(out.data.objects.map((o) => o.key)).toEqual(['hello.txt']);
      // The registry was asked with the session's token, and S3 saw the registry's credentials.
      expect(catalog.requests.some((r) => r.path === '/api/auth/get_credentials' && r.bearer === session.access_token)).toBe(true);
      expect(s3.requests.at(-1)?.sessionToken).toBe(`catalog-session-user-${platform}`);
    });
  }
});

describe('token refresh', () => {
  it('refreshes a token that expires within 60 s and writes the rotated refresh token back', async () => {
    const config = configFor('linux');
    const session = catalog.login('refresher', 30);
    writeSession(config.quilt.dataDir, session);
    const before = catalog.requests.length;
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    await Promise.all([list(ctx), list(ctx), list(ctx)]);
    const calls = catalog.requests.slice(before);
    expect(calls.filter((r) => r.path === '/api/token')).toHaveLength(1);
    expect(new URLSearchParams(calls.find((r) => r.path === '/api/token')?.body).get('refresh_token')).toBe(session.refresh_token);
    expect(calls.filter((r) => r.path === '/api/auth/get_credentials')).toHaveLength(1);
    const file = path.join(config.quilt.dataDir, 'auth.json');
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved[catalog.url].refresh_token).not.toBe(session.refresh_token);
    expect(saved[catalog.url].expires_at).toBeGreaterThan(Date.now() / 1000 + 600);
    expect(saved['https://other-registry.example.com'].refresh_token).toBe('keep-me');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // The new credentials used the new access token.
    expect(calls.find((r) => r.path === '/api/auth/get_credentials')?.bearer).toBe(saved[catalog.url].access_token);
  });

  it('does not refresh a token that is still valid', async () => {
    const config = configFor('linux');
    writeSession(config.quilt.dataDir, catalog.login('fresh', 3600));
    const before = catalog.requests.length;
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    await list(ctx);
    await list(ctx);
    const calls = catalog.requests.slice(before);
    expect(calls.filter((r) => r.path === '/api/token')).toHaveLength(0);
    expect(calls.filter((r) => r.path === '/api/auth/get_credentials')).toHaveLength(1);
  });

  it('fetches AWS credentials again when they are about to expire', async () => {
    const config = configFor('linux');
    writeSession(config.quilt.dataDir, catalog.login('short-lived', 3600));
    const original = catalog.credentialsFor;
    catalog.credentialsFor = (user) => ({ ...original(user), Expiration: new Date(Date.now() + 120_000).toISOString() });
    try {
      const before = catalog.requests.length;
      const ctx = await new DesktopAuthService(config, silentLogger).context();
      await list(ctx);
      await list(ctx);
      expect(catalog.requests.slice(before).filter((r) => r.path === '/api/auth/get_credentials').length).toBeGreaterThanOrEqual(2);
    } finally {
      catalog.credentialsFor = original;
    }
  });

  it('says to log in again when the refresh token has expired', async () => {
    const config = configFor('linux');
    const session = catalog.login('gone', 10);
    catalog.expireRefreshToken(session.refresh_token);
    writeSession(config.quilt.dataDir, session);
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    await expect(list(ctx)).rejects.toMatchObject({
      code: 'not_logged_in',
      message: expect.stringContaining('has expired'),
      hint: expect.stringContaining('quilt3 login'),
    });
  });

  it('says the registry is unreachable', async () => {
    const config = configFor('linux');
    writeSession(config.quilt.dataDir, { user: 'x', refresh_token: 'r', access_token: 'a', expires_at: 1 }, 'http://127.0.0.1:9');
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    await expect(list(ctx)).rejects.toMatchObject({ code: 'unreachable', message: expect.stringContaining('Could not reach the Quilt registry') });
  });

  it('notices `quilt3 login` while running', async () => {
    const config = configFor('linux', { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' });
    const auth = new DesktopAuthService(config, silentLogger);
    const first = await auth.context();
    expect(first.aws.source).toContain('environment variables');
    expect(await auth.context()).toBe(first);
    writeSession(config.quilt.dataDir, catalog.login('late', 3600));
    const second = await auth.context();
    expect(second.aws.source).toContain('quilt3 login session');
  });
});

describe('a Claude-Desktop-style launch with a quilt3 session', () => {
  it('uses the session for S3 and reports it in auth_status', async () => {
    const env = isolatedEnv({
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9',
      AWS_REGION: 'us-east-1',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    });
    const session = catalog.login('desktop-user');
    writeSession(path.join(env.XDG_DATA_HOME ?? '', 'Quilt'), session);
    const h = await connectStdio(env);
    try {
      const r = await call(h.client, 'bucket_objects_list', { bucket: 'team-bucket' });
      expect(r.isError, r.text).toBe(false);
      expect(r.data.objects[0].key).toBe('hello.txt');
      expect(s3.requests.at(-1)?.sessionToken).toBe('catalog-session-desktop-user');
      const status = await call(h.client, 'auth_status');
      expect(status.data.aws.source).toBe(`quilt3 login session (${catalog.url})`);
      expect(status.data.aws.expires_at).toBeTruthy();
      expect(status.data.details.quilt3Registry).toBe(catalog.url);
      expect(JSON.stringify(status.raw)).not.toContain(session.access_token);
      expect(h.stderr()).not.toContain(session.access_token);
      expect(h.stderr()).not.toContain(session.refresh_token);
    } finally {
      await h.close();
    }
  });
});
