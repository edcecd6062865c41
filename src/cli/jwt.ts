/**
 * `quilt-mcp jwt generate` makes a signed test token (HS256, for development and tests), filled
 * from the local quilt3 login with --auto-extract; `quilt-mcp jwt inspect <token>` shows a token's
 * header and normalized claims, and whether it verifies against this server's configuration (or a
 * given secret or JWKS). Neither prints a signature or a secret.
 *
 * Exit codes: 2 for a usage mistake (fix the command line), 1 for a failure while doing the work
 * (no quilt3 login, catalog unreachable).
 */
import { randomUUID } from 'node:crypto';
import { ClaimError, normalizeClaims, publicClaims } from '../auth/claims.js';
import { TokenGate } from '../auth/token-policy.js';
import type { Config } from '../config.js';
import { GENERATE_HELP, INSPECT_HELP, type GenerateOptions, type InspectOptions } from './jwt-args.js';
import { ToolError } from '../errors.js';
import { redact, registerSecret } from '../redact.js';

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

function fail(message: string, code: 1 | 2 = 2): never {
  process.stderr.write(`quilt-mcp jwt: ${message}\n`);
  process.exit(code);
}

const isHttpUrl = (u: string) => {
  try {
    return /^https?:$/.test(new URL(u).protocol);
  } catch {
    return false;
  }
};

async function generate(config: Config, o: GenerateOptions): Promise<void> {
  const secret = o.secret ?? config.jwt.secret;
  // Given on the command line, so unknown to the startup registration: never echoed in an error.
  registerSecret(o.secret);
  registerSecret(o['catalog-token']);
  if (o.sub !== undefined && !o.sub.trim()) fail('--sub needs a value.');
  if (!o.sub && !o['auto-extract']) fail(`--sub is required (or --auto-extract, to take it from your quilt3 login).\n\n${GENERATE_HELP}`);
  if (!secret || secret.length < 32) {
    fail('an HS256 secret of at least 32 characters is needed (--secret, MCP_JWT_SECRET, MCP_ENHANCED_JWT_SECRET or MCP_JWT_SECRET_FILE).');
  }
  const tags = list(o.tags)?.map((kv) => {
    const i = kv.indexOf('=');
    if (i < 1) fail(`--tags needs key=value pairs, got "${kv}".`);
    return [kv.slice(0, i), kv.slice(i + 1)] as const;
  });
  // The catalog signs scope as one space-separated string (OAuth style); commas are accepted too.
  const scope = o.scope === undefined ? undefined : o.scope.split(/[\s,]+/).filter(Boolean).join(' ');
  if (scope === '') fail('--scope needs at least one scope, e.g. --scope "read write".');
  const level = o.level?.trim();
  if (level === '') fail('--level needs a value, e.g. --level read.');
  const expiresIn = Number(o['expires-in'] ?? 3600);
  if (!Number.isInteger(expiresIn) || expiresIn <= 0) fail('--expires-in must be a positive number of seconds.');
  for (const name of ['catalog-url', 'registry-url'] as const) {
    const u = o[name];
    if (u !== undefined && !isHttpUrl(u)) fail(`--${name} must be an http(s) URL such as https://example.com.`);
  }
  // Checked before any network call: a mistake above should not cost a token refresh.
  const found = o['auto-extract'] ? await (await import('./quilt3-extract.js')).extractFromQuilt3(config, o) : undefined;
  if (found) {
    registerSecret(found.catalogToken);
    // stderr, so that TOKEN=$(quilt-mcp jwt generate ...) still captures only the token.
    process.stderr.write(
      `quilt-mcp jwt: from your quilt3 login: sub ${found.sub}, catalog ${found.catalogUrl ?? '(none)'}, registry ${found.registryUrl ?? '(none)'}\n`,
    );
  }
  const catalogToken = o['catalog-token'] ?? found?.catalogToken;
  const catalogUrl = o['catalog-url'] ?? found?.catalogUrl;
  const registryUrl = o['registry-url'] ?? found?.registryUrl;
  const claims: Record<string, unknown> = {
    sub: o.sub ?? found?.sub,
    ...(o['role-arn'] ? { role_arn: o['role-arn'] } : {}),
    ...(o.roles ? { roles: list(o.roles) } : {}),
    ...(tags ? { session_tags: Object.fromEntries(tags) } : {}),
    ...(o.buckets ? { buckets: list(o.buckets) } : {}),
    ...(o.permissions ? { permissions: list(o.permissions) } : {}),
    ...(catalogToken ? { catalog_token: catalogToken } : {}),
    ...(catalogUrl ? { catalog_url: catalogUrl } : {}),
    ...(registryUrl ? { registry_url: registryUrl } : {}),
    ...(o.enhanced ? { token_type: 'enhanced' } : {}),
    ...(scope ? { scope } : {}),
    ...(level ? { level } : {}),
  };
  // Defaults from this server's configuration, so the token passes its own kid/iss/aud checks.
  const kid = o.kid ?? config.jwt.kid;
  const issuer = o.issuer ?? config.jwt.issuers[0];
  const audience = o.audience ?? config.jwt.audiences[0];
  const { SignJWT } = await import('jose');
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })
    .setIssuedAt()
    // A unique id per token, as issued tokens carry; the server does not track ids (no replay list).
    .setJti(randomUUID())
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
}

/** The token of `jwt inspect`: the argument, stdin for "-", else MCP_JWT_TOKEN. */
async function tokenToInspect(config: Config, token: string | undefined): Promise<string> {
  if (token === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (!text) fail('no token on stdin ("-" reads the token from stdin).');
    return text;
  }
  const raw = token ?? config.jwt.token;
  if (!raw) fail(`a token is needed: quilt-mcp jwt inspect <token> (or --token, "-" for stdin, or set MCP_JWT_TOKEN).\n\n${INSPECT_HELP}`);
  return raw;
}

async function inspect(config: Config, options: InspectOptions): Promise<void> {
  if (options.jwksUrl !== undefined && !isHttpUrl(options.jwksUrl)) fail('--jwks-url must be an http(s) URL such as https://idp.example.com/.well-known/jwks.json.');
  if (options.secret !== undefined && options.secret.length === 0) fail('--secret needs a value.');
  registerSecret(options.secret);
  const raw = await tokenToInspect(config, options.token);
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
  // A given key replaces the configured one (and pins the algorithm as the server would); every
  // other rule (issuer, audience, kid, allowed hosts, required claims) stays this server's.
  const given = options.secret !== undefined ? '--secret' : options.jwksUrl !== undefined ? '--jwks-url' : undefined;
  const gateConfig: Config = given ? { ...config, jwt: { ...config.jwt, secret: options.secret, jwksUrl: options.jwksUrl } } : config;
  const gate = new TokenGate(gateConfig);
  if (gate.verifier.configured) {
    try {
      // The server's whole door: signature, claims, and its policy (allowed hosts, required claims).
      await gate.admit(raw);
      out.verification = given ? `valid with the key from ${given} and this server's other rules` : 'valid for this server configuration';
    } catch (err) {
      out.verification = `INVALID: ${err instanceof ToolError ? err.message : String(err)}`;
    }
  } else {
    out.verification = 'not checked: set MCP_JWT_SECRET or MCP_JWT_JWKS_URL, or pass --secret or --jwks-url, to verify';
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

export async function runJwtCommand(config: Config): Promise<void> {
  const { command } = config;
  try {
    if (command.name === 'jwt-generate') return await generate(config, command.options);
    if (command.name === 'jwt-inspect') return await inspect(config, command);
  } catch (err) {
    // A failure while doing the work (no quilt3 login, catalog unreachable): what and how to fix
    // it, never a stack trace, and redacted in case a message quotes something it should not.
    if (err instanceof ToolError) fail(err.text, 1);
    fail(redact(err instanceof Error ? err.message : String(err)), 1);
  }
}
