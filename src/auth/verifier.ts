/**
 * JWT verification with jose: algorithm pinned by the configuration (HS256 with a shared secret,
 * or RS256/ES256 from a JWKS URL), `exp` required, `iss`/`aud`/`kid` enforced when configured, and
 * a size limit checked before any parsing. Failures say exactly why, never echoing the token.
 */
import type { JWTVerifyGetKey } from 'jose';
import type { JwtSettings } from '../config.js';
import { ToolError } from '../errors.js';
import { lazy } from '../lazy.js';
import { ClaimError, normalizeClaims, type JwtClaims } from './claims.js';

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

export class JwtVerifier {
  private jwks: JWTVerifyGetKey | undefined;
  private secretKey: Uint8Array | undefined;
  readonly algorithms: string[];

  constructor(private readonly settings: JwtSettings) {
    this.algorithms = settings.secret ? ['HS256'] : ['RS256', 'ES256'];
  }

  get configured(): boolean {
    return Boolean(this.settings.secret || this.settings.jwksUrl);
  }

  async verify(raw: string): Promise<VerifiedToken> {
    const { settings } = this;
    if (!this.configured) {
      throw unauthorized('This server has no JWT verification configured.', 'Set MCP_JWT_SECRET (HS256) or MCP_JWT_JWKS_URL (RS256/ES256).');
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
      : (this.jwks ??= jose.createRemoteJWKSet(new URL(settings.jwksUrl ?? ''), {
          timeoutDuration: 5_000,
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
        }));
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
      return { claims: normalizeClaims(result.payload), header: { alg: result.protectedHeader.alg, kid } };
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
        if (claim === 'aud') return unauthorized('The token is meant for another audience (aud).', 'Check MCP_JWT_AUDIENCE.');
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
