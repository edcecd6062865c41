/**
 * Desktop mode's quilt3 session against a local registry: where quilt3 keeps it on each OS,
 * token refresh with rotation written back, credentials, and the errors a person sees. The
 * registry rotates refresh tokens as the real one does (each works once), so a refresh sent twice,
 * or by two processes at once, fails here as it would there.
 */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesktopAuthService } from '../src/auth/desktop.js';
import { loadConfig, quilt3DataDir, type Config } from '../src/config.js';
import type { RuntimeContext } from '../src/context.js';
import { createLogger, silentLogger } from '../src/core/log.js';
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

const tokenCalls = (since: number) => catalog.requests.slice(since).filter((r) => r.path === '/api/token');
const credentialCalls = (since: number) => catalog.requests.slice(since).filter((r) => r.path === '/api/auth/get_credentials');
const savedTokens = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'auth.json'), 'utf8'))[catalog.url];

const list = (ctx: RuntimeContext) => bucketObjectsList.handler({ bucket: 'team-bucket', max_keys: 10 }, ctx, extras);

describe('where quilt3 keeps its session', () => {
  // What platformdirs itself answers for user_data_dir("Quilt", "QuiltData"). quilt3 requires
  // `platformdirs>=2` without an upper bound (quiltdata/quilt api/python/pyproject.toml), so a
  // current install resolves the newest release: these are platformdirs 4.12.2's rules
  // (tox-dev/platformdirs src/platformdirs/_xdg.py, unix.py, macos.py, windows.py), checked by
  // running that release's Unix and MacOS classes.
  it('follows platformdirs on Linux', () => {
    const linux = (env: Record<string, string>) => quilt3DataDir(env, { platform: 'linux', homedir: '/home/ann' });
    // unix.py _UnixDefaults.user_data_dir: ~/.local/share/$appname
    expect(linux({})).toBe('/home/ann/.local/share/Quilt');
    // _xdg.py XDGMixin.user_data_dir via _xdg_dir: $XDG_DATA_HOME stripped ...
    expect(linux({ XDG_DATA_HOME: '/data/xdg' })).toBe('/data/xdg/Quilt');
    expect(linux({ XDG_DATA_HOME: ' /data/xdg ' })).toBe('/data/xdg/Quilt');
    expect(linux({ XDG_DATA_HOME: '   ' })).toBe('/home/ann/.local/share/Quilt');
    // ... and used only when posixpath.isabs: relative and unexpanded ~ fall back to the default.
    expect(linux({ XDG_DATA_HOME: 'rel' })).toBe('/home/ann/.local/share/Quilt');
    expect(linux({ XDG_DATA_HOME: '~/data' })).toBe('/home/ann/.local/share/Quilt');
  });

  it('follows platformdirs on macOS', () => {
    const mac = (env: Record<string, string>) => quilt3DataDir(env, { platform: 'darwin', homedir: '/Users/ann' });
    // macos.py _MacOSDefaults.user_data_dir: ~/Library/Application Support/$appname
    expect(mac({})).toBe('/Users/ann/Library/Application Support/Quilt');
    // macos.py `class MacOS(XDGMixin, _MacOSDefaults)`: since 4.6.0 (changelog: "feat(macos): add
    // XDG env var support via shared mixin", PR 375) an absolute $XDG_DATA_HOME wins on macOS too.
    expect(mac({ XDG_DATA_HOME: '/x' })).toBe('/x/Quilt');
    expect(mac({ XDG_DATA_HOME: 'rel' })).toBe('/Users/ann/Library/Application Support/Quilt');
  });

  it('follows platformdirs on Windows', () => {
    const win = (env: Record<string, string>) => quilt3DataDir(env, { platform: 'win32', homedir: 'C:\\Users\\ann' });
    // windows.py Windows.user_data_dir: get_win_folder("CSIDL_LOCAL_APPDATA") + appauthor + appname
    // (the Local AppData known folder, which %LOCALAPPDATA% names; %USERPROFILE%\AppData\Local).
    expect(win({ LOCALAPPDATA: 'C:\\Users\\ann\\AppData\\Local' })).toBe('C:\\Users\\ann\\AppData\\Local\\QuiltData\\Quilt');
    expect(win({})).toBe('C:\\Users\\ann\\AppData\\Local\\QuiltData\\Quilt');
    // windows.py get_win_folder: WIN_PD_OVERRIDE_LOCAL_APPDATA first (since 4.8.0, PR 428), only
    // when _is_fully_qualified (a drive with a rooted path, or UNC).
    expect(win({ WIN_PD_OVERRIDE_LOCAL_APPDATA: 'D:\\pd', LOCALAPPDATA: 'C:\\L' })).toBe('D:\\pd\\QuiltData\\Quilt');
    expect(win({ WIN_PD_OVERRIDE_LOCAL_APPDATA: '\\\\srv\\share', LOCALAPPDATA: 'C:\\L' })).toBe('\\\\srv\\share\\QuiltData\\Quilt');
    expect(win({ WIN_PD_OVERRIDE_LOCAL_APPDATA: 'D:pd', LOCALAPPDATA: 'C:\\L' })).toBe('C:\\L\\QuiltData\\Quilt');
    expect(win({ WIN_PD_OVERRIDE_LOCAL_APPDATA: '\\pd', LOCALAPPDATA: 'C:\\L' })).toBe('C:\\L\\QuiltData\\Quilt');
    // XDG variables mean nothing to the Windows class.
    expect(win({ XDG_DATA_HOME: 'C:\\xdg', LOCALAPPDATA: 'C:\\L' })).toBe('C:\\L\\QuiltData\\Quilt');
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

describe('the local registry rotates refresh tokens like the real one', () => {
  it('honours a refresh token once; a reused one gets 401', async () => {
    const session = catalog.login('rotation');
    const refresh = () =>
      fetch(`${catalog.url}/api/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ refresh_token: session.refresh_token }).toString(),
      });
    const first = await refresh();
    expect(first.status).toBe(200);
    const rotated = (await first.json()) as Session;
    expect(rotated.refresh_token).not.toBe(session.refresh_token);
    expect(catalog.liveRefreshTokens()).toContain(rotated.refresh_token);
    expect((await refresh()).status).toBe(401);
  });

  it('can lose a reply after doing the work', async () => {
    const session = catalog.login('lost-reply');
    catalog.dropNext('/api/token');
    await expect(
      fetch(`${catalog.url}/api/token`, { method: 'POST', body: new URLSearchParams({ refresh_token: session.refresh_token }).toString() }),
    ).rejects.toThrow();
    expect(catalog.liveRefreshTokens()).not.toContain(session.refresh_token);
    expect(catalog.requests.at(-1)).toMatchObject({ path: '/api/token', dropped: true });
    expect(catalog.requests.at(-1)?.status).toBeUndefined();
  });
});

describe('a refresh is retried only when the registry cannot have acted on it', () => {
  it('does not send the refresh token again when the reply was lost after the registry rotated it', async () => {
    const config = configFor('linux');
    const session = catalog.login('reply-lost', 30);
    writeSession(config.quilt.dataDir, session);
    catalog.dropNext('/api/token', 'after');
    const before = catalog.requests.length;
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    // A retry would spend the token again and get 401: "your login has expired".
    await expect(list(ctx)).rejects.toMatchObject({
      code: 'unreachable',
      message: expect.stringContaining('did not answer the token refresh'),
      hint: expect.stringContaining('Retry'),
    });
    expect(tokenCalls(before)).toHaveLength(1);
    expect(tokenCalls(before)[0]?.dropped).toBe(true);
    expect(credentialCalls(before)).toHaveLength(0);
  });

  it('does not resend after a reset either, and the next call refreshes when nothing was done', async () => {
    const config = configFor('linux');
    const session = catalog.login('reset-before', 30);
    writeSession(config.quilt.dataDir, session);
    catalog.dropNext('/api/token', 'before');
    const before = catalog.requests.length;
    const auth = new DesktopAuthService(config, silentLogger);
    await expect(list(await auth.context())).rejects.toMatchObject({ code: 'unreachable' });
    expect(tokenCalls(before)).toHaveLength(1);
    // The client cannot tell the two resets apart; the next call tries again, from auth.json.
    const out = await list(await auth.context());
    expect(out.data.objects.map((o) => o.key)).toEqual(['hello.txt']);
    expect(tokenCalls(before).map((r) => new URLSearchParams(r.body).get('refresh_token'))).toEqual([
      session.refresh_token,
      session.refresh_token,
    ]);
    expect(savedTokens(config.quilt.dataDir).refresh_token).not.toBe(session.refresh_token);
  });

  it('retries 429 and 503, which say the request was not handled', async () => {
    const config = configFor('linux');
    const session = catalog.login('throttled', 30);
    writeSession(config.quilt.dataDir, session);
    catalog.failNext('/api/token', 429);
    catalog.failNext('/api/token', 503);
    const before = catalog.requests.length;
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    await list(ctx);
    expect(tokenCalls(before).map((r) => r.status)).toEqual([429, 503, 200]);
    expect(savedTokens(config.quilt.dataDir).refresh_token).not.toBe(session.refresh_token);
  });

  for (const status of [500, 502, 504]) {
    it(`does not retry HTTP ${status}, after which the registry may have rotated the token`, async () => {
      const config = configFor('linux');
      writeSession(config.quilt.dataDir, catalog.login(`fail-${status}`, 30));
      catalog.failNext('/api/token', status);
      const before = catalog.requests.length;
      const ctx = await new DesktopAuthService(config, silentLogger).context();
      await expect(list(ctx)).rejects.toMatchObject({
        code: 'upstream_error',
        message: expect.stringContaining(`HTTP ${status}`),
      });
      expect(tokenCalls(before)).toHaveLength(1);
    });
  }

  it('retries a refresh that never reached the registry (connection refused)', async () => {
    const port = await freePort();
    const config = configFor('linux');
    const session = catalog.login('refused-first', 30);
    writeSession(config.quilt.dataDir, session, `http://127.0.0.1:${port}`);
    // The registry comes up (a TCP proxy to the local one) once the first attempt was refused.
    let proxy: Promise<() => Promise<void>> | undefined;
    const logger = createLogger('debug', () => {});
    logger.addSink((_level, text) => {
      if (text.startsWith('Token refresh not sent; retrying') && text.includes('ECONNREFUSED')) proxy ??= startProxy(port);
    });
    const before = catalog.requests.length;
    try {
      const ctx = await new DesktopAuthService(config, logger).context();
      const out = await list(ctx);
      expect(out.data.objects.map((o) => o.key)).toEqual(['hello.txt']);
      expect(proxy).toBeDefined();
      expect(tokenCalls(before).map((r) => r.status)).toEqual([200]);
    } finally {
      await (await proxy)?.();
    }
  });
});

describe('another process refreshes the same auth.json', () => {
  it('two sessions refreshing at once both succeed: the refused one takes the token from auth.json', async () => {
    const config = configFor('linux');
    const session = catalog.login('two-refreshers', 30);
    writeSession(config.quilt.dataDir, session);
    const before = catalog.requests.length;
    const a = new DesktopAuthService(config, silentLogger);
    const b = new DesktopAuthService(config, silentLogger);
    const [ctxA, ctxB] = await Promise.all([a.context(), b.context()]);
    const [outA, outB] = await Promise.all([list(ctxA), list(ctxB)]);
    expect(outA.data.objects.map((o) => o.key)).toEqual(['hello.txt']);
    expect(outB.data.objects.map((o) => o.key)).toEqual(['hello.txt']);
    // Both sent the same refresh token; the registry honoured one and refused the other.
    expect(tokenCalls(before).map((r) => r.status).sort()).toEqual([200, 401]);
    const saved = savedTokens(config.quilt.dataDir);
    expect(catalog.liveRefreshTokens()).toContain(saved.refresh_token);
    expect(credentialCalls(before).map((r) => r.bearer)).toEqual([saved.access_token, saved.access_token]);
    // Neither treats the rotation as a new login.
    expect(await a.context()).toBe(ctxA);
    expect(await b.context()).toBe(ctxB);
  });

  it('two server processes refreshing at once both succeed', async () => {
    const env = isolatedEnv({
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9',
      AWS_REGION: 'us-east-1',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    });
    const dir = path.join(env.XDG_DATA_HOME ?? '', 'Quilt');
    const session = catalog.login('two-processes', 30);
    writeSession(dir, session);
    const [h1, h2] = await Promise.all([connectStdio(env), connectStdio(env)]);
    try {
      const before = catalog.requests.length;
      const results = await Promise.all([h1, h2].map((h) => call(h.client, 'bucket_objects_list', { bucket: 'team-bucket' })));
      for (const r of results) expect(r.isError, r.text).toBe(false);
      expect(tokenCalls(before).filter((r) => r.status === 200)).toHaveLength(1);
      expect(catalog.liveRefreshTokens()).toContain(savedTokens(dir).refresh_token);
    } finally {
      await Promise.all([h1.close(), h2.close()]);
    }
  });

  it('a refused refresh with nothing newer in auth.json still says the login has expired', async () => {
    const config = configFor('linux');
    const session = catalog.login('really-gone', 10);
    catalog.expireRefreshToken(session.refresh_token);
    writeSession(config.quilt.dataDir, session);
    const before = catalog.requests.length;
    const ctx = await new DesktopAuthService(config, silentLogger).context();
    await expect(list(ctx)).rejects.toMatchObject({ code: 'not_logged_in', message: expect.stringContaining('has expired') });
    expect(tokenCalls(before)).toHaveLength(1);
  });
});

describe('the server recognises its own write of auth.json', () => {
  it('does not rebuild the context or fetch credentials again after refreshing', async () => {
    const config = configFor('linux');
    writeSession(config.quilt.dataDir, catalog.login('own-write', 30));
    const auth = new DesktopAuthService(config, silentLogger);
    const before = catalog.requests.length;
    const ctx = await auth.context();
    await list(ctx);
    expect(tokenCalls(before)).toHaveLength(1);
    expect(credentialCalls(before)).toHaveLength(1);
    const next = await auth.context();
    expect(next).toBe(ctx);
    await list(next);
    expect(credentialCalls(before)).toHaveLength(1);
    expect(tokenCalls(before)).toHaveLength(1);
  });

  it('still notices a change by someone else after its own write', async () => {
    const config = configFor('linux');
    writeSession(config.quilt.dataDir, catalog.login('own-write-then-login', 30));
    const auth = new DesktopAuthService(config, silentLogger);
    const ctx = await auth.context();
    await list(ctx);
    const relogin = catalog.login('someone-else', 3600);
    writeSession(config.quilt.dataDir, relogin);
    const next = await auth.context();
    expect(next).not.toBe(ctx);
    const before = catalog.requests.length;
    await list(next);
    expect(credentialCalls(before).map((r) => r.bearer)).toEqual([relogin.access_token]);
  });
});

describe('a symlinked auth.json', () => {
  it('is written through to its target, and the link stays a link', async () => {
    const config = configFor('linux');
    const session = catalog.login('symlinked', 30);
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'dotfiles-'));
    writeSession(elsewhere, session);
    mkdirSync(config.quilt.dataDir, { recursive: true });
    writeFileSync(path.join(config.quilt.dataDir, 'config.yml'), readFileSync(path.join(elsewhere, 'config.yml')));
    const link = path.join(config.quilt.dataDir, 'auth.json');
    symlinkSync(path.join(elsewhere, 'auth.json'), link);
    const auth = new DesktopAuthService(config, silentLogger);
    const before = catalog.requests.length;
    const ctx = await auth.context();
    await list(ctx);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    const target = JSON.parse(readFileSync(path.join(elsewhere, 'auth.json'), 'utf8'));
    expect(target[catalog.url].refresh_token).not.toBe(session.refresh_token);
    expect(catalog.liveRefreshTokens()).toContain(target[catalog.url].refresh_token);
    expect(target['https://other-registry.example.com'].refresh_token).toBe('keep-me');
    expect(statSync(path.join(elsewhere, 'auth.json')).mode & 0o777).toBe(0o600);
    // No temporary file left behind in either directory.
    expect(readdirSync(elsewhere).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(config.quilt.dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // The write through the link is recognised as ours too.
    expect(await auth.context()).toBe(ctx);
    await list(ctx);
    expect(credentialCalls(before)).toHaveLength(1);
  });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A TCP proxy on `port` to the local registry; resolves to a function that stops it. */
async function startProxy(port: number): Promise<() => Promise<void>> {
  const upstream = Number(new URL(catalog.url).port);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(upstream, '127.0.0.1');
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        up.destroy();
      });
    }
    client.pipe(up).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
}

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
