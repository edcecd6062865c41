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
import { ClaimError, EXTERNAL_ID, normalizeClaims, publicClaims, ROLE_ARN } from '../auth/claims.js';
import { TokenGate } from '../auth/token-policy.js';
import type { Config } from '../config.js';
import { INSPECT_HELP, type GenerateOptions, type InspectOptions } from './jwt-args.js';
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

/** The user of a token when neither --sub nor a quilt3 login names one (jwt_helper also signs a placeholder). */
export const DEFAULT_SUB = 'mcp-test-user';

/** The claim a generate option fills, for messages when the server's rules refuse it. */
const OPTION_OF_CLAIM: Record<string, string> = {
  role_arn: '--role-arn',
  external_id: '--external-id',
  session_tags: '--tags/--session-tags',
  roles: '--roles',
  buckets: '--buckets',
  permissions: '--permissions',
  catalog_url: '--catalog-url',
  registry_url: '--registry-url',
  sub: '--sub',
  scope: '--scope',
};

/** Why the server would refuse this role ARN, with the fix; undefined when it would take it. */
function roleArnProblem(arn: string): string | undefined {
  if (ROLE_ARN.test(arn)) return undefined;
  const account = /^arn:aws[a-z-]*:iam::(\d*):role\//.exec(arn)?.[1];
  const fixed = account !== undefined ? arn.replace(`::${account}:`, '::123456789012:') : 'arn:aws:iam::123456789012:role/NAME';
  const why =
    account !== undefined && account.length !== 12
      ? `its account id "${account}" has ${account.length} digits; AWS account ids have 12`
      : 'it is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)';
  return `--role-arn "${arn}" would be refused by the server as a malformed role_arn: ${why}. Use the role's real ARN, e.g. ${fixed}.`;
}

/** Session tags from --tags (k=v,...) and --session-tags (a JSON object); problems are pushed. */
function sessionTags(o: GenerateOptions, problems: string[]): Record<string, string> | undefined {
  if (o.tags !== undefined && o['session-tags'] !== undefined) problems.push('give --tags or --session-tags, not both.');
  if (o['session-tags'] !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(o['session-tags']);
    } catch {
      problems.push('--session-tags must be a JSON object, e.g. --session-tags \'{"team":"data"}\'.');
      return undefined;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push('--session-tags must be a JSON object of tag names and values, e.g. \'{"team":"data"}\'.');
      return undefined;
    }
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  }
  const pairs = list(o.tags)?.map((kv) => {
    const i = kv.indexOf('=');
    if (i < 1) problems.push(`--tags needs key=value pairs, got "${kv}".`);
    return [kv.slice(0, i), kv.slice(i + 1)] as const;
  });
  return pairs ? Object.fromEntries(pairs) : undefined;
}

async function generate(config: Config, o: GenerateOptions): Promise<void> {
  const secret = o.secret ?? config.jwt.secret;
  // Given on the command line, so unknown to the startup registration: never echoed in an error.
  registerSecret(o.secret);
  registerSecret(o['catalog-token']);
  if (o.sub !== undefined && !o.sub.trim()) fail('--sub needs a value.');
  // Every mistake at once, before any network call: a mistake should not cost a token refresh.
  const problems: string[] = [];
  if (!secret) {
    problems.push('an HS256 secret is needed: --secret S (at least 32 characters; e.g. --secret "$(openssl rand -hex 32)", and the same MCP_JWT_SECRET for the server), or set MCP_JWT_SECRET, MCP_ENHANCED_JWT_SECRET or MCP_JWT_SECRET_FILE.');
  } else if (secret.length < 32) {
    const from = o.secret !== undefined ? '--secret' : 'the configured secret';
    problems.push(
      `${from} is ${secret.length} characters; the server refuses HS256 secrets under 32 characters (RFC 7518 3.2: at least the hash's 256 bits), so it could not verify this token. ` +
        'Use a longer one, e.g. --secret "$(openssl rand -hex 32)", and give the server the same MCP_JWT_SECRET.',
    );
  }
  const roleProblem = o['role-arn'] !== undefined ? roleArnProblem(o['role-arn']) : undefined;
  if (roleProblem) problems.push(roleProblem);
  if (o['external-id'] !== undefined && !EXTERNAL_ID.test(o['external-id'])) {
    problems.push('--external-id must be 2 to 1224 characters of letters, digits and +=,.@:/-_ (what AWS STS accepts).');
  }
  if (o['external-id'] !== undefined && o['role-arn'] === undefined) problems.push('--external-id goes with --role-arn (it is passed when that role is assumed).');
  const tags = sessionTags(o, problems);
  // The catalog signs scope as one space-separated string (OAuth style); commas are accepted too.
  const scope = o.scope === undefined ? undefined : o.scope.split(/[\s,]+/).filter(Boolean).join(' ');
  if (scope === '') problems.push('--scope needs at least one scope, e.g. --scope "read write".');
  const level = o.level?.trim();
  if (level === '') problems.push('--level needs a value, e.g. --level read.');
  if (o['expires-in'] !== undefined && o.expiry !== undefined && o['expires-in'] !== o.expiry) problems.push('give --expires-in or --expiry (the same setting), not both.');
  const expiresIn = Number(o['expires-in'] ?? o.expiry ?? 3600);
  if (!Number.isInteger(expiresIn) || expiresIn <= 0) problems.push(`${o.expiry !== undefined ? '--expiry' : '--expires-in'} must be a positive whole number of seconds, e.g. 3600.`);
  for (const name of ['catalog-url', 'registry-url'] as const) {
    const u = o[name];
    if (u !== undefined && !isHttpUrl(u)) problems.push(`--${name} must be an http(s) URL such as https://example.com.`);
  }
  if (problems.length === 1) fail(problems[0]!);
  if (problems.length > 1) fail(`${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);

  // The quilt3 login: required with --auto-extract; without it, used when --sub is not given and a login exists.
  const extract = async () => (await import('./quilt3-extract.js')).extractFromQuilt3(config, o);
  let found: Awaited<ReturnType<typeof extract>> | undefined;
  if (o['auto-extract']) found = await extract();
  else if (o.sub === undefined) {
    try {
      found = await extract();
    } catch (err) {
      const why = err instanceof ToolError ? err.message : redact(err instanceof Error ? err.message : String(err));
      process.stderr.write(`quilt-mcp jwt: no --sub, and the quilt3 login gave no user (${why.replace(/\.$/, '')}); sub is "${DEFAULT_SUB}". Pass --sub to choose it.\n`);
    }
  }
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
    sub: o.sub ?? found?.sub ?? DEFAULT_SUB,
    ...(o['role-arn'] ? { role_arn: o['role-arn'] } : {}),
    ...(o['external-id'] ? { external_id: o['external-id'] } : {}),
    ...(o.roles ? { roles: list(o.roles) } : {}),
    ...(tags ? { session_tags: tags } : {}),
    ...(o.buckets ? { buckets: list(o.buckets) } : {}),
    ...(o.permissions ? { permissions: list(o.permissions) } : {}),
    ...(catalogToken ? { catalog_token: catalogToken } : {}),
    ...(catalogUrl ? { catalog_url: catalogUrl } : {}),
    ...(registryUrl ? { registry_url: registryUrl } : {}),
    ...(o.enhanced ? { token_type: 'enhanced' } : {}),
    ...(scope ? { scope } : {}),
    ...(level ? { level } : {}),
  };
  // One clock reading for both, so exp - iat is exactly the lifetime asked for.
  const issuedAt = Math.floor(Date.now() / 1000);
  const expiresAt = issuedAt + expiresIn;
  try {
    // The server's own claim rules: a token it would refuse is not signed.
    normalizeClaims({ ...claims, exp: expiresAt }, { rolesClaim: config.jwt.rolesClaim });
  } catch (err) {
    if (!(err instanceof ClaimError)) throw err;
    fail(`${OPTION_OF_CLAIM[err.claim] ?? err.claim}: the server would refuse this token: ${err.message}`);
  }
  // Defaults from this server's configuration, so the token passes its own kid/iss/aud checks.
  const kid = o.kid ?? config.jwt.kid;
  const issuer = o.issuer ?? config.jwt.issuers[0];
  const audience = o.audience ?? config.jwt.audiences[0];
  const { SignJWT } = await import('jose');
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })
    .setIssuedAt(issuedAt)
    // A unique id per token, as issued tokens carry; the server does not track ids (no replay list).
    .setJti(randomUUID())
    .setExpirationTime(expiresAt);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
}

/** 3725 -> "1h 2m 5s". */
function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const parts = [h ? `${h}h` : '', m ? `${m}m` : '', `${seconds % 60}s`].filter(Boolean);
  return parts.join(' ');
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
  if (typeof payload.exp === 'number') {
    const left = Math.round(payload.exp - Date.now() / 1000);
    out.expires = left >= 0 ? `in ${duration(left)}` : `expired ${duration(-left)} ago`;
  }
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
  if (options.secret !== undefined && options.secret.length < 32) {
    // jwt_helper's examples use such secrets ("test-secret"); the server never accepts them.
    out.verification =
      `INVALID: --secret is ${options.secret.length} characters; this server refuses HS256 secrets under 32 characters (RFC 7518 3.2), so it accepts no token signed with it. ` +
      'Sign and check tokens with the server\'s own secret, e.g. --secret "$MCP_JWT_SECRET" (32+ characters; openssl rand -hex 32 makes one).';
  } else if (gate.verifier.configured) {
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
