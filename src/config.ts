/**
 * The one module that reads the environment and argv. Everything else gets a `Config`.
 *
 * `loadConfig` is pure (env, argv, platform and home directory are arguments, and so is the reader
 * of MCP_JWT_SECRET_FILE), so tests can build the configuration of a macOS or Windows machine on Linux.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ArgsError, parseJwtArgs, type JwtCommand } from './cli/jwt-args.js';
import { parseLocalPath } from './local/paths.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from './core/log.js';
import { redact } from './core/redact.js';

/**
 * Groups of tools MCP_TOOLSETS can name. `admin` tools (catalog administration) are offered only
 * when MCP_TOOLSETS names `admin`; `diagnostics` (operators' token and cache checks) in JWT mode,
 * or when MCP_TOOLSETS names it.
 */
export const TOOLSETS = ['auth', 'buckets', 'packages', 'search', 'catalog', 'athena', 'diagnostics', 'admin'] as const;
export type Toolset = (typeof TOOLSETS)[number];

export type Command =
  | { name: 'serve' }
  | { name: 'help' }
  | { name: 'version' }
  | JwtCommand;

export type OwnIdentitySource = 'environment' | 'web identity' | 'container credentials' | 'instance metadata';

/** The first configured container identity source, in the order the AWS SDK's own chain tries them. */
function ownIdentitySource(env: Env): OwnIdentitySource | undefined {
  if (clean(env.AWS_ACCESS_KEY_ID) && clean(env.AWS_SECRET_ACCESS_KEY)) return 'environment';
  if (clean(env.AWS_WEB_IDENTITY_TOKEN_FILE) && clean(env.AWS_ROLE_ARN)) return 'web identity';
  if (clean(env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) || clean(env.AWS_CONTAINER_CREDENTIALS_FULL_URI)) return 'container credentials';
  const imdsOff = clean(env.AWS_EC2_METADATA_DISABLED);
  return imdsOff !== undefined && imdsOff.toLowerCase() !== 'false' ? undefined : 'instance metadata';
}

export interface AwsSettings {
  /** Region from AWS_REGION / AWS_DEFAULT_REGION; undefined lets the auth service decide. */
  region: string | undefined;
  profile: string | undefined;
  /** True when AWS_ACCESS_KEY_ID is set (the value itself is never kept here). */
  envCredentials: boolean;
  endpoints: { s3: string | undefined; sts: string | undefined; athena: string | undefined; ssm: string | undefined };
  /**
   * JWT mode: which container identity source is configured for the server's own STS calls (the
   * first of environment, web identity, container credentials, instance metadata), or undefined.
   */
  ownIdentity: OwnIdentitySource | undefined;
  requestChecksumCalculation: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED' | undefined;
  responseChecksumValidation: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED' | undefined;
}

/** Operator defaults for Athena queries; a tool's own `workgroup` argument wins over them. */
export interface AthenaSettings {
  workgroup: string | undefined;
  outputLocation: string | undefined;
}

export interface JwtSettings {
  secret: string | undefined;
  /**
   * MCP_JWT_SECRET_SSM_PARAMETER (the catalog stacks' MCP_ENHANCED_JWT_SECRET_SSM_PARAMETER): an SSM
   * parameter holding the HS256 secret, read once at start with the server's own identity
   * (auth/ssm-secret.ts), which then sets `secret`.
   */
  secretSsmParameter: string | undefined;
  jwksUrl: string | undefined;
  issuers: string[];
  audiences: string[];
  kid: string | undefined;
  requireEnhanced: boolean;
  /** Refuse tokens without a catalog_token at the door (MCP_JWT_REQUIRE_CATALOG). */
  requireCatalog: boolean;
  sessionDurationSeconds: number;
  roleArnTemplate: string | undefined;
  /**
   * MCP_JWT_ROLES_CLAIM: where a token carries its roles when not in `roles`, as a dotted path
   * (Keycloak: realm_access.roles; Okta: groups).
   */
  rolesClaim: string | undefined;
  /** Stdio in JWT mode: the token of the one user. */
  token: string | undefined;
  maxTokenBytes: number;
  clockToleranceSeconds: number;
  /**
   * OAuth (RFC 9728): this server's resource identifier (MCP_RESOURCE_URL) and the authorization
   * servers it names in its protected-resource metadata (MCP_OAUTH_AUTHORIZATION_SERVERS), whose
   * signing keys are discovered from their metadata when MCP_JWT_JWKS_URL is not set.
   */
  resource: string | undefined;
  authorizationServers: string[];
  /**
   * MCP_JWT_WEB_IDENTITY: assume the token's role with sts:AssumeRoleWithWebIdentity, the caller's
   * token as the credential, instead of sts:AssumeRole with the server's own identity.
   */
  webIdentity: boolean;
  /**
   * MCP_QUILT_API_KEYS: a bearer that is a Quilt API key (qk_...) is accepted, the user and their AWS
   * credentials coming from the catalog's registry (QUILT_CATALOG_URL), which checks the key.
   */
  quiltApiKeys: boolean;
}

export interface Config {
  command: Command;
  mode: 'desktop' | 'jwt';
  transport: 'stdio' | 'http';
  http: {
    host: string;
    port: number;
    allowedHosts: string[];
    /** Browser origins allowed to call (CORS and the Origin check), beyond those derived from the hosts. */
    allowedOrigins: string[];
    maxBodyBytes: number;
    /** Open connections per process; more are answered 503 and closed. */
    maxConnections: number;
    /** Requests in progress per process; more are answered 503. Each caller may hold a quarter of them. */
    maxInflight: number;
    /**
     * How long an idle keep-alive connection stays open: longer than load balancers' idle timeouts
     * (AWS ALB: 60 s), so that the balancer, not the server, closes it (else: intermittent 502s).
     */
    keepAliveTimeoutMs: number;
    /** Time to receive a request's headers; ordered after the keep-alive timeout (Node issue 27363). */
    headersTimeoutMs: number;
    /** On SIGTERM: how long in-flight requests may take to finish before the process exits anyway. */
    drainTimeoutMs: number;
    /** On SIGTERM: how long to keep accepting, answering readiness with 503, before closing the listener (Kubernetes). */
    drainDelayMs: number;
  };
  /** `text` (default) or `json`: every log line as one JSON object, plus one line per HTTP request. */
  logFormat: LogFormat;
  /**
   * Prometheus metrics at /metrics: off unless MCP_METRICS_PORT (a listener of their own) or
   * MCP_METRICS_TOKEN (a bearer the scraper sends) is set; never on the MCP port without the token.
   */
  metrics: { port: number | undefined; token: string | undefined };
  logLevel: LogLevel;
  /**
   * Which tools to offer: read-only, and/or only some toolsets (auth tools are always offered); and
   * how long a call may go without progress before it is stopped with a timeout (MCP_CALL_TIMEOUT).
   */
  tools: { readOnly: boolean; toolsets: Toolset[] | undefined; callTimeoutMs: number };
  aws: AwsSettings;
  quilt: {
    /** quilt3's data directory (auth.json, credentials.json, config.yml), found as quilt3 finds it. */
    dataDir: string;
    catalogUrl: string | undefined;
    /** Desktop mode: a Quilt API key (QUILT_API_KEY, qk_...) used instead of the quilt3 login session. */
    apiKey: string | undefined;
    /** Hosts a token's catalog_url / registry_url may point at (JWT mode). */
    allowedHosts: string[];
  };
  athena: AthenaSettings;
  jwt: JwtSettings;
  /** Key for sealing cursors, shared by replicas (MCP_CURSOR_SECRET); else the JWT secret; else random per process. */
  cursorSecret: string | undefined;
  /**
   * Desktop mode's local files: the folders granted by QUILT_MCP_ROOTS and by folder arguments
   * (`quilt-mcp /data/a /data/b`, how an MCP bundle passes its "Folders" setting), absolute and
   * normalized. quilt3's local registry and install location are granted besides (auth/desktop.ts).
   */
  local: { roots: Array<{ path: string; source: string }>; platform: Platform };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface Platform {
  platform: NodeJS.Platform;
  homedir: string;
}

/** A variable is unset when absent, blank, or an MCPB placeholder the user left empty. */
function clean(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '' || /^\$\{user_config\.[^}]*\}$/.test(v)) return undefined;
  return v;
}

/**
 * Makes the process environment say what the configuration says, before any library reads it:
 * an unfilled MCPB placeholder (`AWS_PROFILE='${user_config.aws_profile}'`) is removed, since the
 * AWS SDK would otherwise look for a profile of that name and find no credentials; and the SDK's
 * multi-line Node-version warning is turned off (quilt-mcp states its own Node requirement).
 */
export function prepareProcessEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '' && clean(value) === undefined) delete env[name];
  }
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

const boolFromText = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off']))
  .transform((s) => ['true', '1', 'yes', 'on'].includes(s));

/**
 * A call that makes no progress for this long is stopped (seconds). Longer than the 60 s most MCP
 * clients wait (they cancel first, and the call stops then); it bounds the calls of clients that
 * wait longer, and of HTTP callers.
 */
export const DEFAULT_CALL_TIMEOUT_SECONDS = 120;

const intFromText = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const urlText = z
  .string()
  .url('must be a URL such as https://example.com')
  .refine((s) => /^https?:\/\//i.test(s), 'must start with http:// or https://')
  .transform((s) => s.replace(/\/+$/, ''));

const LOOPBACK_HOST = /^(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;

/**
 * An OAuth URL (issuer, resource): https, or http on a loopback host (local issuers and tests); no
 * fragment. Kept exactly as written: issuers are compared as strings, and some end with "/".
 */
const oauthUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return !u.hash && !u.username && (u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK_HOST.test(u.hostname)));
  } catch {
    return false;
  }
}, 'must be https:// URLs (http:// only on 127.0.0.1 or localhost), without a fragment');

/** A browser origin: scheme://host[:port], nothing else. */
const originText = z
  .string()
  .refine((s) => {
    try {
      const u = new URL(s);
      return /^https?:$/.test(u.protocol) && u.pathname === '/' && !u.search && !u.hash && !u.username && !/\/[^/]/.test(s.slice(u.protocol.length + 2));
    } catch {
      return false;
    }
  }, 'must be origins such as https://catalog.example.com (scheme, host and port only)')
  .transform((s) => new URL(s).origin);

const listText = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

const checksumMode = z
  .string()
  .transform((s) => s.toUpperCase())
  .pipe(z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']));

type Env = Record<string, string | undefined>;

/** Reads one variable through a zod schema; a bad value names the variable. */
function read<T>(env: Env, name: string, schema: z.ZodType<T, string>): T | undefined {
  const raw = clean(env[name]);
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const why = parsed.error.issues[0]?.message ?? 'invalid value';
    // A secret is never echoed, whatever its length (redact() ignores short registered secrets).
    const got = isSecretName(name)
      ? `got ${raw.length} character${raw.length === 1 ? '' : 's'}; the value is not shown`
      : `got "${shorten(redact(raw))}"`;
    throw new ConfigError(`${name} is invalid: ${why} (${got}).`);
  }
  return parsed.data;
}

/** Variables whose value is a credential: MCP_JWT_SECRET, MCP_JWT_TOKEN, AWS_SECRET_ACCESS_KEY, ... */
export function isSecretName(name: string): boolean {
  return /SECRET|TOKEN|PASSWORD/i.test(name) || /(?:_KEY|KEY_ID)$/i.test(name);
}

/**
 * A variable with a second name: the Quilt catalog's deployments call the HS256 secret and key id
 * MCP_ENHANCED_JWT_SECRET / MCP_ENHANCED_JWT_KID, so a stack can hand the same values to both. Both
 * set to the same value is fine; to different values, it is unknowable which one the operator meant.
 * Returns the name that was set (for messages), or undefined.
 */
function aliasOf(env: Env, name: string, alias: string): string | undefined {
  const a = clean(env[name]);
  const b = clean(env[alias]);
  if (a !== undefined && b !== undefined && a !== b) {
    throw new ConfigError(
      `${name} and ${alias} are both set, to different values (not shown). They name the same setting: set only one, or give both the same value.`,
    );
  }
  return a !== undefined ? name : b !== undefined ? alias : undefined;
}

/** Reads a file named by a variable; an unreadable file names the variable and the path, never the content. */
export type ReadSecretFile = (file: string) => string;

const readSecretFileSync: ReadSecretFile = (file) => readFileSync(file, 'utf8');

const SECRET_SCHEMA = z.string().min(32, 'must be at least 32 characters');

/**
 * The HS256 secret: MCP_JWT_SECRET, its alias MCP_ENHANCED_JWT_SECRET, or the content of the file
 * MCP_JWT_SECRET_FILE (a container secret mount) without its trailing newline. Setting a file and a
 * value is an error rather than a silent precedence: a stale value would otherwise win unnoticed.
 */
function readSecret(env: Env, readSecretFile: ReadSecretFile): { secret: string | undefined; source: string } {
  const named = aliasOf(env, 'MCP_JWT_SECRET', 'MCP_ENHANCED_JWT_SECRET');
  const file = clean(env.MCP_JWT_SECRET_FILE);
  if (file === undefined) {
    return { secret: named ? read(env, named, SECRET_SCHEMA) : undefined, source: named ?? 'MCP_JWT_SECRET' };
  }
  if (named) {
    throw new ConfigError(`MCP_JWT_SECRET_FILE and ${named} are both set: set only one (the file is for container secret mounts).`);
  }
  let content: string;
  try {
    content = readSecretFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'read error');
    throw new ConfigError(`MCP_JWT_SECRET_FILE names ${file}, which cannot be read (${why}). Mount the secret there, or fix the path.`);
  }
  // `echo secret > file` and most secret stores end the file with a newline that is not part of it.
  const secret = content.replace(/\r?\n$/, '');
  const parsed = SECRET_SCHEMA.safeParse(secret);
  if (!parsed.success) {
    throw new ConfigError(
      `MCP_JWT_SECRET_FILE is invalid: the secret in ${file} ${parsed.error.issues[0]?.message ?? 'is invalid'} (got ${secret.length} character${secret.length === 1 ? '' : 's'}; the value is not shown).`,
    );
  }
  return { secret: parsed.data, source: 'MCP_JWT_SECRET_FILE' };
}

function shorten(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/**
 * An unexpected command-line argument, safe to print: a "--name=value" shows only its name (the
 * value may be a secret, e.g. --jwt-secret=...), anything else is redacted and shortened.
 */
function describeArg(arg: string): string {
  const eq = arg.indexOf('=');
  if (arg.startsWith('-') && eq > 0) return `${shorten(redact(arg.slice(0, eq)))}=...`;
  return shorten(redact(arg));
}

/**
 * quilt3 keeps its session in platformdirs' user_data_dir("Quilt", "QuiltData"). quilt3 asks for
 * `platformdirs>=2` with no upper bound, so a current install has the newest release; these are
 * the rules of platformdirs 4.12.2 (older releases differ where noted):
 * - Unix and macOS (_xdg.py XDGMixin): $XDG_DATA_HOME stripped, used only when absolute. macOS
 *   honours it since 4.6.0; before 4.12 a relative value was used as is.
 * - macOS otherwise: ~/Library/Application Support/Quilt. Linux: ~/.local/share/Quilt.
 * - Windows (windows.py get_win_folder): WIN_PD_OVERRIDE_LOCAL_APPDATA when fully qualified (since
 *   4.8.0), else the Local AppData known folder, which %LOCALAPPDATA% names, + QuiltData\Quilt.
 */
export function quilt3DataDir(env: Env, { platform, homedir }: Platform): string {
  if (platform === 'win32') {
    const override = clean(env.WIN_PD_OVERRIDE_LOCAL_APPDATA);
    // platformdirs' _is_fully_qualified: a drive with a rooted path, or a UNC path.
    const qualified = override && /^(?:[A-Za-z]:[\\/]|[\\/]{2})/.test(override) ? override : undefined;
    const local = qualified ?? clean(env.LOCALAPPDATA) ?? path.win32.join(homedir, 'AppData', 'Local');
    return path.win32.join(local, 'QuiltData', 'Quilt');
  }
  const xdg = clean(env.XDG_DATA_HOME);
  if (xdg && path.posix.isAbsolute(xdg)) return path.posix.join(xdg, 'Quilt');
  if (platform === 'darwin') return path.posix.join(homedir, 'Library', 'Application Support', 'Quilt');
  return path.posix.join(homedir, '.local', 'share', 'Quilt');
}

/** A folder argument: an absolute path, `~/...` or a file URI (Windows: a drive or a share). */
const FOLDER_ARG = /^(?:\/|~(?:$|[\/\\])|file:|[A-Za-z]:[\/\\]|\\\\)/;

function parseArgs(argv: string[]): { command: Command; http?: boolean; port?: string; host?: string; folders: string[] } {
  const args = [...argv];
  const out: { command: Command; http?: boolean; port?: string; host?: string; folders: string[] } = {
    command: { name: 'serve' },
    folders: [],
  };
  if (args[0] === 'jwt') {
    try {
      return { command: parseJwtArgs(args.slice(1), describeArg), folders: [] };
    } catch (err) {
      if (err instanceof ArgsError) throw new ConfigError(err.message);
      throw err;
    }
  }
  if (args[0] === 'serve') args.shift();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--help' || a === '-h' || a === 'help') out.command = { name: 'help' };
    else if (a === '--version' || a === '-v') out.command = { name: 'version' };
    else if (a === '--http') out.http = true;
    else if (a === '--stdio') out.http = false;
    else if (a === '--port' || a.startsWith('--port=')) {
      out.port = a.includes('=') ? a.slice(7) : args[++i];
      if (out.port === undefined) throw new ConfigError('--port needs a number.');
    } else if (a === '--host' || a.startsWith('--host=')) {
      out.host = a.includes('=') ? a.slice(7) : args[++i];
      if (out.host === undefined) throw new ConfigError('--host needs an address.');
    } else if (FOLDER_ARG.test(a)) out.folders.push(a);
    // An MCP bundle's "Folders" setting left empty arrives as its placeholder.
    else if (clean(a) === undefined) continue;
    else throw new ConfigError(`Unknown argument "${describeArg(a)}". Run "quilt-mcp --help".`);
  }
  return out;
}

/** QUILT_MCP_ROOTS (a comma-separated list) and folder arguments, each made absolute; a bad one names where it came from. */
function localRoots(env: Env, folders: readonly string[], platform: Platform): Array<{ path: string; source: string }> {
  const p = { platform: platform.platform, homedir: platform.homedir };
  const one = (entry: string, source: string) => {
    try {
      return { path: parseLocalPath(entry, p), source };
    } catch (err) {
      throw new ConfigError(`${source} is invalid: ${(err as Error).message}`);
    }
  };
  const listed = (read(env, 'QUILT_MCP_ROOTS', listText) ?? []).map((e) => one(e, 'QUILT_MCP_ROOTS'));
  return [...listed, ...folders.map((f) => one(f, 'the folder arguments'))];
}

export function loadConfig(
  argv: string[] = process.argv.slice(2),
  env: Env = process.env,
  platform: Platform = { platform: process.platform, homedir: os.homedir() },
  readSecretFile: ReadSecretFile = readSecretFileSync,
): Config {
  const args = parseArgs(argv);
  const mode = read(env, 'MCP_REQUIRE_JWT', boolFromText) ? 'jwt' : 'desktop';
  // FASTMCP_TRANSPORT: the Python server's switch, which deployments made for it still set.
  const transportVar = aliasOf(env, 'MCP_TRANSPORT', 'FASTMCP_TRANSPORT') ?? 'MCP_TRANSPORT';
  const transportEnv = read(
    env,
    transportVar,
    z
      .string()
      .transform((s) => s.toLowerCase())
      .pipe(z.enum(['stdio', 'http', 'streamable-http'], { message: 'must be http or stdio (quilt-mcp serves Streamable HTTP, not the older SSE transport)' }))
      .transform((s) => (s === 'streamable-http' ? 'http' : s)),
  );
  const transport = args.http === undefined ? (transportEnv ?? 'stdio') : args.http ? 'http' : 'stdio';
  const portSchema = intFromText(0, 65535);
  const port =
    args.port !== undefined
      ? (() => {
          const p = portSchema.safeParse(args.port);
          if (!p.success) throw new ConfigError(`--port is invalid: ${p.error.issues[0]?.message}.`);
          return p.data;
        })()
      : (read(env, 'PORT', portSchema) ?? 3000);
  // Desktop mode serves one person: never listen beyond loopback there.
  const hostEnv = read(env, 'MCP_HOST', z.string());
  const host = mode === 'desktop' ? '127.0.0.1' : (args.host ?? hostEnv ?? '0.0.0.0');
  if (mode === 'desktop' && (args.host ?? hostEnv) && (args.host ?? hostEnv) !== '127.0.0.1') {
    throw new ConfigError(
      'MCP_HOST/--host can only be changed in JWT mode: desktop mode serves one person and binds 127.0.0.1.',
    );
  }

  const { secret, source: secretVar } = readSecret(env, readSecretFile);
  const ssmVar = aliasOf(env, 'MCP_JWT_SECRET_SSM_PARAMETER', 'MCP_ENHANCED_JWT_SECRET_SSM_PARAMETER');
  const secretSsmParameter = ssmVar
    ? read(env, ssmVar, z.string().regex(/^(?:arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter)?\/?[\w.\/-]{1,2048}$/, 'must be an SSM parameter name such as /quilt/mcp/jwt-secret, or its ARN'))
    : undefined;
  if (secretSsmParameter && secret !== undefined) {
    // As with the file: a stale value must not win unnoticed.
    throw new ConfigError(`${ssmVar} and ${secretVar} are both set: set only one (the secret is read from the SSM parameter at start).`);
  }
  const keepAliveSeconds = read(env, 'MCP_KEEP_ALIVE_TIMEOUT', intFromText(1, 3600)) ?? 65;
  const headersSeconds = read(env, 'MCP_HEADERS_TIMEOUT', intFromText(2, 3601)) ?? keepAliveSeconds + 1;
  if (headersSeconds <= keepAliveSeconds) {
    throw new ConfigError(
      `MCP_HEADERS_TIMEOUT (${headersSeconds} s) must be longer than MCP_KEEP_ALIVE_TIMEOUT (${keepAliveSeconds} s): a reused keep-alive connection could otherwise be cut while the balancer sends on it.`,
    );
  }
  const metricsPort = read(env, 'MCP_METRICS_PORT', intFromText(0, 65535));
  const metricsToken = read(env, 'MCP_METRICS_TOKEN', z.string().min(16, 'must be at least 16 characters'));
  const kidVar = aliasOf(env, 'MCP_JWT_KID', 'MCP_ENHANCED_JWT_KID');
  const jwksUrl = read(env, 'MCP_JWT_JWKS_URL', urlText);
  const resource = read(env, 'MCP_RESOURCE_URL', oauthUrl);
  const authorizationServers = read(env, 'MCP_OAUTH_AUTHORIZATION_SERVERS', listText.pipe(z.array(oauthUrl))) ?? [];

  const config: Config = {
    command: args.command,
    mode,
    transport,
    http: {
      host,
      port,
      allowedHosts: read(env, 'MCP_ALLOWED_HOSTS', listText) ?? [],
      allowedOrigins: (read(env, 'MCP_ALLOWED_ORIGINS', listText.pipe(z.array(originText))) ?? []),
      maxBodyBytes: read(env, 'MCP_MAX_BODY_BYTES', intFromText(1024, 64 * 1024 * 1024)) ?? 1024 * 1024,
      maxConnections: read(env, 'MCP_MAX_CONNECTIONS', intFromText(1, 1_000_000)) ?? 1024,
      maxInflight: read(env, 'MCP_MAX_INFLIGHT', intFromText(4, 1_000_000)) ?? 256,
      keepAliveTimeoutMs: keepAliveSeconds * 1000,
      headersTimeoutMs: headersSeconds * 1000,
      // ECS waits 30 s (stopTimeout) between SIGTERM and SIGKILL by default.
      drainTimeoutMs: (read(env, 'MCP_DRAIN_TIMEOUT', intFromText(1, 3600)) ?? 25) * 1000,
      drainDelayMs: (read(env, 'MCP_DRAIN_DELAY', intFromText(0, 300)) ?? 0) * 1000,
    },
    logFormat: read(env, 'MCP_LOG_FORMAT', z.string().transform((s) => s.toLowerCase()).pipe(z.enum(['text', 'json']))) ?? 'text',
    metrics: { port: metricsPort, token: metricsToken },
    tools: {
      readOnly: read(env, 'MCP_READ_ONLY', boolFromText) ?? false,
      toolsets: read(
        env,
        'MCP_TOOLSETS',
        listText.pipe(
          z.array(
            z.enum(TOOLSETS, {
              message: `toolsets are ${TOOLSETS.join(', ')}`,
            }),
          ),
        ),
      ),
      callTimeoutMs: (read(env, 'MCP_CALL_TIMEOUT', intFromText(1, 86_400)) ?? DEFAULT_CALL_TIMEOUT_SECONDS) * 1000,
    },
    logLevel: read(env, 'MCP_LOG_LEVEL', z.string().transform((s) => s.toLowerCase()).pipe(z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]))) ?? 'info',
    aws: {
      region: read(env, 'AWS_REGION', z.string()) ?? read(env, 'AWS_DEFAULT_REGION', z.string()),
      profile: read(env, 'AWS_PROFILE', z.string()),
      envCredentials: clean(env.AWS_ACCESS_KEY_ID) !== undefined,
      endpoints: {
        s3: read(env, 'AWS_ENDPOINT_URL_S3', urlText) ?? read(env, 'AWS_ENDPOINT_URL', urlText),
        sts: read(env, 'AWS_ENDPOINT_URL_STS', urlText) ?? read(env, 'AWS_ENDPOINT_URL', urlText),
        athena: read(env, 'AWS_ENDPOINT_URL_ATHENA', urlText) ?? read(env, 'AWS_ENDPOINT_URL', urlText),
        ssm: read(env, 'AWS_ENDPOINT_URL_SSM', urlText) ?? read(env, 'AWS_ENDPOINT_URL', urlText),
      },
      ownIdentity: ownIdentitySource(env),
      requestChecksumCalculation: read(env, 'AWS_REQUEST_CHECKSUM_CALCULATION', checksumMode),
      responseChecksumValidation: read(env, 'AWS_RESPONSE_CHECKSUM_VALIDATION', checksumMode),
    },
    quilt: {
      dataDir: quilt3DataDir(env, platform),
      catalogUrl: read(env, 'QUILT_CATALOG_URL', urlText),
      apiKey: read(env, 'QUILT_API_KEY', z.string().regex(/^qk_[A-Za-z0-9._~+/=-]{8,1024}$/, 'must be a Quilt API key (qk_ followed by the secret)')),
      allowedHosts: (read(env, 'QUILT_CATALOG_ALLOWED_HOSTS', listText) ?? []).map((h) => h.toLowerCase()),
    },
    athena: {
      workgroup: read(env, 'ATHENA_WORKGROUP', z.string()),
      outputLocation: read(env, 'ATHENA_OUTPUT_LOCATION', z.string().regex(/^s3:\/\/[^/]+/, 'must be an s3:// URI')),
    },
    jwt: {
      secret,
      secretSsmParameter,
      jwksUrl,
      // An authorization server's identifier is its tokens' iss (RFC 8414), and tokens for this
      // server carry its resource identifier in aud (RFC 8707); explicit settings win.
      issuers: read(env, 'MCP_JWT_ISSUER', listText) ?? authorizationServers,
      audiences: read(env, 'MCP_JWT_AUDIENCE', listText) ?? (resource ? [resource] : []),
      kid: kidVar ? read(env, kidVar, z.string()) : undefined,
      requireEnhanced: read(env, 'MCP_JWT_REQUIRE_ENHANCED', boolFromText) ?? false,
      requireCatalog: read(env, 'MCP_JWT_REQUIRE_CATALOG', boolFromText) ?? false,
      sessionDurationSeconds: Math.min(
        43200,
        Math.max(900, read(env, 'MCP_JWT_SESSION_DURATION', intFromText(0, 10 ** 9)) ?? 3600),
      ),
      roleArnTemplate: read(
        env,
        'MCP_JWT_ROLE_ARN_TEMPLATE',
        z.string().refine((s) => s.startsWith('arn:') && s.includes('{role}'), 'must be an ARN containing {role}'),
      ),
      rolesClaim: read(env, 'MCP_JWT_ROLES_CLAIM', z.string().regex(/^[\w:/-]+(?:\.[\w:/-]+){0,4}$/, 'must be a claim name or a dotted path such as realm_access.roles')),
      token: read(env, 'MCP_JWT_TOKEN', z.string()),
      maxTokenBytes: read(env, 'MCP_JWT_MAX_BYTES', intFromText(512, 1024 * 1024)) ?? 16 * 1024,
      clockToleranceSeconds: read(env, 'MCP_JWT_CLOCK_TOLERANCE', intFromText(0, 300)) ?? 30,
      resource,
      authorizationServers,
      webIdentity: read(env, 'MCP_JWT_WEB_IDENTITY', boolFromText) ?? false,
      quiltApiKeys: read(env, 'MCP_QUILT_API_KEYS', boolFromText) ?? false,
    },
    cursorSecret: read(env, 'MCP_CURSOR_SECRET', z.string().min(32, 'must be at least 32 characters')) ?? secret,
    local: { roots: localRoots(env, args.folders, platform), platform },
  };

  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === port) {
    throw new ConfigError(
      `MCP_METRICS_PORT (${metricsPort}) is the MCP port: give metrics a port of their own, or leave it unset and set MCP_METRICS_TOKEN to serve /metrics on the MCP port to scrapers that send it.`,
    );
  }
  if (config.mode === 'jwt' && config.command.name === 'serve') {
    if (config.jwt.quiltApiKeys && !config.quilt.catalogUrl) {
      throw new ConfigError('MCP_QUILT_API_KEYS needs QUILT_CATALOG_URL: API keys are checked by that catalog\'s registry.');
    }
    if (!secret && !secretSsmParameter && !jwksUrl && authorizationServers.length === 0 && !config.jwt.quiltApiKeys) {
      throw new ConfigError(
        'JWT mode (MCP_REQUIRE_JWT=true) needs a way to verify tokens: set MCP_JWT_SECRET, MCP_JWT_SECRET_FILE or MCP_JWT_SECRET_SSM_PARAMETER (HS256), MCP_JWT_JWKS_URL (RS256/ES256), MCP_OAUTH_AUTHORIZATION_SERVERS (keys found from their metadata), or MCP_QUILT_API_KEYS=true (Quilt API keys).',
      );
    }
    if (authorizationServers.length > 0 && !resource) {
      // The audience tokens must carry cannot come from a request's Host header, which the caller chooses.
      throw new ConfigError(
        'MCP_OAUTH_AUTHORIZATION_SERVERS is set without MCP_RESOURCE_URL: set it to the URL clients use for this server\'s MCP endpoint (e.g. https://mcp.example.com/mcp); tokens must be issued for it (aud).',
      );
    }
    if ((secret || secretSsmParameter) && jwksUrl) {
      throw new ConfigError(`Set only one of ${secretSsmParameter ? ssmVar : secretVar} and MCP_JWT_JWKS_URL: the verification algorithm is pinned by which one is set.`);
    }
    if ((jwksUrl || (!secret && authorizationServers.length > 0)) && config.jwt.audiences.length === 0) {
      // An identity provider signs tokens for every application it serves with the same keys.
      throw new ConfigError(
        'MCP_JWT_JWKS_URL is set without MCP_JWT_AUDIENCE: tokens the identity provider issued for any other application would be accepted. Set MCP_RESOURCE_URL (tokens must then be issued for it), or MCP_JWT_AUDIENCE to the audience (aud) of this server\'s tokens.',
      );
    }
    if (config.jwt.webIdentity && (secret || secretSsmParameter)) {
      // AWS verifies a web identity token itself, against the issuer's published keys: a shared secret cannot be published.
      throw new ConfigError(
        `MCP_JWT_WEB_IDENTITY needs tokens AWS can verify (RS256/ES256 from an OpenID provider, with MCP_JWT_JWKS_URL or MCP_OAUTH_AUTHORIZATION_SERVERS), not HS256 tokens signed with ${secretVar}.`,
      );
    }
    if (config.transport === 'stdio' && !config.jwt.token) {
      throw new ConfigError(
        'JWT mode over stdio takes the token from MCP_JWT_TOKEN, which is not set. To serve many users over HTTP, set MCP_TRANSPORT=http (or pass --http).',
      );
    }

  }
  return config;
}
