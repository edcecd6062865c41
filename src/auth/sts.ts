/**
 * STS AssumeRole for JWT principals. The server's own credentials are used for one thing only:
 * calling sts:AssumeRole with the user's role, source identity and session tags. Results are
 * cached per (role, tags, sub) until 5 minutes before they expire, and concurrent requests for
 * the same key share one STS call.
 */
import type { STSClient } from '@aws-sdk/client-sts';
import { loadSts, type AwsCredentials, type CredentialProvider } from '../aws/clients.js';
import { containerCredentials, NoContainerCredentialsError } from '../aws/container-credentials.js';
import type { AwsSettings } from '../config.js';
import { fromAwsError, ToolError } from '../errors.js';
import type { Logger } from '../log.js';

const REFRESH_MARGIN_MS = 5 * 60_000;

export interface AssumeRoleRequest {
  roleArn: string;
  sub: string;
  tags: Record<string, string>;
}

/** STS allows [\w+=,.@-] in session names and source identities. */
export function stsSafe(s: string, max: number): string {
  return s.replace(/[^\w+=,.@-]/g, '_').slice(0, max);
}

export function cacheKey(r: AssumeRoleRequest): string {
  const tags = Object.keys(r.tags)
    .sort()
    .map((k) => [k, r.tags[k]]);
  return JSON.stringify([r.roleArn, r.sub, tags]);
}

export interface StsStats {
  cached: number;
  hits: number;
  misses: number;
  assumeRoleCalls: number;
}

export class StsBroker {
  private readonly cache = new Map<string, AwsCredentials>();
  private readonly inFlight = new Map<string, Promise<AwsCredentials>>();
  private client: Promise<STSClient> | undefined;
  /**
   * The server's own identity: only the container's sources (environment, web identity, ECS/EKS
   * container credentials, instance metadata), never ~/.aws or AWS_PROFILE, which on a shared host
   * would be someone else's keys.
   */
  private readonly ownCredentials: CredentialProvider;
  readonly stats: StsStats = { cached: 0, hits: 0, misses: 0, assumeRoleCalls: 0 };

  constructor(
    private readonly settings: AwsSettings,
    private readonly region: string,
    private readonly durationSeconds: number,
    private readonly logger: Logger,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
    ownCredentials?: CredentialProvider,
  ) {
    this.ownCredentials = ownCredentials ?? containerCredentials({ region, stsEndpoint: settings.endpoints.sts, source: settings.ownIdentity });
  }

  private sts(): Promise<STSClient> {
    return (this.client ??= loadSts().then(
      ({ STSClient }) =>
        // The server's own identity: used only to assume users' roles.
        new STSClient({
          region: this.region,
          credentials: this.ownCredentials,
          maxAttempts: 3,
          requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 },
          ...(this.settings.endpoints.sts ? { endpoint: this.settings.endpoints.sts } : {}),
        }),
    ));
  }

  /** When the cached credentials for a request expire, if any. */
  expiryOf(r: AssumeRoleRequest): Date | undefined {
    return this.cache.get(cacheKey(r))?.expiration;
  }

  credentials(r: AssumeRoleRequest): Promise<AwsCredentials> {
    const key = cacheKey(r);
    const hit = this.cache.get(key);
    if (hit?.expiration && hit.expiration.getTime() - REFRESH_MARGIN_MS > this.now()) {
      this.stats.hits++;
      return Promise.resolve(hit);
    }
    let pending = this.inFlight.get(key);
    if (pending) {
      this.stats.hits++;
      return pending;
    }
    this.stats.misses++;
    pending = this.assume(r).then(
      (creds) => {
        this.cache.delete(key);
        this.cache.set(key, creds);
        if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
        this.stats.cached = this.cache.size;
        return creds;
      },
    ).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, pending);
    return pending;
  }

  private async assume(r: AssumeRoleRequest): Promise<AwsCredentials> {
    const [{ AssumeRoleCommand }, client] = await Promise.all([loadSts(), this.sts()]);
    const sub = stsSafe(r.sub, 64);
    const sessionName = `mcp-${stsSafe(r.sub, 40)}-${Math.floor(this.now() / 1000)}`.slice(0, 64);
    this.stats.assumeRoleCalls++;
    try {
      const out = await client.send(
        new AssumeRoleCommand({
          RoleArn: r.roleArn,
          RoleSessionName: sessionName,
          SourceIdentity: sub.length >= 2 ? sub : `${sub}_`,
          DurationSeconds: this.durationSeconds,
          Tags: Object.entries(r.tags).map(([Key, Value]) => ({ Key, Value })),
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new ToolError('upstream_error', 'AWS STS returned no credentials.');
      this.logger.info('Assumed role for token', { role: r.roleArn, sub: r.sub, expires: c.Expiration?.toISOString() });
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration ?? new Date(this.now() + this.durationSeconds * 1000),
      };
    } catch (err) {
      if (err instanceof ToolError) throw err;
      const mapped = fromAwsError(err, { action: 'assume the role of' });
      if (mapped.code === 'access_denied') {
        throw new ToolError(
          'access_denied',
          `AWS STS refused to assume ${r.roleArn} for this token.`,
          "The role's trust policy must allow this server's identity sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity; ask the administrator of the role.",
        );
      }
      if (mapped.code === 'credentials_expired' || mapped.code === 'no_credentials') {
        // The provider's message says which sources were looked at (it holds no secret).
        const detail = err instanceof NoContainerCredentialsError ? ` ${err.message}` : '';
        throw new ToolError(
          'upstream_error',
          `This server cannot call AWS STS: its own credentials are missing or expired.${detail}`,
          'The operator must give the container an identity (task/instance role) that may assume the users\' roles.',
        );
      }
      throw mapped;
    }
  }
}
