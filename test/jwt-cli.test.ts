/**
 * `quilt-mcp jwt generate|inspect` as a user runs them: the built CLI as a child process. Strict
 * options (a typo is an error, never a token with a restriction silently missing), --help on every
 * command, flags that work, and no value of an argument echoed in an error.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATE_HELP, INSPECT_HELP, JWT_HELP } from '../src/cli/jwt-args.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startCatalog, type LocalCatalog, type Session } from './helpers/catalog.js';
import { graphqlHandler } from './helpers/catalog-graphql.js';
import { connectHttp, rawPost, signToken, startHttpServer, TEST_SECRET, TOOLS_CALL } from './helpers/http.js';
import { call, isolatedEnv, SERVER_ENTRY } from './helpers/mcp.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const exec = promisify(execFile);
const env = isolatedEnv({ MCP_JWT_SECRET: TEST_SECRET });

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [SERVER_ENTRY, 'jwt', ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('jwt generate', () => {
  it('signs the claims it is given, with --enhanced as a flag', async () => {
    const r = await cli('generate', '--sub', 'alice', '--buckets', 'data-a,data-b', '--permissions=s3:GetObject', '--enhanced', '--roles', 'Reader', '--tags', 'team=x');
    expect(r.code, r.stderr).toBe(0);
    const claims = decodeJwt(r.stdout.trim());
    expect(claims).toMatchObject({ sub: 'alice', buckets: ['data-a', 'data-b'], permissions: ['s3:GetObject'], token_type: 'enhanced', roles: ['Reader'], session_tags: { team: 'x' } });
    expect(r.stderr).toBe('');
  });

  it('refuses a typo instead of signing a token without the restriction', async () => {
    const r = await cli('generate', '--sub', 'alice', '--bucket', 'only-this-one');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Unknown option --bucket for "jwt generate" (did you mean --buckets?)');
  });

  it('refuses a missing value, and an option where a value should be', async () => {
    const end = await cli('generate', '--sub');
    expect(end.code).toBe(2);
    expect(end.stderr).toContain('--sub needs a value');
    const swallowed = await cli('generate', '--sub', '--buckets', 'a');
    expect(swallowed.code).toBe(2);
    expect(swallowed.stderr).toContain('--sub needs a value (the next argument is an option');
    const flag = await cli('generate', '--sub', 'a', '--enhanced=yes');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--enhanced is a flag and takes no value');
    // No --sub and no quilt3 login: the documented placeholder, said on stderr (jwt_helper's behaviour).
    const noSub = await cli('generate', '--buckets', 'data-a');
    expect(noSub.code, noSub.stderr).toBe(0);
    expect(decodeJwt(noSub.stdout.trim()).sub).toBe('mcp-test-user');
    expect(noSub.stderr).toContain('sub is "mcp-test-user". Pass --sub to choose it.');
  });

  it('never echoes the value of a wrong argument', async () => {
    for (const args of [['--secret-key=hunter2hunter2'], ['hunter2hunter2'], ['--sub', 'a', 'hunter2hunter2']]) {
      const r = await cli('generate', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toContain('hunter2');
    }
  });

  it('--help and -h print the usage and exit 0', async () => {
    for (const h of ['--help', '-h']) {
      const r = await cli('generate', h);
      expect(r).toMatchObject({ code: 0, stdout: GENERATE_HELP, stderr: '' });
    }
    // --help wins over anything else on the line, even a missing --sub.
    expect((await cli('generate', '--buckets', 'a', '--help')).code).toBe(0);
  });
});

describe('jwt inspect and jwt itself', () => {
  it('inspect shows normalized claims of a generated token and says it is valid here', async () => {
    const token = (await cli('generate', '--sub', 'bob', '--buckets', 'bob-data')).stdout.trim();
    const r = await cli('inspect', token);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { claims: { sub: string; buckets: string[] }; verification: string };
    expect(out.claims).toMatchObject({ sub: 'bob', buckets: ['bob-data'] });
    expect(out.verification).toBe('valid for this server configuration');
    expect(r.stdout).not.toContain(token.split('.')[2]);
  });

  it('inspect --help, a second token, and unknown commands', async () => {
    expect(await cli('inspect', '--help')).toMatchObject({ code: 0, stdout: INSPECT_HELP });
    const two = await cli('inspect', 'a.b.c', 'd.e.f');
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('takes one token, got 2 arguments');
    expect(await cli('--help')).toMatchObject({ code: 0, stdout: JWT_HELP });
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('A jwt command is needed');
    const unknown = await cli('mint');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown jwt command "mint"');
    expect((await cli('inspect', '--verbose', 'a.b.c')).stderr).toContain('Unknown option --verbose for "jwt inspect"');
  });
});

/** The CLI with a given environment and stdin; async, so in-process local servers keep answering. */
function run(args: string[], runEnv: Record<string, string> = env, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER_ENTRY, ...args], { env: runEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

const STACK = /\n\s+at /;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('jwt generate --scope, --level, jti and defaults from the configuration', () => {
  it('signs scope (space-separated, as the catalog does) and level, and a fresh jti in every token', async () => {
    const a = await cli('generate', '--sub', 'carol', '--enhanced', '--scope', 'read, write', '--level', 'write');
    expect(a.code, a.stderr).toBe(0);
    const claims = decodeJwt(a.stdout.trim());
    expect(claims).toMatchObject({ sub: 'carol', token_type: 'enhanced', scope: 'read write', level: 'write' });
    expect(claims.jti).toMatch(UUID);
    const b = decodeJwt((await cli('generate', '--sub', 'carol', '--enhanced')).stdout.trim());
    expect(b.jti).toMatch(UUID);
    expect(b.jti).not.toBe(claims.jti);
    expect(b).not.toHaveProperty('scope');
    expect(b).not.toHaveProperty('level');
    // The server reads them (shown by inspect) without granting anything by them.
    const shown = JSON.parse((await cli('inspect', a.stdout.trim())).stdout) as { claims: Record<string, unknown>; verification: string };
    expect(shown.claims).toMatchObject({ scope: 'read write', level: 'write', token_shape: 'enhanced' });
    expect(shown.verification).toBe('valid for this server configuration');
  });

  it('refuses an empty --scope, --level or --sub and a bad URL option', async () => {
    expect((await cli('generate', '--sub', 'c', '--scope=,')).stderr).toContain('--scope needs at least one scope');
    expect((await cli('generate', '--sub', 'c', '--level=')).stderr).toContain('--level needs a value');
    expect((await cli('generate', '--auto-extract', '--sub=')).stderr).toContain('--sub needs a value');
    const url = await cli('generate', '--sub', 'c', '--catalog-url', 'catalog.example.com');
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('--catalog-url must be an http(s) URL');
  });

  it('takes kid, iss and aud from the configuration, so the token passes this server; options win', async () => {
    const configured = isolatedEnv({ MCP_JWT_SECRET: TEST_SECRET, MCP_JWT_KID: 'k-2026', MCP_JWT_ISSUER: 'quilt-frontend', MCP_JWT_AUDIENCE: 'quilt-mcp-server,other' });
    const r = await run(['jwt', 'generate', '--sub', 'dan'], configured);
    expect(r.code, r.stderr).toBe(0);
    const token = r.stdout.trim();
    expect(decodeProtectedHeader(token).kid).toBe('k-2026');
    expect(decodeJwt(token)).toMatchObject({ iss: 'quilt-frontend', aud: 'quilt-mcp-server' });
    expect(JSON.parse((await run(['jwt', 'inspect', token], configured)).stdout).verification).toBe('valid for this server configuration');
    const own = (await run(['jwt', 'generate', '--sub', 'dan', '--kid', 'mine', '--audience', 'other'], configured)).stdout.trim();
    expect(decodeProtectedHeader(own).kid).toBe('mine');
    expect(decodeJwt(own).aud).toBe('other');
  });
});

describe('jwt generate --auto-extract (the quilt3 login on this machine)', () => {
  let catalog: LocalCatalog;
  let graphql: ReturnType<typeof graphqlHandler>;
  beforeAll(async () => {
    catalog = await startCatalog();
    graphql = graphqlHandler();
    catalog.graphql = graphql;
  });
  afterAll(async () => {
    await catalog?.close();
  });

  /** An isolated HOME whose quilt3 data directory holds config.yml and (with a session) auth.json. */
  function quilt3Home(session: Session | undefined, extra: Record<string, string> = {}): { env: Record<string, string>; dir: string } {
    const e = isolatedEnv({ MCP_JWT_SECRET: TEST_SECRET, ...extra });
    const dir = path.join(e.XDG_DATA_HOME ?? '', 'Quilt');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'config.yml'), `navigator_url: ${catalog.url}\nregistryUrl: ${catalog.url}\ntelemetry_disabled: true\n`);
    if (session) {
      const auth = { [catalog.url]: { refresh_token: session.refresh_token, access_token: session.access_token, expires_at: session.expires_at } };
      writeFileSync(path.join(dir, 'auth.json'), JSON.stringify(auth), { mode: 0o600 });
    }
    return { env: e, dir };
  }

  it('fills catalog_token, catalog_url, registry_url and sub from the login, and the token works at the catalog', async () => {
    const session = catalog.login('alice', 3600);
    const { env: e } = quilt3Home(session);
    const before = graphql.calls.length;
    const r = await run(['jwt', 'generate', '--auto-extract', '--buckets', 'quilt-sandbox'], e);
    expect(r.code, r.stderr).toBe(0);
    const token = r.stdout.trim();
    expect(decodeJwt(token)).toMatchObject({
      sub: 'alice',
      catalog_token: session.access_token,
      catalog_url: catalog.url,
      registry_url: catalog.url,
      buckets: ['quilt-sandbox'],
    });
    // sub is who the catalog says the login is (its `me` query, with the session's token).
    expect(graphql.calls.slice(before)).toEqual([expect.objectContaining({ operation: 'Me', user: 'alice' })]);
    expect(r.stderr).toContain(`from your quilt3 login: sub alice, catalog ${catalog.url}, registry ${catalog.url}`);
    expect(r.stderr).not.toContain(session.access_token);

    // One command, and a JWT-mode server accepts the token and reaches the catalog with it.
    const sts: LocalSts = await startSts();
    const server = await startHttpServer(
      isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, QUILT_CATALOG_URL: catalog.url, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: sts.endpoint }),
    );
    try {
      const client = await connectHttp(server.url, token);
      const status = await call(client, 'auth_status');
      expect(status.data.catalog).toMatchObject({ available: true, auth: 'catalog_token', identity: { name: 'alice' } });
      await client.close();
    } finally {
      await server.stop();
      await sts.close();
    }
  });

  it('refreshes an access token about to expire, and saves the rotated refresh token for quilt3', async () => {
    const session = catalog.login('bea', 30);
    const { env: e, dir } = quilt3Home(session);
    const r = await run(['jwt', 'generate', '--auto-extract'], e);
    expect(r.code, r.stderr).toBe(0);
    const claims = decodeJwt(r.stdout.trim());
    const saved = (JSON.parse(readFileSync(path.join(dir, 'auth.json'), 'utf8')) as Record<string, Session>)[catalog.url];
    expect(claims.sub).toBe('bea');
    expect(claims.catalog_token).not.toBe(session.access_token);
    expect(claims.catalog_token).toBe(saved?.access_token);
    expect(catalog.liveRefreshTokens()).toContain(saved?.refresh_token);
    expect(catalog.liveRefreshTokens()).not.toContain(session.refresh_token);
  });

  it('explicit options win over the extracted values, and the catalog is not asked for what is given', async () => {
    const session = catalog.login('cy', 3600);
    const { env: e } = quilt3Home(session);
    const before = graphql.calls.length;
    const r = await run(['jwt', 'generate', '--auto-extract', '--sub', 'someone-else', '--registry-url', 'https://registry.example.com/'], e);
    expect(r.code, r.stderr).toBe(0);
    expect(decodeJwt(r.stdout.trim())).toMatchObject({
      sub: 'someone-else',
      catalog_token: session.access_token,
      catalog_url: catalog.url,
      registry_url: 'https://registry.example.com/',
    });
    expect(graphql.calls.length).toBe(before);

    // With --catalog-token no session is needed at all: config.yml gives the URLs, `me` the user.
    const other = catalog.login('dee', 3600);
    const { env: noSession } = quilt3Home(undefined);
    const t = await run(['jwt', 'generate', '--auto-extract', '--catalog-token', other.access_token, '--catalog-url', 'https://catalog.example.com'], noSession);
    expect(t.code, t.stderr).toBe(0);
    expect(decodeJwt(t.stdout.trim())).toMatchObject({ sub: 'dee', catalog_token: other.access_token, catalog_url: 'https://catalog.example.com', registry_url: catalog.url });
  });

  it('without a quilt3 login: exit 1 and "run `quilt3 login`", no stack trace, nothing on stdout', async () => {
    const { env: e } = quilt3Home(undefined);
    const r = await run(['jwt', 'generate', '--auto-extract'], e);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^quilt-mcp jwt: No quilt3 login session found/);
    expect(r.stderr).toContain('Run `quilt3 login`');
    expect(r.stderr).not.toMatch(STACK);
    // A login for another registry than the configured one is not silently used.
    const { env: elsewhere, dir } = quilt3Home(undefined);
    writeFileSync(path.join(dir, 'auth.json'), JSON.stringify({ 'https://other-registry.example.com': { refresh_token: 'r', access_token: 'a', expires_at: 1 } }));
    const other = await run(['jwt', 'generate', '--auto-extract'], elsewhere);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`configured for the registry ${catalog.url}`);
    expect(other.stderr).toContain('quilt3 login');
  });

  it('an expired login (the registry refuses the refresh token) says to log in again and shows no token', async () => {
    const session = catalog.login('gone', 10);
    catalog.expireRefreshToken(session.refresh_token);
    const { env: e } = quilt3Home(session);
    const r = await run(['jwt', 'generate', '--auto-extract'], e);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('has expired');
    expect(r.stderr).toContain('quilt3 login');
    expect(r.stderr).not.toContain(session.refresh_token);
    expect(r.stderr).not.toContain(session.access_token);
    expect(r.stderr).not.toMatch(STACK);
  });

  it('a usage mistake is found before the login is touched (exit 2, no refresh spent)', async () => {
    const session = catalog.login('careful', 30);
    const { env: e } = quilt3Home(session, { MCP_JWT_SECRET: 'short' });
    const r = await run(['jwt', 'generate', '--auto-extract', '--secret', 'too-short'], e);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('at least 32 characters');
    expect(catalog.liveRefreshTokens()).toContain(session.refresh_token);
  });
});

describe('jwt inspect --token, --secret, --jwks-url and stdin', () => {
  const OTHER_SECRET = 'another-secret-0123456789-abcdefghijklmn';

  it('--token with --secret checks against that key instead of the configured one', async () => {
    const token = await signToken({ sub: 'erin', buckets: ['erin-data'] }, { secret: OTHER_SECRET });
    const configured = JSON.parse((await cli('inspect', '--token', token)).stdout) as { verification: string; claims: { sub: string } };
    expect(configured.claims.sub).toBe('erin');
    expect(configured.verification).toContain('INVALID: The token signature is invalid');
    const r = await cli('inspect', '--token', token, '--secret', OTHER_SECRET);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).verification).toBe("valid with the key from --secret and this server's other rules");
    expect(r.stdout).not.toContain(OTHER_SECRET);
    expect(r.stdout).not.toContain(token.split('.')[2]);
    // The other rules stay the server's: a required kid still applies.
    const kidEnv = isolatedEnv({ MCP_JWT_KID: 'required-kid' });
    const kid = JSON.parse((await run(['jwt', 'inspect', '--token', token, '--secret', OTHER_SECRET], kidEnv)).stdout) as { verification: string };
    expect(kid.verification).toContain('key id (kid)');
  });

  it('reads the token from stdin with "-", and refuses two tokens or two keys', async () => {
    const token = await signToken({ sub: 'fay' });
    const r = await run(['jwt', 'inspect', '-'], env, `${token}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ claims: { sub: 'fay' }, verification: 'valid for this server configuration' });
    const both = await cli('inspect', token, '--token', token);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('not both');
    expect(both.stderr).not.toContain(token);
    const keys = await cli('inspect', '--token', token, '--secret', OTHER_SECRET, '--jwks-url', 'http://127.0.0.1:9/jwks.json');
    expect(keys.code).toBe(2);
    expect(keys.stderr).toContain('Give --secret or --jwks-url, not both');
    expect(keys.stderr).not.toContain(OTHER_SECRET);
    const badUrl = await cli('inspect', '--token', token, '--jwks-url', 'jwks.json');
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('--jwks-url must be an http(s) URL');
    const none = await run(['jwt', 'inspect'], isolatedEnv());
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('a token is needed');
  });

  it('--jwks-url checks an RS256 token against a JWKS (a local one), whatever the configured secret', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const stranger = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const jwks = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    try {
      const exp = Math.floor(Date.now() / 1000) + 600;
      const good = await new SignJWT({ sub: 'gus', exp }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
      const forged = await new SignJWT({ sub: 'gus', exp }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(stranger.privateKey);
      const ok = await cli('inspect', '--token', good, '--jwks-url', url);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ claims: { sub: 'gus' }, verification: "valid with the key from --jwks-url and this server's other rules" });
      expect(JSON.parse((await cli('inspect', '--token', forged, '--jwks-url', url)).stdout).verification).toContain('INVALID: The token signature is invalid');
      // The configured HS256 secret alone cannot check an RS256 token.
      expect(JSON.parse((await cli('inspect', '--token', good)).stdout).verification).toContain('INVALID');
    } finally {
      jwks.close();
    }
  });
});

describe('configuration: secret and kid aliases, the secret file', () => {
  const LINUX = { platform: 'linux' as const, homedir: '/home/u' };
  const SECRET_A = 'a'.repeat(40);
  const SECRET_B = 'b'.repeat(40);
  const jwtServe = (env: Record<string, string>, readFile?: (file: string) => string) =>
    loadConfig(['--http'], { MCP_REQUIRE_JWT: 'true', ...env }, LINUX, readFile);

  it('MCP_ENHANCED_JWT_SECRET / MCP_ENHANCED_JWT_KID stand for MCP_JWT_SECRET / MCP_JWT_KID', () => {
    expect(jwtServe({ MCP_ENHANCED_JWT_SECRET: SECRET_A, MCP_ENHANCED_JWT_KID: 'frontend-enhanced' }).jwt).toMatchObject({ secret: SECRET_A, kid: 'frontend-enhanced' });
    // Both names with the same value: fine.
    expect(jwtServe({ MCP_JWT_SECRET: SECRET_A, MCP_ENHANCED_JWT_SECRET: SECRET_A, MCP_JWT_KID: 'k', MCP_ENHANCED_JWT_KID: 'k' }).jwt).toMatchObject({ secret: SECRET_A, kid: 'k' });
  });

  it('both names with different values is an error naming both, never the values', () => {
    const secret = () => jwtServe({ MCP_JWT_SECRET: SECRET_A, MCP_ENHANCED_JWT_SECRET: SECRET_B });
    expect(secret).toThrow(ConfigError);
    expect(secret).toThrow(/MCP_JWT_SECRET and MCP_ENHANCED_JWT_SECRET are both set, to different values/);
    try {
      secret();
    } catch (err) {
      expect((err as Error).message).not.toContain(SECRET_A);
      expect((err as Error).message).not.toContain(SECRET_B);
    }
    expect(() => jwtServe({ MCP_JWT_SECRET: SECRET_A, MCP_JWT_KID: 'one', MCP_ENHANCED_JWT_KID: 'two' })).toThrow(/MCP_JWT_KID and MCP_ENHANCED_JWT_KID are both set/);
    // A short alias value names the alias it came from.
    expect(() => jwtServe({ MCP_ENHANCED_JWT_SECRET: 'short' })).toThrow(/^MCP_ENHANCED_JWT_SECRET is invalid: must be at least 32 characters \(got 5 characters; the value is not shown\)/);
  });

  it('MCP_JWT_SECRET_FILE: the file content without its trailing newline', () => {
    const files: Record<string, string> = { '/run/secrets/jwt': `${SECRET_A}\n`, '/run/secrets/crlf': `${SECRET_B}\r\n` };
    const readFile = (file: string) => {
      const content = files[file];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
      return content;
    };
    expect(jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/jwt' }, readFile).jwt.secret).toBe(SECRET_A);
    expect(jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/crlf' }, readFile).jwt.secret).toBe(SECRET_B);
    expect(() => jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/missing' }, readFile)).toThrow(
      'MCP_JWT_SECRET_FILE names /run/secrets/missing, which cannot be read (it does not exist).',
    );
    expect(() => jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/jwt', MCP_JWT_SECRET: SECRET_A }, readFile)).toThrow(
      'MCP_JWT_SECRET_FILE and MCP_JWT_SECRET are both set',
    );
    expect(() => jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/jwt', MCP_ENHANCED_JWT_SECRET: SECRET_A }, readFile)).toThrow(
      'MCP_JWT_SECRET_FILE and MCP_ENHANCED_JWT_SECRET are both set',
    );
    files['/run/secrets/short'] = 'hunter2hunter2\n';
    const short = () => jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/short' }, readFile);
    expect(short).toThrow('MCP_JWT_SECRET_FILE is invalid: the secret in /run/secrets/short must be at least 32 characters (got 14 characters; the value is not shown).');
    expect(() => jwtServe({ MCP_JWT_SECRET_FILE: '/run/secrets/jwt', MCP_JWT_JWKS_URL: 'https://idp.example.com/jwks.json', MCP_JWT_AUDIENCE: 'a' }, readFile)).toThrow(
      'Set only one of MCP_JWT_SECRET_FILE and MCP_JWT_JWKS_URL',
    );
  });

  it('the server refuses to start with code 2 on an alias conflict or an unreadable secret file', async () => {
    const conflict = await run([], isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_TRANSPORT: 'http', MCP_JWT_SECRET: SECRET_A, MCP_ENHANCED_JWT_SECRET: SECRET_B }));
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toContain('MCP_JWT_SECRET and MCP_ENHANCED_JWT_SECRET are both set');
    expect(conflict.stderr).not.toContain(SECRET_A);
    expect(conflict.stderr).not.toContain(SECRET_B);
    expect(conflict.stderr).not.toMatch(STACK);
    const home = isolatedEnv();
    const missing = path.join(home.HOME ?? '', 'no-such-secret');
    const unreadable = await run([], isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_TRANSPORT: 'http', MCP_JWT_SECRET_FILE: missing }));
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toContain(`MCP_JWT_SECRET_FILE names ${missing}, which cannot be read`);
    const both = await run([], isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_TRANSPORT: 'http', MCP_JWT_SECRET_FILE: missing, MCP_JWT_SECRET: SECRET_A }));
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('MCP_JWT_SECRET_FILE and MCP_JWT_SECRET are both set');
  });

  it('a token signed with the secret file\'s secret is accepted over HTTP in JWT mode; another is refused', async () => {
    const home = isolatedEnv();
    const file = path.join(home.HOME ?? '', 'jwt-secret');
    writeFileSync(file, `${TEST_SECRET}\n`, { mode: 0o400 });
    const fileEnv = isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET_FILE: file });
    const server = await startHttpServer(fileEnv);
    try {
      const token = await signToken({ sub: 'file-user', buckets: ['file-data'] });
      const client = await connectHttp(server.url, token);
      const diag = await call(client, 'jwt_diagnostics');
      expect(diag.isError, diag.text).toBe(false);
      expect(diag.data.claims).toMatchObject({ sub: 'file-user' });
      await client.close();
      // The newline is not part of the secret: a token signed with it is refused.
      const withNewline = await signToken({ sub: 'x' }, { secret: `${TEST_SECRET}\n` });
      expect((await rawPost(server.url, TOOLS_CALL('jwt_diagnostics'), { authorization: `Bearer ${withNewline}` })).status).toBe(401);
      expect(server.stderr()).not.toContain(TEST_SECRET);
    } finally {
      await server.stop();
    }
    // jwt generate signs with the same file's secret.
    const generated = await run(['jwt', 'generate', '--sub', 'h'], isolatedEnv({ MCP_JWT_SECRET_FILE: file }));
    expect(generated.code, generated.stderr).toBe(0);
    expect(JSON.parse((await cli('inspect', generated.stdout.trim())).stdout).verification).toBe('valid for this server configuration');
  });
});
