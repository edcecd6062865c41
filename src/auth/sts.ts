/**
 * STS for JWT principals. AssumeRole: the server's own credentials are used for one thing only,
 * calling sts:AssumeRole with the user's role, source identity and session tags.
 * AssumeRoleWithWebIdentity (MCP_JWT_WEB_IDENTITY): the caller's own OIDC token is the credential,
 * and the call is unsigned, so the server needs no AWS identity at all; AWS checks the token
 * against the role's trust policy (its IAM OIDC provider and audience).
 *
 * Results are cached per (role, tags, sub), or per (role, sub, token digest) for web identity, until
 * 5 minutes before they expire (never past the token's own expiry), and concurrent requests for the
 * same key share one STS call.
 */
import { createHash } from 'node:crypto';
import type { STSClient } from '@aws-sdk/client-sts';
import { loadSts, type AwsCredentials, type CredentialProvider } from '../aws/clients.js';
import { containerCredentials, NoContainerCredentialsError } from '../aws/container-credentials.js';
import { BoundedRetries, loadNewConnectionRetries } from '../aws/retry.js';
import type { AwsSettings } from '../config.js';
import { fromAwsError, ToolError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

const REFRESH_MARGIN_MS = 5 * 60_000;
/** How long STS's refusal to assume a role for a token is answered from memory. */
/**
 * Timeouts of STS requests. The SDK's `requestTimeout` (the wait for an answer's headers) only logs a
 * warning unless `throwOnRequestTimeout` is set: an AssumeRole that STS never answered never ended,
 * and every later call of its tenant waited on it (they share the one fetch, outside any call, so
 * no call's cancellation ends it). Now it ends at 15 s and is retried.
 */
const STS_REQUESTS = { connectionTimeout: 5_000, requestTimeout: 15_000, throwOnRequestTimeout: true };

export const REFUSED_TTL_MS = 60_000;

export interface AssumeRoleRequest {
  roleArn: string;
  sub: string;
  tags: Record<string, string>;
  /** sts:ExternalId, from the token's external_id claim. */
  externalId?: string | undefined;
  /** AssumeRoleWithWebIdentity with the caller's token (raw JWT), instead of AssumeRole. */
  webIdentity?: { token: string; expiresAt: Date } | undefined;
  /** The digest of the token asking: a refusal is remembered for that token only. */
  tokenDigest?: string | undefined;
}

/** STS allows [\w+=,.@-] in session names and source identities. */
export function stsSafe(s: string, max: number): string {
  return s.replace(/[^\w+=,.@-]/g, '_').slice(0, max);
}

export function cacheKey(r: AssumeRoleRequest): string {
  // The token is the credential: another token of the same user gets its own session.
  if (r.webIdentity) return JSON.stringify(['web-identity', r.roleArn, r.sub, createHash('sha256').update(r.webIdentity.token).digest('hex')]);
  const tags = Object.keys(r.tags)
    .sort()
    .map((k) => [k, r.tags[k]]);
  return JSON.stringify([r.roleArn, r.sub, tags, ...(r.externalId ? [r.externalId] : [])]);
}

export interface StsStats {
  cached: number;
  hits: number;
  misses: number;
  assumeRoleCalls: number;
  webIdentityCalls: number;
  /** Requests answered with a refusal STS gave for the same request within REFUSED_TTL_MS. */
  refusedFromMemory: number;
}

export class StsBroker {
  private readonly cache = new Map<string, AwsCredentials>();
  private readonly inFlight = new Map<string, Promise<AwsCredentials>>();
  /** STS's refusals (access denied) per token, so a refused token's every request does not call STS again. */
  private readonly refused = new Map<string, { error: ToolError; until: number }>();
  private client: Promise<STSClient> | undefined;
  private anonymousClient: Promise<STSClient> | undefined;
  /**
   * The server's own identity: only the container's sources (environment, web identity, ECS/EKS
   * container credentials, instance metadata), never ~/.aws or AWS_PROFILE, which on a shared host
   * would be someone else's keys.
   */
  private readonly ownCredentials: CredentialProvider;
  readonly stats: StsStats = { cached: 0, hits: 0, misses: 0, assumeRoleCalls: 0, webIdentityCalls: 0, refusedFromMemory: 0 };

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
    return (this.client ??= Promise.all([loadSts(), loadNewConnectionRetries()]).then(
      ([{ STSClient }, Handler]) =>
        // The server's own identity: used only to assume users' roles.
        new STSClient({
          region: this.region,
          credentials: this.ownCredentials,
          maxAttempts: 3,
          retryStrategy: new BoundedRetries(3),
          requestHandler: new Handler(STS_REQUESTS),
          ...(this.settings.endpoints.sts ? { endpoint: this.settings.endpoints.sts } : {}),
        }),
    ));
  }

  /**
   * For AssumeRoleWithWebIdentity, which AWS does not sign: a client with no credentials at all, so
   * that the server's own identity (if it has one) can never be used, even by mistake.
   */
  private webIdentitySts(): Promise<STSClient> {
    return (this.anonymousClient ??= Promise.all([loadSts(), loadNewConnectionRetries()]).then(
      ([{ STSClient }, Handler]) =>
        new STSClient({
          region: this.region,
          credentials: async () => {
            throw new ToolError('internal', 'AssumeRoleWithWebIdentity must not be signed with any credentials.');
          },
          maxAttempts: 3,
          retryStrategy: new BoundedRetries(3),
          requestHandler: new Handler(STS_REQUESTS),
          ...(this.settings.endpoints.sts ? { endpoint: this.settings.endpoints.sts } : {}),
        }),
    ));
  }

  /**
   * Cached credentials are used until 5 minutes before they expire; web identity ones also never
   * past the token's expiry, and up to it when that is what ends them (a new STS call with the
   * same token would buy nothing longer).
   */
  private fresh(expiration: Date, r: AssumeRoleRequest): boolean {
    const now = this.now();
    if (!r.webIdentity) return expiration.getTime() - REFRESH_MARGIN_MS > now;
    const tokenEnd = r.webIdentity.expiresAt.getTime();
    if (tokenEnd <= now) return false;
    return expiration.getTime() === tokenEnd || expiration.getTime() - REFRESH_MARGIN_MS > now;
  }

  /** When the cached credentials for a request expire, if any. */
  expiryOf(r: AssumeRoleRequest): Date | undefined {
    return this.cache.get(cacheKey(r))?.expiration;
  }

  /** `forceRefresh`: AWS refused the cached credentials as expired; a request already under way serves. */
  credentials(r: AssumeRoleRequest, { forceRefresh = false }: { forceRefresh?: boolean } = {}): Promise<AwsCredentials> {
    const key = cacheKey(r);
    if (forceRefresh && !this.inFlight.has(key)) this.cache.delete(key);
    const hit = this.cache.get(key);
    if (hit?.expiration && this.fresh(hit.expiration, r)) {
      this.stats.hits++;
      return Promise.resolve(hit);
    }
    let pending = this.inFlight.get(key);
    if (pending) {
      this.stats.hits++;
      return pending;
    }
    const refusalKey = `${key}\n${r.tokenDigest ?? ''}`;
    const refused = this.refused.get(refusalKey);
    if (refused && refused.until > this.now()) {
      this.stats.refusedFromMemory++;
      return Promise.reject(refused.error);
    }
    this.stats.misses++;
    pending = this.assume(r).then(
      (creds) => {
        this.cache.delete(key);
        this.cache.set(key, creds);
        if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
        this.stats.cached = this.cache.size;
        this.refused.delete(refusalKey);
        return creds;
      },
      (err: unknown) => {
        if (err instanceof ToolError && err.code === 'access_denied') {
          this.refused.delete(refusalKey);
          this.refused.set(refusalKey, { error: err, until: this.now() + REFUSED_TTL_MS });
          if (this.refused.size > this.maxEntries) this.refused.delete(this.refused.keys().next().value as string);
        }
        throw err;
      },
    ).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, pending);
    return pending;
  }

  private async assumeWithWebIdentity(r: AssumeRoleRequest & { webIdentity: { token: string; expiresAt: Date } }): Promise<AwsCredentials> {
    const [{ AssumeRoleWithWebIdentityCommand }, client] = await Promise.all([loadSts(), this.webIdentitySts()]);
    const sessionName = `mcp-${stsSafe(r.sub, 40)}-${Math.floor(this.now() / 1000)}`.slice(0, 64);
    this.stats.webIdentityCalls++;
    try {
      const out = await client.send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: r.roleArn,
          RoleSessionName: sessionName,
          WebIdentityToken: r.webIdentity.token,
          DurationSeconds: this.durationSeconds,
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new ToolError('upstream_error', 'AWS STS returned no credentials.');
      this.logger.info('Assumed role with the caller\'s web identity token', { role: r.roleArn, sub: r.sub, expires: c.Expiration?.toISOString() });
      const stsExpiry = c.Expiration ?? new Date(this.now() + this.durationSeconds * 1000);
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        // Used no longer than the token that bought them: after it expires the caller must sign in again.
        expiration: new Date(Math.min(stsExpiry.getTime(), r.webIdentity.expiresAt.getTime())),
      };
    } catch (err) {
      if (err instanceof ToolError) throw err;
      const name = (err as { name?: string }).name ?? '';
      if (['InvalidIdentityTokenException', 'InvalidIdentityToken', 'AccessDenied', 'AccessDeniedException', 'ExpiredTokenException', 'ExpiredToken', 'IDPRejectClaimException', 'IDPRejectClaim'].includes(name)) {
        const why = /Expired/.test(name) ? 'the token has expired' : /AccessDenied/.test(name) ? 'the role does not trust this token' : 'it does not accept the token';
        throw new ToolError(
          'access_denied',
          `AWS STS refused to assume ${r.roleArn} with this token's web identity (${why}).`,
          "The role's trust policy must allow sts:AssumeRoleWithWebIdentity for the token's issuer (an IAM OIDC provider) and audience; ask the administrator of the role, or sign in again.",
        );
      }
      throw fromAwsError(err, { action: 'assume with web identity', resource: `role ${r.roleArn} (AWS STS)` });
    }
  }

  private async assume(r: AssumeRoleRequest): Promise<AwsCredentials> {
    if (r.webIdentity) return this.assumeWithWebIdentity({ ...r, webIdentity: r.webIdentity });
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
          ...(r.externalId ? { ExternalId: r.externalId } : {}),
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
      const mapped = fromAwsError(err, { action: 'assume', resource: `role ${r.roleArn} (AWS STS)` });
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
