/**
 * The person's quilt3 login session (desktop mode only): `auth.json` in quilt3's data directory.
 *
 * The access token is refreshed through the registry when it expires within 60 s; the registry
 * rotates the refresh token, so the new one is written back atomically (quilt3 itself would
 * otherwise be logged out). AWS credentials come from the registry's credential endpoint and are
 * fetched again 5 minutes before they expire.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { AwsCredentials } from '../aws/clients.js';
import { registryCredentialProvider } from '../catalog/credentials.js';
import { HttpStatusError, requestJson } from '../catalog/http.js';
import { ToolError } from '../errors.js';
import { lazy } from '../lazy.js';
import type { Logger } from '../log.js';

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
}

const REFRESH_MARGIN_S = 60;
const loadYaml = lazy(() => import('yaml'));

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
  };
}

/** A fingerprint of the session files, to notice `quilt3 login`/`logout` while running. */
export async function sessionFingerprint(dir: string): Promise<string> {
  const stamp = async (name: string) => {
    try {
      const st = await fs.stat(path.join(dir, name));
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return '-';
    }
  };
  return `${await stamp('auth.json')}|${await stamp('config.yml')}`;
}

export class Quilt3Session {
  private tokenRefresh: Promise<string> | undefined;
  private tokens: Quilt3Tokens | undefined;

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

  /** A valid access token, refreshed (and the rotated refresh token saved) when needed. */
  accessToken(): Promise<string> {
    return (this.tokenRefresh ??= this.loadAccessToken().finally(() => {
      this.tokenRefresh = undefined;
    }));
  }

  private async loadAccessToken(): Promise<string> {
    // The file is read once per session object: the desktop auth service makes a new session
    // whenever auth.json changes on disk.
    const tokens = (this.tokens ??= await this.readTokens());
    if (typeof tokens.access_token === 'string' && Number(tokens.expires_at) > this.now() / 1000 + REFRESH_MARGIN_S) {
      return tokens.access_token;
    }
    this.logger.info('Refreshing the quilt3 access token', { registry: this.registryUrl });
    let fresh: Quilt3Tokens;
    try {
      fresh = await requestJson<Quilt3Tokens>(`${this.registryUrl}/api/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ refresh_token: tokens.refresh_token }).toString(),
        service: 'Quilt registry',
      });
    } catch (err) {
      if (err instanceof HttpStatusError && err.status >= 400 && err.status < 500) {
        throw new ToolError(
          'not_logged_in',
          `Your Quilt login for ${this.registryUrl} has expired (the registry refused the refresh token).`,
          'Run `quilt3 login` to log in again (or `quilt3 logout` to use your AWS credentials instead).',
        );
      }
      throw err;
    }
    if (typeof fresh?.access_token !== 'string' || typeof fresh.refresh_token !== 'string') {
      throw new ToolError('upstream_error', `The Quilt registry ${this.registryUrl} answered the token refresh without tokens.`);
    }
    this.tokens = {
      refresh_token: fresh.refresh_token,
      access_token: fresh.access_token,
      expires_at: Number(fresh.expires_at),
    };
    await this.writeTokens(this.tokens);
    return fresh.access_token;
  }

  /** Writes the rotated tokens back: other registries' entries kept, atomic rename, owner-only. */
  private async writeTokens(tokens: Quilt3Tokens): Promise<void> {
    const all = ((await readJson(this.authFile)) as Record<string, Quilt3Tokens> | undefined) ?? {};
    all[this.registryKey] = tokens;
    const tmp = `${this.authFile}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.writeFile(tmp, JSON.stringify(all), { mode: 0o600 });
      await fs.rename(tmp, this.authFile);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      // The old refresh token is now spent: say so loudly rather than lose the session quietly.
      this.logger.error('Could not save the refreshed quilt3 token; run `quilt3 login` again', {
        file: this.authFile,
        error: (err as NodeJS.ErrnoException).code ?? 'error',
      });
    }
  }


  /** AWS credentials from the registry, cached until 5 minutes before they expire. */
  awsCredentials = (): Promise<AwsCredentials> => this.registryCredentials.provider();

  get credentialsExpiry(): Date | undefined {
    return this.registryCredentials.expiresAt();
  }
}
