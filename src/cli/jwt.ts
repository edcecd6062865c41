/**
 * `quilt-mcp jwt generate` makes a signed test token (HS256, for development and tests);
 * `quilt-mcp jwt inspect <token>` shows a token's header and normalized claims, and whether it
 * verifies against this server's configuration. Neither prints a signature or a secret.
 */
import { ClaimError, normalizeClaims, publicClaims } from '../auth/claims.js';
import { TokenGate } from '../auth/token-policy.js';
import type { Config } from '../config.js';
import { GENERATE_HELP, type GenerateOptions } from './jwt-args.js';
import { ToolError } from '../errors.js';

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

function fail(message: string): never {
  process.stderr.write(`quilt-mcp jwt: ${message}\n`);
  process.exit(2);
}

async function generate(config: Config, o: GenerateOptions): Promise<void> {
  const secret = o.secret ?? config.jwt.secret;
  if (!o.sub) fail(`--sub is required.\n\n${GENERATE_HELP}`);
  if (!secret || secret.length < 32) fail('an HS256 secret of at least 32 characters is needed (--secret or MCP_JWT_SECRET).');
  const tags = list(o.tags)?.map((kv) => {
    const i = kv.indexOf('=');
    if (i < 1) fail(`--tags needs key=value pairs, got "${kv}".`);
    return [kv.slice(0, i), kv.slice(i + 1)] as const;
  });
  const claims: Record<string, unknown> = {
    sub: o.sub,
    ...(o['role-arn'] ? { role_arn: o['role-arn'] } : {}),
    ...(o.roles ? { roles: list(o.roles) } : {}),
    ...(tags ? { session_tags: Object.fromEntries(tags) } : {}),
    ...(o.buckets ? { buckets: list(o.buckets) } : {}),
    ...(o.permissions ? { permissions: list(o.permissions) } : {}),
    ...(o['catalog-token'] ? { catalog_token: o['catalog-token'] } : {}),
    ...(o['catalog-url'] ? { catalog_url: o['catalog-url'] } : {}),
    ...(o['registry-url'] ? { registry_url: o['registry-url'] } : {}),
    ...(o.enhanced ? { token_type: 'enhanced' } : {}),
  };
  const expiresIn = Number(o['expires-in'] ?? 3600);
  if (!Number.isInteger(expiresIn) || expiresIn <= 0) fail('--expires-in must be a positive number of seconds.');
  const { SignJWT } = await import('jose');
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(o.kid ? { kid: o.kid } : {}) })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  if (o.issuer) jwt = jwt.setIssuer(o.issuer);
  if (o.audience) jwt = jwt.setAudience(o.audience);
  process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
}

async function inspect(config: Config, token: string | undefined): Promise<void> {
  const raw = token ?? config.jwt.token;
  if (!raw) fail('usage: quilt-mcp jwt inspect <token>   (or set MCP_JWT_TOKEN)');
  const { decodeJwt, decodeProtectedHeader } = await import('jose');
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(raw) as Record<string, unknown>;
    payload = decodeJwt(raw) as Record<string, unknown>;
  } catch {
    fail('this is not a JWT (expected three base64url parts separated by dots).');
  }
  const out: Record<string, unknown> = { header };
  try {
    out.claims = publicClaims(normalizeClaims(payload));
  } catch (err) {
    out.claims_error = err instanceof ClaimError ? err.message : String(err);
  }
  const gate = new TokenGate(config);
  if (gate.verifier.configured) {
    try {
      // The server's whole door: signature, claims, and its policy (allowed hosts, required claims).
      await gate.admit(raw);
      out.verification = 'valid for this server configuration';
    } catch (err) {
      out.verification = `INVALID: ${err instanceof ToolError ? err.message : String(err)}`;
    }
  } else {
    out.verification = 'not checked: set MCP_JWT_SECRET or MCP_JWT_JWKS_URL to verify';
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

export async function runJwtCommand(config: Config): Promise<void> {
  const { command } = config;
  if (command.name === 'jwt-generate') return generate(config, command.options);
  if (command.name === 'jwt-inspect') return inspect(config, command.token);
}
