/**
 * JWT verification with jose: algorithm pinned by the configuration (HS256 with a shared secret,
 * or RS256/ES256 from a JWKS URL), `exp` required, `iss`/`aud`/`kid` enforced when configured, and
 * a size limit checked before any parsing. Failures say exactly why, never echoing the token.
 */
import type { JWTVerifyGetKey } from 'jose';
import type { JwtSettings } from '../config.js';
import { ToolError } from '../core/errors.js';
import { lazy } from '../core/lazy.js';
import { ClaimError, normalizeClaims, type JwtClaims } from './claims.js';
import { IssuerDiscovery } from './oidc-discovery.js';

export interface VerifiedToken {
  claims: JwtClaims;
  header: { alg: string; kid: string | undefined };
}

const loadJose = lazy(() => import('jose'));

const unauthorized = (message: string, hint?: string) => new ToolError('unauthorized', message, hint);

function ago(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} seconds`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} hours`;
  return `${Math.round(seconds / 86400)} days`;
}

const JWKS_OPTIONS = { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 };

export class JwtVerifier {
  private jwks: JWTVerifyGetKey | undefined;
  /** Key sets of discovered authorization servers, by issuer. */
  private readonly issuerJwks = new Map<string, { uri: string; keys: JWTVerifyGetKey }>();
  private secretKey: Uint8Array | undefined;
  readonly algorithms: string[];

  constructor(
    private readonly settings: JwtSettings,
    private readonly discovery: IssuerDiscovery = new IssuerDiscovery(),
  ) {
    this.algorithms = settings.secret ? ['HS256'] : ['RS256', 'ES256'];
  }

  get configured(): boolean {
    return Boolean(this.settings.secret || this.settings.jwksUrl || this.settings.authorizationServers.length);
  }

  /**
   * No secret and no JWKS URL: the key set of the authorization server that issued the token, found
   * from its metadata. The (unverified) `iss` only picks among the configured servers; the
   * signature, and `iss` again, are then checked against that server's keys.
   */
  private async discoveredKeys(token: string, jose: typeof import('jose')): Promise<JWTVerifyGetKey> {
    let iss: unknown;
    try {
      iss = jose.decodeJwt(token).iss;
    } catch {
      throw unauthorized('The token is not a valid signed JWT.');
    }
    if (typeof iss !== 'string' || !this.settings.authorizationServers.includes(iss)) {
      throw unauthorized(
        `The token was issued by ${typeof iss === 'string' ? 'an issuer' : 'no issuer (iss)'} this server does not accept; it accepts tokens from ${this.settings.authorizationServers.join(', ')}.`,
        'Get a token from one of those authorization servers (see /.well-known/oauth-protected-resource).',
      );
    }
    const { jwksUri } = await this.discovery.metadata(iss);
    let entry = this.issuerJwks.get(iss);
    if (entry?.uri !== jwksUri) {
      entry = { uri: jwksUri, keys: jose.createRemoteJWKSet(new URL(jwksUri), JWKS_OPTIONS) };
      this.issuerJwks.set(iss, entry);
    }
    return entry.keys;
  }

  async verify(raw: string): Promise<VerifiedToken> {
    const { settings } = this;
    if (!this.configured) {
      throw unauthorized(
        'This server has no JWT verification configured.',
        'Set MCP_JWT_SECRET (HS256), MCP_JWT_JWKS_URL (RS256/ES256) or MCP_OAUTH_AUTHORIZATION_SERVERS.',
      );
    }
    const token = raw.trim().replace(/^Bearer\s+/i, '');
    const bytes = Buffer.byteLength(token);
    if (bytes > settings.maxTokenBytes) {
      throw unauthorized(`The token is too large (${bytes} bytes; the limit is ${settings.maxTokenBytes}).`);
    }
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token)) {
      throw unauthorized('The token is not a JWT (expected three base64url parts separated by dots).');
    }
    const jose = await loadJose();
    const key: Uint8Array | JWTVerifyGetKey = settings.secret
      ? (this.secretKey ??= new TextEncoder().encode(settings.secret))
      : settings.jwksUrl
        ? (this.jwks ??= jose.createRemoteJWKSet(new URL(settings.jwksUrl), JWKS_OPTIONS))
        : await this.discoveredKeys(token, jose);
    let result: { payload: Record<string, unknown>; protectedHeader: { alg: string; kid?: string } };
    try {
      result = (await jose.jwtVerify(token, key as Uint8Array, {
        algorithms: this.algorithms,
        ...(settings.issuers.length ? { issuer: settings.issuers } : {}),
        ...(settings.audiences.length ? { audience: settings.audiences } : {}),
        clockTolerance: settings.clockToleranceSeconds,
        requiredClaims: ['exp'],
      })) as typeof result;
    } catch (err) {
      throw this.explain(err, token, jose);
    }
    const kid = result.protectedHeader.kid;
    if (settings.kid && kid !== settings.kid) {
      throw unauthorized(`The token's key id (kid) is ${kid ? `"${kid}"` : 'missing'}; this server accepts "${settings.kid}".`);
    }
    try {
      const claims = normalizeClaims(result.payload, { scopesRequired: settings.authorizationServers.length > 0, rolesClaim: settings.rolesClaim });
      return { claims, header: { alg: result.protectedHeader.alg, kid } };
    } catch (err) {
      if (err instanceof ClaimError) throw unauthorized(`The token is malformed: ${err.message}`);
      throw err;
    }
  }

  private explain(err: unknown, token: string, jose: typeof import('jose')): ToolError {
    const code = (err as { code?: string }).code;
    switch (code) {
      case 'ERR_JWT_EXPIRED': {
        let exp: number | undefined;
        try {
          exp = jose.decodeJwt(token).exp;
        } catch {
          exp = undefined;
        }
        const when = exp ? ` ${ago(Date.now() / 1000 - exp)} ago` : '';
        return unauthorized(`The token expired${when}.`, 'Get a new token and retry.');
      }
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
        const claim = (err as { claim?: string }).claim;
        if (claim === 'nbf') return unauthorized('The token is not valid yet (nbf is in the future).', 'Check the clock of the token issuer.');
        if (claim === 'iss') return unauthorized('The token was issued by an issuer this server does not accept (iss).', 'Check MCP_JWT_ISSUER.');
        if (claim === 'aud') {
          // RFC 8707: a token is bound to the resource it was issued for; the accepted values are public.
          return unauthorized(
            `The token is meant for another audience (aud); this server accepts tokens issued for ${this.settings.audiences.join(', ')}.`,
            this.settings.resource
              ? `Ask the authorization server for a token for the resource ${this.settings.resource} (the "resource" parameter, RFC 8707).`
              : 'Check MCP_JWT_AUDIENCE.',
          );
        }
        if (claim === 'exp') return unauthorized('The token has no expiry (exp): tokens must expire.');
        return unauthorized(`The token's "${claim ?? 'unknown'}" claim is invalid.`);
      }
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return unauthorized(`The token's signing algorithm is not allowed here (this server accepts ${this.algorithms.join(', ')}).`);
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return unauthorized('The token signature is invalid (wrong key, or the token was altered).');
      case 'ERR_JWKS_NO_MATCHING_KEY':
        return unauthorized('No key in the JWKS matches the token (kid).', 'Check that the token comes from the configured issuer.');
      case 'ERR_JWKS_TIMEOUT':
        return new ToolError('unreachable', 'The JWKS endpoint did not answer in time; tokens cannot be verified now.', 'Retry later.');
      case 'ERR_JWS_INVALID':
      case 'ERR_JWT_INVALID':
      case 'ERR_JOSE_NOT_SUPPORTED':
        return unauthorized('The token is not a valid signed JWT.');
      default:
        return unauthorized('The token could not be verified.');
    }
  }
}
