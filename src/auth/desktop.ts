/**
 * Desktop mode: the person at the machine. AWS credentials come from their quilt3 login session
 * when there is one for the configured registry, else from the default AWS chain (env, profile,
 * SSO, instance role). The session files are re-checked on every call (a stat), so `quilt3 login`
 * or `logout` while the server runs takes effect without a restart.
 */
import os from 'node:os';
import { AwsClients, type AwsCredentials, type CredentialProvider } from '../aws/clients.js';
import type { Config } from '../config.js';
import { CatalogClient } from '../catalog/client.js';
import { catalogConfig } from '../catalog/resolve.js';
import type { AwsAccess, CatalogAccess, RuntimeContext } from '../context.js';
import { CursorKey, cursorsFor } from '../core/cursors.js';
import { lazy } from '../core/lazy.js';
import { ToolError, toToolError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import {
  Quilt3Session,
  readQuilt3Files,
  sameFingerprint,
  sessionFingerprint,
  type Quilt3Files,
  type SessionFingerprint,
} from './quilt3-session.js';
import type { AuthService } from './service.js';
import { registryCredentialProvider } from '../catalog/credentials.js';
import { apiKeyRefusedHint } from './api-keys.js';
import type { LocalAccess } from '../local/access.js';
import { parseLocalPath } from '../local/paths.js';
import { ClientRoots, LocalRoots, type Root } from '../local/roots.js';

const FALLBACK_REGION = 'us-east-1';

/** Which auth.json entry is "the configured registry". */
export function pickRegistry(files: Quilt3Files): string | undefined {
  const norm = (u: string) => u.replace(/\/+$/, '');
  if (files.registryUrl) {
    return files.loggedIn.find((k) => norm(k) === files.registryUrl);
  }
  // No `quilt3 config` yet: a single login is unambiguous.
  return files.loggedIn.length === 1 ? files.loggedIn[0] : undefined;
}

function describeChain(config: Config): string {
  if (config.aws.envCredentials) return 'AWS credentials from environment variables (AWS_ACCESS_KEY_ID)';
  if (config.aws.profile) return `AWS profile "${config.aws.profile}" (default AWS credential chain)`;
  return 'default AWS credential chain (default profile, SSO, container or instance role)';
}

/** Remembers the expiry of the last credentials a provider returned, for auth_status. */
function tracked(provider: CredentialProvider): { provider: CredentialProvider; expiresAt: () => Date | undefined } {
  let last: AwsCredentials | undefined;
  return {
    provider: async (options) => (last = await provider(options)),
    expiresAt: () => last?.expiration,
  };
}

interface CurrentContext {
  fingerprint: SessionFingerprint;
  ctx: Promise<RuntimeContext>;
  /** The quilt3 session the context uses, once built. */
  session?: Quilt3Session;
}

export class DesktopAuthService implements AuthService {
  readonly mode = 'desktop' as const;
  private current: CurrentContext | undefined;
  private defaultChain: Promise<CredentialProvider> | undefined;
  private readonly cursorKey: CursorKey;
  /** The client's MCP roots (stdio: transports/stdio.ts asks the client and keeps them current). */
  readonly clientRoots: ClientRoots;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.cursorKey = new CursorKey(config.cursorSecret);
    this.clientRoots = new ClientRoots(config.local.platform);
  }

  /**
   * quilt3's local registry (`default_local_registry`, default `<data dir>/packages`) and install
   * location (`default_install_location`, else the local registry), both granted as roots, plus the
   * configured roots and the client's.
   */
  private localAccess(files: Quilt3Files | undefined): LocalAccess {
    const { platform } = this.config.local;
    const folder = (url: string | undefined, what: string): string | undefined => {
      if (!url) return undefined;
      try {
        return parseLocalPath(url, platform);
      } catch (err) {
        this.logger.warning(`quilt3's ${what} is not a local folder; using the default`, { value: url, reason: (err as Error).message });
        return undefined;
      }
    };
    const registry = folder(files?.localRegistry, 'default_local_registry') ?? parseLocalPath(`${this.config.quilt.dataDir}/packages`, platform);
    const installLocation = folder(files?.installLocation, 'default_install_location') ?? registry;
    const fixed: Root[] = [
      ...this.config.local.roots,
      { path: registry, source: 'quilt3 local registry' },
      ...(installLocation !== registry ? [{ path: installLocation, source: 'quilt3 install location' }] : []),
    ];
    return { registry, installLocation, roots: new LocalRoots(fixed, this.clientRoots, platform) };
  }

  async context(): Promise<RuntimeContext> {
    const fingerprint = sessionFingerprint(this.config.quilt.dataDir);
    const current = this.current;
    if (current && !sameFingerprint(current.fingerprint, fingerprint)) {
      // The session's own write of rotated tokens (or a rotation by another process that it has
      // already taken up) is the same login: keep the context and its AWS credentials.
      if (fingerprint.config === current.fingerprint.config && current.session?.holdsAuthVersion(fingerprint.auth)) {
        current.fingerprint = fingerprint;
      }
    }
    if (!current || !sameFingerprint(current.fingerprint, fingerprint)) {
      if (current) this.logger.info('quilt3 session files changed; reloading credentials');
      // build() reports its session after its first await, when `next` exists.
      const next: CurrentContext = { fingerprint, ctx: this.build((s) => (next.session = s)) };
      this.current = next;
      return next.ctx;
    }
    return current.ctx;
  }

  private chain(): CredentialProvider {
    return async (options) => {
      this.defaultChain ??= import('@aws-sdk/credential-provider-node').then(({ defaultProvider }) =>
        defaultProvider(this.config.aws.profile ? { profile: this.config.aws.profile } : {}),
      );
      const profile = this.config.aws.profile;
      try {
        return await (await this.defaultChain)(options);
      } catch (err) {
        // The SDK's message is generic; the user needs to hear which profile failed.
        if (!profile || !(err instanceof Error) || err.name !== 'CredentialsProviderError') throw err;
        throw new ToolError(
          'no_credentials',
          `AWS profile "${profile}" (from AWS_PROFILE) gave no credentials: it is not in ~/.aws/config or ~/.aws/credentials, has no keys, or its SSO login expired.`,
          `Check the name with \`aws configure list-profiles\`, run \`aws sso login --profile ${profile}\` for an SSO profile, or remove AWS_PROFILE to use quilt3 login or the default profile.`,
        );
      }
    };
  }

  /**
   * The catalog is QUILT_CATALOG_URL, else quilt3's navigator_url. Calls carry the quilt3 session's
   * token when that session belongs to this catalog, else go anonymously.
   */
  private catalogAccess(files: Quilt3Files | undefined, session: Quilt3Session | undefined): CatalogAccess {
    const url = this.config.quilt.catalogUrl ?? files?.catalogUrl;
    const apiKey = this.config.quilt.apiKey;
    if (!url) {
      return {
        url: undefined,
        auth: 'none',
        client: () => {
          throw new ToolError(
            'no_catalog',
            'No Quilt catalog is configured.',
            'Set QUILT_CATALOG_URL (e.g. in the Claude Desktop config entry), or run `quilt3 config <catalog URL>` and `quilt3 login`.',
          );
        },
      };
    }
    const ours = files?.catalogUrl === url;
    const registry = lazy(async () => (ours && files?.registryUrl ? files.registryUrl : (await catalogConfig(url)).registryUrl));
    const own = ours && files?.registryUrl !== undefined ? session : undefined;
    const client = new CatalogClient(
      url,
      registry,
      apiKey
        ? { kind: 'api key', token: async () => apiKey, refusedHint: apiKeyRefusedHint }
        : own
        ? { kind: 'quilt3 session', token: () => own.accessToken(), refusedHint: 'Run `quilt3 login` to log in again.' }
        : {
            kind: 'anonymous',
            refusedHint: `Log in to search as yourself: \`quilt3 config ${url}\` then \`quilt3 login\`.`,
          },
    );
    return { url, auth: client.auth.kind, client: () => client };
  }

  private async build(onSession: (s: Quilt3Session) => void): Promise<RuntimeContext> {
    const { config, logger } = this;
    const dir = config.quilt.dataDir;
    let files: Quilt3Files | undefined;
    let session: Quilt3Session | undefined;
    let aws: AwsAccess;
    try {
      files = await readQuilt3Files(dir);
      const region = config.aws.region ?? files.region ?? FALLBACK_REGION;
      const registry = pickRegistry(files);
      const apiKey = config.quilt.apiKey;
      const catalogUrl = config.quilt.catalogUrl ?? files.catalogUrl;
      if (apiKey) {
        // As quilt3.login_with_api_key: the key overrides any login session; the registry issues the credentials.
        if (!catalogUrl) {
          throw new ToolError('no_catalog', 'QUILT_API_KEY is set, but no Quilt catalog is configured to use it with.', 'Set QUILT_CATALOG_URL to the catalog the key was created in.');
        }
        const filesRegistry = files.catalogUrl === catalogUrl ? files.registryUrl : undefined;
        const creds = registryCredentialProvider(
          async () => filesRegistry ?? (await catalogConfig(catalogUrl)).registryUrl,
          async () => apiKey,
          apiKeyRefusedHint,
        );
        aws = {
          source: `Quilt API key (QUILT_API_KEY) at ${catalogUrl}`,
          clients: new AwsClients(creds.provider, { settings: config.aws, defaultRegion: region, athena: config.athena }),
          expiresAt: creds.expiresAt,
        };
        logger.info('Using the Quilt API key from QUILT_API_KEY', { catalog: catalogUrl });
      } else if (registry) {
        const s = (session = new Quilt3Session(dir, registry, logger));
        onSession(s);
        aws = {
          source: `quilt3 login session (${s.registryUrl})`,
          clients: new AwsClients(s.awsCredentials, { settings: config.aws, defaultRegion: region, athena: config.athena }),
          expiresAt: () => s.credentialsExpiry,
        };
        logger.info('Using the quilt3 login session', { registry: s.registryUrl });
      } else {
        const chain = tracked(this.chain());
        aws = {
          source: describeChain(config),
          clients: new AwsClients(chain.provider, { settings: config.aws, defaultRegion: region, athena: config.athena }),
          expiresAt: chain.expiresAt,
        };
        logger.info('No quilt3 login session; using the default AWS credential chain', { dir });
      }
    } catch (err) {
      const error = toToolError(err);
      aws = { source: 'none', unavailable: error };
      logger.warning('AWS access unavailable', { reason: error.message });
    }
    const catalog = this.catalogAccess(files, session);
    let user = 'local user';
    try {
      user = os.userInfo().username;
    } catch {
      // no passwd entry (some containers): keep the generic name
    }
    return {
      mode: 'desktop',
      principal: {
        id: user,
        key: JSON.stringify(['desktop', user]),
        details: {
          quilt3DataDir: dir,
          quilt3Registry: files ? (pickRegistry(files) ?? null) : null,
          ...(config.quilt.apiKey ? { quilt_api_key: 'present (QUILT_API_KEY)' } : {}),
        },
      },
      aws,
      catalog,
      logger,
      allowedBuckets: undefined,
      local: this.localAccess(files),
      cursors: cursorsFor(this.cursorKey, JSON.stringify(['desktop', user])),
      // AWS IAM decides in desktop mode: the person's own credentials are the boundary.
      authorize: () => {},
      session: {
        stats: () => ({ mode: 'desktop', quilt3_session: Boolean(files && pickRegistry(files)), credential_source: aws.source }),
        checkToken: async (raw) => {
          const { TokenGate } = await import('./token-policy.js');
          return new TokenGate(config).admit(raw);
        },
      },
    };
  }
}

