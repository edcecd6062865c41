import { z } from 'zod';
import { publicClaims } from '../auth/claims.js';
import { ToolError } from '../core/errors.js';
import { defineTool } from './define.js';

const claimsShape = z.record(z.string(), z.unknown());

export const jwtDiagnostics = defineTool({
  name: 'jwt_diagnostics',
  title: 'JWT diagnostics',
  description:
    "The caller's verified JWT claims after normalization (buckets, permissions, role, session tags), its expiry and where " +
    'AWS credentials come from. Never shows the token, its signature or secrets. In desktop mode it says that no JWT is in use.',
  toolset: 'diagnostics',
  kind: 'read',
  openWorld: false,
  input: {},
  output: {
    mode: z.enum(['desktop', 'jwt']),
    claims: claimsShape.optional(),
    expires_in_seconds: z.number().optional(),
    credential_source: z.string(),
    note: z.string().optional(),
  },
  async handler(_args, ctx) {
    const claims = ctx.session.jwtClaims;
    if (ctx.mode !== 'jwt' || !claims) {
      return {
        data: { mode: ctx.mode, credential_source: ctx.aws.source, note: 'Desktop mode: no JWT is used; see auth_status.' },
        text: `Desktop mode: no JWT is used. Credentials: ${ctx.aws.source}.`,
      };
    }
    const expiresIn = Math.round((Date.parse(String(claims.expires_at)) - Date.now()) / 1000);
    const data = { mode: ctx.mode, claims, expires_in_seconds: expiresIn, credential_source: ctx.aws.source };
    return {
      data,
      text: `JWT for ${String(claims.sub)} (expires in ${expiresIn} s); AWS credentials: ${ctx.aws.source}\n${JSON.stringify(claims, null, 2)}`,
    };
  },
});

export const validateJwtToken = defineTool({
  name: 'validate_jwt_token',
  title: 'Validate a JWT',
  description:
    "Check a JWT against this server's verification settings (algorithm, secret or JWKS, issuer, audience, key id, expiry, " +
    'claim formats) and say exactly why it would be rejected, or show its normalized claims when valid.',
  toolset: 'diagnostics',
  kind: 'read',
  openWorld: false,
  input: { token: z.string().min(1).describe('The JWT to check (with or without "Bearer ")') },
  output: {
    valid: z.boolean(),
    reason: z.string().optional(),
    algorithm: z.string().optional(),
    key_id: z.string().optional(),
    claims: claimsShape.optional(),
  },
  async handler(args, ctx) {
    try {
      const verified = await ctx.session.checkToken(args.token);
      const claims = publicClaims(verified.claims);
      return {
        data: { valid: true, algorithm: verified.header.alg, key_id: verified.header.kid, claims },
        text: `Valid token for ${verified.claims.sub} (expires ${verified.claims.expiresAt.toISOString()}).\n${JSON.stringify(claims, null, 2)}`,
      };
    } catch (err) {
      if (!(err instanceof ToolError) || err.code !== 'unauthorized') throw err;
      return { data: { valid: false, reason: err.message }, text: `Invalid token: ${err.text}` };
    }
  },
});

export const sessionDiagnostics = defineTool({
  name: 'session_diagnostics',
  title: 'Session diagnostics',
  description:
    "The caller's own session: when its token and its AWS (STS) credentials expire and where the credentials come from. " +
    "In JWT mode it shows nothing of other callers or of the whole process (those figures are the operator's, in the server's metrics and logs).",
  toolset: 'diagnostics',
  kind: 'read',
  openWorld: false,
  input: {},
  output: { user: z.string(), stats: claimsShape, credentials_expire_at: z.string().optional() },
  async handler(_args, ctx) {
    const expiry = ctx.aws.expiresAt?.();
    const data = { user: ctx.principal.id, stats: ctx.session.stats(), credentials_expire_at: expiry?.toISOString() };
    return { data, text: JSON.stringify(data, null, 2) };
  },
});
