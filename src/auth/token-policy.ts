/**
 * The server's rules on top of a valid signature, in one place, so that the door (JWT mode), the
 * diagnostics (`validate_jwt_token`) and `quilt-mcp jwt inspect` apply exactly the same ones.
 *
 * Hosts a catalog token may be sent to: QUILT_CATALOG_ALLOWED_HOSTS, the configured catalog, and
 * the registry an allowed catalog names in its config.json when that registry is the catalog's own
 * (the same host, or a sibling in the catalog's parent domain, as real stacks have it: catalog
 * demo.quiltdata.com, registry demo-registry.quiltdata.com). Any other host must be listed.
 */
import { catalogConfig as fetchCatalogConfig, type CatalogConfig } from '../catalog/resolve.js';
import type { Config } from '../config.js';
import { ToolError } from '../core/errors.js';
import { isBasicToken, type JwtClaims } from './claims.js';
import { JwtVerifier, type VerifiedToken } from './verifier.js';

export function hostOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * Whether `registry` is `catalog`'s own host or a sibling: the same parent domain (the catalog's
 * host without its first label, itself at least two labels: never a bare top-level domain), on the
 * same port. IP addresses have no siblings.
 */
export function sameSite(catalog: string, registry: string): boolean {
  if (catalog === registry) return true;
  const split = (h: string) => {
    const m = /^([^:[\]]+)(:\d+)?$/.exec(h);
    return m ? { name: m[1] ?? '', port: m[2] ?? '' } : undefined;
  };
  const c = split(catalog);
  const r = split(registry);
  if (!c || !r || c.port !== r.port || /^[\d.]+$/.test(c.name)) return false;
  const parent = c.name.slice(c.name.indexOf('.') + 1);
  return c.name.includes('.') && parent.includes('.') && r.name.endsWith(`.${parent}`) && !r.name.slice(0, -parent.length - 1).includes('.');
}

export class TokenPolicy {
  constructor(
    private readonly config: Config,
    private readonly catalogConfig: (url: string) => Promise<CatalogConfig> = fetchCatalogConfig,
  ) {}

  /** Hosts the operator named: QUILT_CATALOG_ALLOWED_HOSTS and the configured catalog. */
  hostAllowed(host: string): boolean {
    return this.config.quilt.allowedHosts.includes(host) || host === hostOf(this.config.quilt.catalogUrl);
  }

  /**
   * The registry of an allowed catalog, from its config.json; refused when that names a host that
   * is neither allowed nor the catalog's own (the catalog token would be sent there).
   */
  async registryOf(catalogUrl: string): Promise<string> {
    const { registryUrl } = await this.catalogConfig(catalogUrl);
    const host = hostOf(registryUrl);
    const catalogHost = hostOf(catalogUrl) ?? '';
    if (!host || !(this.hostAllowed(host) || sameSite(catalogHost, host))) {
      throw new ToolError(
        'catalog_error',
        `The catalog ${catalogUrl} names its registry at ${host ?? 'an invalid URL'}, which is neither the catalog's own host nor an allowed one, so no catalog token was sent there.`,
        `If that is the catalog's registry, the operator adds ${host ?? 'its host'} to QUILT_CATALOG_ALLOWED_HOSTS.`,
      );
    }
    return registryUrl;
  }

  /** The catalog a token's calls go to: its own catalog_url (an allowed host) or the configured one. */
  catalogOf(claims: JwtClaims): string | undefined {
    return claims.catalogUrl ?? this.config.quilt.catalogUrl;
  }

  /** Throws an `unauthorized` ToolError naming the rule a verified token breaks. */
  async check(claims: JwtClaims): Promise<void> {
    const { jwt } = this.config;
    if (jwt.requireEnhanced && isBasicToken(claims)) {
      throw new ToolError(
        'unauthorized',
        'This server requires an enhanced token (token_type "enhanced" with roles or buckets); this is a basic catalog token.',
        'Get an enhanced token from the Quilt catalog (the MCP token endpoint) rather than the plain session token.',
      );
    }
    if (jwt.requireCatalog && !claims.catalogToken) {
      throw new ToolError(
        'unauthorized',
        'This server requires catalog access (MCP_JWT_REQUIRE_CATALOG), and the token has no catalog_token claim.',
        'Get a token that carries the catalog_token of your Quilt login.',
      );
    }
    const catalogHost = hostOf(claims.catalogUrl);
    if (claims.catalogUrl && (!catalogHost || !this.hostAllowed(catalogHost))) {
      throw new ToolError(
        'unauthorized',
        `The token's catalog_url points at ${catalogHost ?? 'an invalid URL'}, which this server does not allow.`,
        'The operator lists permitted catalog hosts in QUILT_CATALOG_ALLOWED_HOSTS.',
      );
    }
    const registryHost = hostOf(claims.registryUrl);
    if (claims.registryUrl && (!registryHost || !this.hostAllowed(registryHost))) {
      // Not listed: still fine when it is the registry the (allowed) catalog itself names.
      const catalog = this.catalogOf(claims);
      let named: string | undefined;
      if (catalog) {
        try {
          named = hostOf(await this.registryOf(catalog));
        } catch (err) {
          if (err instanceof ToolError && err.code === 'catalog_error') named = undefined;
          else throw err; // unreachable catalog: the token cannot be judged now (503, not 401)
        }
      }
      if (named !== registryHost) {
        throw new ToolError(
          'unauthorized',
          `The token's registry_url points at ${registryHost ?? 'an invalid URL'}, which this server does not allow${catalog ? ` and which is not the registry ${catalog} names` : ''}.`,
          'The operator lists permitted hosts in QUILT_CATALOG_ALLOWED_HOSTS.',
        );
      }
    }
  }
}

/**
 * Signature, claims and the server's policy together: what the door admits. The diagnostics call
 * the same method, so they never call valid a token the door refuses.
 */
export class TokenGate {
  readonly verifier: JwtVerifier;
  readonly policy: TokenPolicy;

  constructor(config: Config, catalogConfig?: (url: string) => Promise<CatalogConfig>) {
    this.verifier = new JwtVerifier(config.jwt);
    this.policy = new TokenPolicy(config, catalogConfig);
  }

  async admit(raw: string): Promise<VerifiedToken> {
    const verified = await this.verifier.verify(raw);
    await this.policy.check(verified.claims);
    return verified;
  }
}
