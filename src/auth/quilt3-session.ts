/**
 * The person's quilt3 login session (desktop mode only): `auth.json` in quilt3's data directory.
 *
 * The access token is refreshed through the registry when it expires within 60 s; the registry
 * rotates the refresh token (each works once), so the new one is written back atomically (quilt3
 * itself would otherwise be logged out), through a symlinked auth.json to its target. Other
 * processes (quilt3, another quilt-mcp) refresh the same file, so it is re-read before refreshing
 * and again when the registry refuses the token. A refresh is retried only when the registry
 * cannot have acted on it (see Quilt3Session.refresh). AWS credentials come from the registry's
 * credential endpoint and are fetched again 5 minutes before they expire.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { AwsCredentials } from '../aws/clients.js';
import { registryCredentialProvider } from '../catalog/credentials.js';
import { ToolError } from '../core/errors.js';
import { lazy } from '../core/lazy.js';
import type { Logger } from '../core/log.js';

export interface Quilt3Tokens {
  refresh_token: string;
  access_token: string;
  expires_at: number;
}

export interface Quilt3Files {
  dir: string;
  /** `navigator_url` from config.yml. */
  catalogUrl: string | undefined;
  /** `registryUrl` from config.yml. */
  registryUrl: string | undefined;
  /** `region` from config.yml (the catalog's region, after `quilt3 config`). */
  region: string | undefined;
  /** Registries with a token in auth.json. */
  loggedIn: string[];
  /** `default_local_registry` and `default_install_location` (URLs, usually file:///...). */
  localRegistry: string | undefined;
  installLocation: string | undefined;
}

const REFRESH_MARGIN_S = 60;
/** Attempts at one refresh, counting only those the registry cannot have acted on. */
const REFRESH_ATTEMPTS = 3;
const REFRESH_TIMEOUT_MS = 15_000;
/** A Retry-After longer than this is reported rather than waited for inside a tool call. */
const MAX_RETRY_AFTER_MS = 2_000;
/**
 * After a refused refresh, how long auth.json is watched for the token another process got with
 * the same refresh token: it may have its reply but not have written the file yet.
 */
const REREAD_STEPS = 10;
const REREAD_STEP_MS = 200;
const loadYaml = lazy(() => import('yaml'));
const loadHttp = lazy(() => import('node:http'));
const loadHttps = lazy(() => import('node:https'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const trimUrl = (u: unknown) => (typeof u === 'string' && u.trim() ? u.trim().replace(/\/+$/, '') : undefined);

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ToolError(
      'not_logged_in',
      `The quilt3 session file ${file} cannot be read (${(err as Error).name === 'SyntaxError' ? 'not valid JSON' : (err as NodeJS.ErrnoException).code ?? 'error'}).`,
      'Run `quilt3 login` again to rewrite it.',
    );
  }
}

/** Reads what quilt3 keeps in its data directory (no network). */
export async function readQuilt3Files(dir: string): Promise<Quilt3Files> {
  let yamlConfig: Record<string, unknown> = {};
  try {
    const text = await fs.readFile(path.join(dir, 'config.yml'), 'utf8');
    const { parse } = await loadYaml();
    const parsed: unknown = parse(text);
    if (parsed && typeof parsed === 'object') yamlConfig = parsed as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ToolError('invalid_input', `quilt3's config.yml in ${dir} cannot be read.`, 'Run `quilt3 config <catalog URL>` to rewrite it.');
    }
  }
  const auth = await readJson(path.join(dir, 'auth.json'));
  const loggedIn =
    auth && typeof auth === 'object'
      ? Object.entries(auth as Record<string, unknown>)
          .filter(([, v]) => v && typeof v === 'object' && typeof (v as Quilt3Tokens).refresh_token === 'string')
          .map(([k]) => k)
      : [];
  return {
    dir,
    catalogUrl: trimUrl(yamlConfig.navigator_url),
    registryUrl: trimUrl(yamlConfig.registryUrl),
    region: typeof yamlConfig.region === 'string' ? yamlConfig.region : undefined,
    loggedIn,
    localRegistry: trimUrl(yamlConfig.default_local_registry),
    installLocation: trimUrl(yamlConfig.default_install_location),
  };
}

/** Identifies one version of a file: a rename gives a new inode, a rewrite a new mtime or size. */
export function fileStamp(st: Stats): string {
  return `${st.ino}:${st.mtimeMs}:${st.size}`;
}

function stampOf(file: string): string {
  try {
    // Synchronous: two local stats take ~10 µs, while fs/promises costs ~0.1 ms a call (thread
    // pool round trips, and an Error with a stack for a missing file) on every tool call.
    const st = statSync(file, { throwIfNoEntry: false });
    return st ? fileStamp(st) : '-';
  } catch {
    return '-';
  }
}

export interface SessionFingerprint {
  auth: string;
  config: string;
}

/** A fingerprint of the session files, to notice `quilt3 login`/`logout` while running. */
export function sessionFingerprint(dir: string): SessionFingerprint {
  return { auth: stampOf(path.join(dir, 'auth.json')), config: stampOf(path.join(dir, 'config.yml')) };
}

export const sameFingerprint = (a: SessionFingerprint, b: SessionFingerprint): boolean => a.auth === b.auth && a.config === b.config;

/** A refresh POST that got no reply; `sent` says whether the registry may have received it. */
class RefreshTransportError extends Error {
  override name = 'RefreshTransportError';
  constructor(
    readonly sent: boolean,
    readonly code: string,
  ) {
    super(code);
  }
}

function networkCode(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return 'network error';
}

interface RefreshReply {
  status: number;
  retryAfter: string | undefined;
  text: string;
}

const MAX_REPLY_BYTES = 1 << 20;

/**
 * POSTs the refresh token on a connection of its own (agent: false), so that a failure before the
 * connection is established is known to have sent nothing. A pooled keep-alive connection that the
 * server has just closed would fail the same way as a reply lost after the work was done.
 */
async function postRefresh(url: URL, refreshToken: string): Promise<RefreshReply> {
  const secure = url.protocol === 'https:';
  const { request } = secure ? await loadHttps() : await loadHttp();
  const body = new URLSearchParams({ refresh_token: refreshToken }).toString();
  return new Promise<RefreshReply>((resolve, reject) => {
    let sent = false;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const fail = (code: string) => settle(() => reject(new RefreshTransportError(sent, code)));
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: {
        accept: 'application/json',
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
      },
    });
    const timer = setTimeout(() => {
      fail('timeout');
      req.destroy();
    }, REFRESH_TIMEOUT_MS);
    req.on('socket', (socket) => {
      if (!secure && !socket.connecting) sent = true;
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        sent = true;
      });
    });
    req.on('error', (err) => fail(networkCode(err)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REPLY_BYTES) {
          fail('reply too large');
          req.destroy();
        } else chunks.push(chunk);
      });
      res.on('error', (err) => fail(networkCode(err)));
      res.on('close', () => {
        if (!res.complete) fail('ECONNRESET');
      });
      res.on('end', () =>
        settle(() =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        ),
      );
    });
    req.end(body);
  });
}

/** Retry-After in milliseconds (delta-seconds or an HTTP date), undefined when absent or unreadable. */
function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const validAccess = (t: Quilt3Tokens, nowMs: number) =>
  typeof t.access_token === 'string' && Number(t.expires_at) > nowMs / 1000 + REFRESH_MARGIN_S;

export class Quilt3Session {
  private tokenRefresh: Promise<string> | undefined;
  private tokens: Quilt3Tokens | undefined;
  /** The version of auth.json whose tokens this session holds because it wrote or adopted them. */
  private heldStamp: string | undefined;

  constructor(
    readonly dir: string,
    /** auth.json key, exactly as quilt3 wrote it. */
    readonly registryKey: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.registryCredentials = registryCredentialProvider(
      async () => this.registryUrl,
      () => this.accessToken(),
      'Run `quilt3 login` to log in again.',
      now,
    );
  }

  private readonly registryCredentials: ReturnType<typeof registryCredentialProvider>;

  get registryUrl(): string {
    return this.registryKey.replace(/\/+$/, '');
  }

  private get authFile() {
    return path.join(this.dir, 'auth.json');
  }

  /**
   * Whether this auth.json version is one this session wrote (a token rotation) or already
   * adopted, so that the desktop service need not treat it as a new login.
   */
  holdsAuthVersion(stamp: string): boolean {
    return this.heldStamp !== undefined && stamp === this.heldStamp;
  }

  private async readTokens(): Promise<Quilt3Tokens> {
    const all = (await readJson(this.authFile)) as Record<string, Quilt3Tokens> | undefined;
    const tokens = all?.[this.registryKey];
    if (!tokens || typeof tokens.refresh_token !== 'string') {
      throw new ToolError(
        'not_logged_in',
        `Not logged in to the Quilt registry ${this.registryUrl} any more (auth.json has no token for it).`,
        'Run `quilt3 login`.',
      );
    }
    return tokens;
  }

  /**
   * auth.json's tokens when another process has replaced `known` there (quilt3, another
   * quilt-mcp); undefined when the file still holds them.
   */
  private async newerOnDisk(known: Quilt3Tokens): Promise<Quilt3Tokens | undefined> {
    // Stamp before reading: if the file changes in between, the stamp is older than what was
    // read, and the desktop service rebuilds once too often rather than missing a change.
    const stamp = await stampOf(this.authFile);
    const onDisk = await this.readTokens();
    if (onDisk.refresh_token === known.refresh_token) return undefined;
    this.tokens = onDisk;
    this.heldStamp = stamp;
    return onDisk;
  }

  /** A valid access token, refreshed (and the rotated refresh token saved) when needed. */
  accessToken(): Promise<string> {
    return (this.tokenRefresh ??= this.loadAccessToken().finally(() => {
      this.tokenRefresh = undefined;
    }));
  }

  private async loadAccessToken(): Promise<string> {
    // The file is read once per session object (the desktop service makes a new session when
    // auth.json changes on disk), and again before refreshing.
    let tokens = (this.tokens ??= await this.readTokens());
    if (validAccess(tokens, this.now())) return tokens.access_token;
    tokens = (await this.newerOnDisk(tokens)) ?? tokens;
    if (validAccess(tokens, this.now())) return tokens.access_token;
    // Bounded: each round needs another process to have written a token we had not seen.
    for (let round = 0; round < 3; round++) {
      this.logger.info('Refreshing the quilt3 access token', { registry: this.registryUrl });
      const fresh = await this.refresh(tokens.refresh_token);
      if (fresh) {
        this.tokens = fresh;
        await this.writeTokens(fresh);
        return fresh.access_token;
      }
      // Refused. Two refreshers with one refresh token (two quilt-mcp, or quilt3 and us): the
      // registry honours the first, and the other must take its token from auth.json, which the
      // winner may write a moment after its reply.
      const newer = await this.waitForNewer(tokens);
      if (!newer) break;
      this.logger.info('Using the quilt3 token another process refreshed', { registry: this.registryUrl });
      tokens = newer;
      if (validAccess(tokens, this.now())) return tokens.access_token;
    }
    throw new ToolError(
      'not_logged_in',
      `Your Quilt login for ${this.registryUrl} has expired (the registry refused the refresh token).`,
      'Run `quilt3 login` to log in again (or `quilt3 logout` to use your AWS credentials instead).',
    );
  }

  private async waitForNewer(known: Quilt3Tokens): Promise<Quilt3Tokens | undefined> {
    for (let step = 0; ; step++) {
      const newer = await this.newerOnDisk(known);
      if (newer || step >= REREAD_STEPS) return newer;
      await sleep(REREAD_STEP_MS);
    }
  }

  /**
   * One token refresh: new tokens, or undefined when the registry refused the refresh token.
   *
   * The registry spends a refresh token as it issues the next one, so sending it twice when the
   * first request was acted on gets 401 and logs the person out. Retried are only failures where
   * the registry cannot have acted: no connection was ever made (refused, DNS, unreachable,
   * connect timeout: nothing was sent), 429 (a rate limiter refused it, RFC 6585) and 503 (the
   * service did not handle it: a load balancer without a healthy target, a limiter). Never
   * retried: a connection reset or timeout after the request went out, and other 5xx (500 may
   * come after the new token was stored, 502/504 from a proxy whose upstream may have done the
   * work); those say so, and the next tool call tries again from auth.json.
   */
  private async refresh(refreshToken: string): Promise<Quilt3Tokens | undefined> {
    const url = new URL(`${this.registryUrl}/api/token`);
    for (let attempt = 1; ; attempt++) {
      let reply: RefreshReply;
      try {
        reply = await postRefresh(url, refreshToken);
      } catch (err) {
        if (!(err instanceof RefreshTransportError)) throw err;
        if (!err.sent && attempt < REFRESH_ATTEMPTS) {
          this.logger.info('Token refresh not sent; retrying', { registry: this.registryUrl, reason: err.code, attempt });
          await sleep(150 * 4 ** (attempt - 1) * (0.75 + Math.random() / 2));
          continue;
        }
        if (!err.sent) {
          throw new ToolError(
            'unreachable',
            `Could not reach the Quilt registry at ${url.origin} (${err.code}).`,
            'Check the catalog URL (QUILT_CATALOG_URL or `quilt3 config`), the network and any proxy, then retry.',
          );
        }
        throw new ToolError(
          err.code === 'timeout' ? 'timeout' : 'unreachable',
          `The Quilt registry at ${url.origin} did not answer the token refresh (${err.code}). It may have used up the refresh token, so it was not sent again.`,
          'Retry in a moment; if it then says your login has expired, run `quilt3 login`.',
        );
      }
      const { status } = reply;
      if (status === 429 || status === 503) {
        const wait = retryAfterMs(reply.retryAfter, Date.now()) ?? 150 * 4 ** (attempt - 1) * (0.75 + Math.random() / 2);
        if (attempt < REFRESH_ATTEMPTS && wait <= MAX_RETRY_AFTER_MS) {
          this.logger.info('Token refresh declined by the registry; retrying', { registry: this.registryUrl, status, attempt });
          await sleep(wait);
          continue;
        }
        throw new ToolError(
          status === 429 ? 'throttled' : 'upstream_error',
          `The Quilt registry ${this.registryUrl} is ${status === 429 ? 'limiting requests' : 'unavailable'} (HTTP ${status} to the token refresh).`,
          'Retry in a minute.',
        );
      }
      if (status >= 500 || status < 200 || (status >= 300 && status < 400)) {
        throw new ToolError(
          'upstream_error',
          `The Quilt registry ${this.registryUrl} failed the token refresh (HTTP ${status}). It may have used up the refresh token, so it was not sent again.`,
          'Retry in a moment; if it then says your login has expired, run `quilt3 login`.',
        );
      }
      if (status >= 400) return undefined;
      let fresh: Partial<Quilt3Tokens> | undefined;
      try {
        fresh = JSON.parse(reply.text) as Partial<Quilt3Tokens>;
      } catch {
        fresh = undefined;
      }
      if (typeof fresh?.access_token !== 'string' || typeof fresh.refresh_token !== 'string') {
        throw new ToolError('upstream_error', `The Quilt registry ${this.registryUrl} answered the token refresh without tokens.`);
      }
      return { refresh_token: fresh.refresh_token, access_token: fresh.access_token, expires_at: Number(fresh.expires_at) };
    }
  }

  /**
   * Writes the rotated tokens back: other registries' entries kept, atomic rename, owner-only. A
   * symlinked auth.json (dotfiles kept elsewhere) is written through to its target: renaming over
   * the link would replace it and leave the target with the spent token.
   */
  private async writeTokens(tokens: Quilt3Tokens): Promise<void> {
    let target = this.authFile;
    try {
      target = await fs.realpath(this.authFile);
    } catch {
      // gone (quilt3 logout meanwhile): write it where quilt3 looks
    }
    const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const all = ((await readJson(target)) as Record<string, Quilt3Tokens> | undefined) ?? {};
      all[this.registryKey] = tokens;
      const file = await fs.open(tmp, 'wx', 0o600);
      let written: Stats;
      try {
        await file.writeFile(JSON.stringify(all));
        await file.sync();
        written = await file.stat();
      } finally {
        await file.close();
      }
      await fs.rename(tmp, target);
      // A rename keeps inode and mtime: this is how auth.json (or its target) now stats.
      this.heldStamp = fileStamp(written);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      // The old refresh token is now spent: say so loudly rather than lose the session quietly.
      this.logger.error('Could not save the refreshed quilt3 token; run `quilt3 login` again', {
        file: target,
        error: (err as NodeJS.ErrnoException).code ?? 'error',
      });
    }
  }

  /** AWS credentials from the registry, cached until 5 minutes before they expire. */
  awsCredentials = (options?: { forceRefresh?: boolean }): Promise<AwsCredentials> => this.registryCredentials.provider(options);

  get credentialsExpiry(): Date | undefined {
    return this.registryCredentials.expiresAt();
  }
}
