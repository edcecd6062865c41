/**
 * JWT mode: every request acts strictly as the user whose verified token it carries.
 *
 * AWS credentials come only from what the token grants (its role via STS, or the catalog's
 * credential endpoint with its catalog_token); never the server's own credentials for data, never
 * files. Verified tokens are cached by digest (bounded, at most until they expire, at most 1 h),
 * and AWS clients by credential source, so a user's repeated calls cost a map lookup.
 */
import { createHash } from 'node:crypto';
import { AwsClients } from '../aws/clients.js';
import { registryCredentialProvider } from '../catalog/credentials.js';
import type { Config } from '../config.js';
import { CatalogClient } from '../catalog/client.js';
import type { AwsAccess, BucketAction, CatalogAccess, RuntimeContext } from '../context.js';
import { ToolError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Lru } from '../core/lru.js';
import { ACTION_PERMISSION, allowsAction, allowsBucket, missingScope, publicClaims, scopeForKind, type JwtClaims } from './claims.js';
import type { AuthService, RequestAuth } from './service.js';
import { cacheKey, StsBroker, type AssumeRoleRequest } from './sts.js';
import { CursorKey, cursorsFor } from '../core/cursors.js';
import { TokenGate } from './token-policy.js';
import type { VerifiedToken } from './verifier.js';
import { ApiKeyExchange, apiKeyRefusedHint, isQuiltApiKey, type ApiKeyIdentity } from './api-keys.js';

const MAX_CACHE_LIFETIME_MS = 3600_000;
const FALLBACK_REGION = 'us-east-1';

const digest = (raw: string) => createHash('sha256').update(raw).digest('hex');

/** What the token can and cannot reach, in words, for auth_status. */
function accessSummary(claims: JwtClaims, aws: AwsAccess, catalog: CatalogAccess): Record<string, string> {
  const buckets = claims.buckets?.includes('*') || !claims.buckets ? 'any bucket its AWS access reaches' : `the buckets ${claims.buckets.join(', ')}`;
  return {
    aws_access: aws.clients
      ? `S3 objects, packages and Athena in ${buckets}, through ${aws.source}.`
      : "none: no role_arn, no roles usable with the server's MCP_JWT_ROLE_ARN_TEMPLATE, and no catalog_token, so no S3, package or Athena tool works.",
    catalog_access:
      catalog.auth !== 'none'
        ? `catalog search, bucket list and identity at ${catalog.url ?? claims.registryUrl}, with the token's catalog_token.`
        : claims.catalogToken
          ? 'none: no catalog is known (the token has no catalog_url and the server no QUILT_CATALOG_URL).'
          : 'none: no catalog_token claim, so no catalog search (search_catalog scans S3 keys and package names in given buckets instead), no catalog bucket titles, no catalog identity.',
  };
}

interface CachedToken {
  ctx: RuntimeContext;
  until: number;
}

export class JwtAuthService implements AuthService {
  readonly mode = 'jwt' as const;
  readonly gate: TokenGate;
  private readonly tokens = new Lru<string, CachedToken>(10_000);
  private readonly clients = new Lru<string, { clients: AwsClients; expiresAt: () => Date | undefined }>(10_000);
  private readonly broker: StsBroker;
  private readonly region: string;
  private readonly counters = { verified: 0, rejected: 0 };
  private readonly cursorKey: CursorKey;
  /** MCP_QUILT_API_KEYS: Quilt API keys checked by the configured catalog's registry. */
  private readonly apiKeys: ApiKeyExchange | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.gate = new TokenGate(config);
    this.cursorKey = new CursorKey(config.cursorSecret);
    this.region = config.aws.region ?? FALLBACK_REGION;
    this.broker = new StsBroker(config.aws, this.region, config.jwt.sessionDurationSeconds, logger);
    const catalogUrl = config.quilt.catalogUrl;
    this.apiKeys =
      config.jwt.quiltApiKeys && catalogUrl ? new ApiKeyExchange(catalogUrl, () => this.gate.policy.registryOf(catalogUrl), now) : undefined;
  }

  /** A Quilt API key as claims: the registry's user, and catalog access (and AWS credentials) with the key itself. */
  private apiKeyClaims(identity: ApiKeyIdentity, key: string): JwtClaims {
    return {
      sub: identity.name,
      shape: 'quilt_api_key',
      roleArn: undefined,
      roles: [],
      sessionTags: {},
      // The registry issues credentials for the user's own role: IAM decides buckets and actions.
      buckets: undefined,
      permissions: undefined,
      scope: undefined,
      scopes: [],
      scopeGrant: false,
      level: undefined,
      catalogToken: key,
      catalogUrl: this.config.quilt.catalogUrl,
      registryUrl: identity.registryUrl,
      issuer: this.config.quilt.catalogUrl,
      audience: [],
      expiresAt: new Date(identity.until),
      issuedAt: undefined,
    };
  }

  needsLookup(token: string): boolean {
    const bare = token.trim().replace(/^Bearer\s+/i, '');
    if (!this.apiKeys || !isQuiltApiKey(bare)) return false;
    const cached = this.tokens.get(digest(token));
    return !(cached && cached.until > this.now()) && !this.apiKeys.known(bare);
  }

  async context(request: RequestAuth): Promise<RuntimeContext> {
    const raw = request.token ?? this.config.jwt.token;
    if (!raw) {
      throw new ToolError(
        'unauthorized',
        'No token: this server runs in JWT mode and every tool call needs a JWT.',
        'Send `Authorization: Bearer <JWT>` (over stdio: set MCP_JWT_TOKEN).',
      );
    }
    const key = digest(raw);
    const cached = this.tokens.get(key);
    if (cached && cached.until > this.now()) return cached.ctx;
    if (cached) this.tokens.delete(key);

    const bare = raw.trim().replace(/^Bearer\s+/i, '');
    if (isQuiltApiKey(bare)) {
      if (!this.apiKeys) {
        this.counters.rejected++;
        throw new ToolError(
          'unauthorized',
          'This server does not accept Quilt API keys (qk_...).',
          'Send a JWT, or ask the operator to enable API keys (MCP_QUILT_API_KEYS=true with QUILT_CATALOG_URL).',
        );
      }
      let identity: ApiKeyIdentity;
      try {
        identity = await this.apiKeys.identify(bare);
      } catch (err) {
        if (err instanceof ToolError && err.code === 'unauthorized') {
          this.counters.rejected++;
          this.logger.notice('API key rejected', { reason: err.message });
        }
        throw err;
      }
      this.counters.verified++;
      const ctx = this.buildContext(this.apiKeyClaims(identity, bare), bare);
      this.tokens.set(key, { ctx, until: identity.until });
      return ctx;
    }

    let verified: VerifiedToken;
    try {
      verified = await this.gate.admit(raw);
    } catch (err) {
      this.counters.rejected++;
      if (err instanceof ToolError) this.logger.notice('Token rejected', { reason: err.message });
      throw err;
    }
    this.counters.verified++;
    const ctx = this.buildContext(verified.claims, raw.trim().replace(/^Bearer\s+/i, ''));
    this.logAccepted(verified.claims, ctx);
    const until = Math.min(verified.claims.expiresAt.getTime(), this.now() + MAX_CACHE_LIFETIME_MS);
    this.tokens.set(key, { ctx, until });
    return ctx;
  }

  /** Once per verified token (not per request): who, and what it reaches; a warning when no catalog. */
  private logAccepted(claims: JwtClaims, ctx: RuntimeContext): void {
    const fields = { sub: claims.sub, shape: claims.shape, issuer: claims.issuer, expires: claims.expiresAt.toISOString(), aws: ctx.aws.source };
    this.logger.debug('Token accepted', fields);
    if (ctx.catalog.auth === 'none') {
      this.logger.warning('Token has no catalog access: search_catalog falls back to S3, catalog tools fail', {
        sub: claims.sub,
        reason: claims.catalogToken ? 'no catalog_url in the token and no QUILT_CATALOG_URL' : 'no catalog_token claim',
      });
    }
  }

  private buildContext(claims: JwtClaims, raw: string): RuntimeContext {
    const sts = this.stsRequest(claims, raw);
    const aws = this.awsAccess(claims, sts);
    const authorize = (bucket: string, action: BucketAction) => {
      if (!allowsBucket(claims, bucket)) {
        const list = claims.buckets ?? [];
        throw new ToolError(
          'access_denied',
          `Bucket "${bucket}" is not in this token's buckets (${list.length ? list.slice(0, 10).join(', ') + (list.length > 10 ? ', ...' : '') : 'none'}).`,
          'Use one of the token\'s buckets, or ask for a token that includes this one.',
        );
      }
      if (!allowsAction(claims, action)) {
        throw new ToolError(
          'access_denied',
          `This token does not allow ${ACTION_PERMISSION[action]} (${action}) on "${bucket}".`,
          claims.scopeGrant
            ? `Ask the authorization server for a token with the scope ${scopeForKind(action === 'list' || action === 'read' ? 'read' : 'write')}.`
            : 'Ask for a token whose permissions include it.',
        );
      }
    };
    const pub = publicClaims(claims);
    const catalog = this.catalogAccess(claims);
    // One issuer's "alice" is not another's: caps and cursors are keyed by both.
    const key = JSON.stringify([claims.issuer ?? null, claims.sub]);
    return {
      mode: 'jwt',
      principal: { id: claims.sub, key, details: { ...pub, credential_source: aws.source, ...accessSummary(claims, aws, catalog) } },
      aws,
      catalog,
      logger: this.logger,
      allowedBuckets: claims.buckets?.includes('*') ? undefined : claims.buckets,
      authorize,
      // A cursor works only for the same user with the same grants, at the same catalog.
      cursors: cursorsFor(this.cursorKey, JSON.stringify(['jwt', key, claims.buckets ?? null, claims.permissions ?? null, claims.catalogUrl ?? null])),
      session: {
        jwtClaims: pub,
        // The caller's own session only: counters of the whole process move with other tenants' work.
        stats: () => this.callerStats(claims, aws, sts),
        checkToken: (raw) => this.gate.admit(raw),
      },
      insufficientScope: (kind) => missingScope(claims, kind),
    };
  }

  private roleArn(claims: JwtClaims): string | undefined {
    if (claims.roleArn) return claims.roleArn;
    const template = this.config.jwt.roleArnTemplate;
    const role = claims.roles[0];
    return template && role && /^[\w+=,.@-]{1,64}$/.test(role) ? template.replace('{role}', role) : undefined;
  }

  /** The STS call that gives this token its AWS credentials, if it names a role. */
  private stsRequest(claims: JwtClaims, raw: string): AssumeRoleRequest | undefined {
    const roleArn = this.roleArn(claims);
    if (!roleArn) return undefined;
    return {
      roleArn,
      sub: claims.sub,
      tags: claims.sessionTags,
      tokenDigest: digest(raw),
      ...(claims.roleArn && claims.externalId ? { externalId: claims.externalId } : {}),
      ...(this.config.jwt.webIdentity ? { webIdentity: { token: raw, expiresAt: claims.expiresAt } } : {}),
    };
  }

  private awsAccess(claims: JwtClaims, request: AssumeRoleRequest | undefined): AwsAccess {
    if (request) {
      const { roleArn } = request;
      // Per token: the credentials are shared through the broker's cache, but STS's refusal is remembered per token.
      const key = `sts:${cacheKey(request)}\n${request.tokenDigest ?? ''}`;
      let entry = this.clients.get(key);
      if (!entry) {
        entry = {
          clients: new AwsClients((options) => this.broker.credentials(request, options), { settings: this.config.aws, defaultRegion: this.region, athena: this.config.athena }),
          expiresAt: () => this.broker.expiryOf(request),
        };
        this.clients.set(key, entry);
      }
      const how = request.webIdentity ? "AssumeRoleWithWebIdentity (the caller's token)" : 'AssumeRole';
      return { source: `STS ${how} of ${roleArn}`, clients: entry.clients, expiresAt: entry.expiresAt };
    }
    if (claims.catalogToken) {
      const token = claims.catalogToken;
      const key = `catalog:${digest(`${claims.registryUrl ?? claims.catalogUrl ?? ''}\n${token}`)}`;
      let entry = this.clients.get(key);
      if (!entry) {
        const creds = registryCredentialProvider(
          () => this.registryFor(claims),
          async () => token,
          claims.shape === 'quilt_api_key' ? apiKeyRefusedHint : "The token's catalog_token was refused: get a fresh token.",
          this.now,
        );
        entry = {
          clients: new AwsClients(creds.provider, { settings: this.config.aws, defaultRegion: this.region, athena: this.config.athena }),
          expiresAt: creds.expiresAt,
        };
        this.clients.set(key, entry);
      }
      const what = claims.shape === 'quilt_api_key' ? 'the Quilt API key' : "the token's catalog_token";
      return { source: `Quilt catalog credentials for ${what}`, clients: entry.clients, expiresAt: entry.expiresAt };
    }
    return {
      source: 'none',
      unavailable: new ToolError(
        'no_credentials',
        'This token grants no AWS access: it has no role_arn, no roles usable with MCP_JWT_ROLE_ARN_TEMPLATE, and no catalog_token.',
        'Ask for a token that carries a role (role_arn or roles) or a catalog_token.',
      ),
    };
  }

  /** Catalog access only from the token: its catalog_token, at its (allowed) catalog or the configured one. */
  private catalogAccess(claims: JwtClaims): CatalogAccess {
    const url = claims.catalogUrl ?? this.config.quilt.catalogUrl;
    const none = (message: string, hint: string): CatalogAccess => ({
      url,
      auth: 'none',
      client: () => {
        throw new ToolError('no_catalog', message, hint);
      },
    });
    if (!url && !claims.registryUrl) {
      return none(
        'No Quilt catalog: the token has no catalog_url and this server has no QUILT_CATALOG_URL.',
        'Ask for a token with catalog_url, or have the operator set QUILT_CATALOG_URL.',
      );
    }
    if (!claims.catalogToken) {
      return none(
        'This token carries no catalog access: it has no catalog_token claim.',
        'Ask for a token that includes catalog_token (the enhanced token from the Quilt catalog). Without it there is no catalog ' +
          'search, catalog bucket list or catalog identity; search_catalog with buckets scans S3 keys and package names, and ' +
          "bucket_objects_list, package_list, package_browse and Athena work through the token's AWS access.",
      );
    }
    const token = claims.catalogToken;
    const apiKey = claims.shape === 'quilt_api_key';
    const client = new CatalogClient(url ?? claims.registryUrl ?? '', () => this.registryFor(claims), {
      kind: apiKey ? 'api key' : 'catalog_token',
      token: async () => token,
      refusedHint: apiKey ? apiKeyRefusedHint : "The token's catalog_token was refused (expired or revoked): get a new token.",
    });
    return { url, auth: client.auth.kind, client: () => client };
  }

  private async registryFor(claims: JwtClaims): Promise<string> {
    if (claims.registryUrl) return claims.registryUrl;
    const catalog = claims.catalogUrl ?? this.config.quilt.catalogUrl;
    if (!catalog) {
      throw new ToolError(
        'no_credentials',
        'The token has a catalog_token but no registry_url or catalog_url, and the server has no QUILT_CATALOG_URL.',
        'Add registry_url to the token, or set QUILT_CATALOG_URL on the server.',
      );
    }
    return this.gate.policy.registryOf(catalog);
  }

  /** What one caller may see of its own session. */
  private callerStats(claims: JwtClaims, aws: AwsAccess, request: AssumeRoleRequest | undefined): Record<string, unknown> {
    return {
      mode: 'jwt',
      token_expires_at: claims.expiresAt.toISOString(),
      credential_source: aws.source,
      ...(request ? { sts_credentials_expire_at: this.broker.expiryOf(request)?.toISOString() ?? null } : {}),
      process_wide: "not shown: cache sizes and token and STS counts of the whole process move with other callers' work; operators read them from the server's metrics and logs",
    };
  }

  /** Figures of the whole process, for operators (never handed to a caller). */
  stats(): Record<string, unknown> {
    return {
      mode: 'jwt',
      tokens_verified: this.counters.verified,
      tokens_rejected: this.counters.rejected,
      token_cache: this.tokens.stats(),
      aws_client_cache: this.clients.stats(),
      sts: { ...this.broker.stats },
      ...(this.apiKeys ? { api_keys: { ...this.apiKeys.stats } } : {}),
    };
  }
}
