/**
 * argv of `quilt-mcp jwt ...`, parsed strictly with node:util parseArgs: an unknown option or a
 * missing value is an error (a typo such as `--bucket` for `--buckets` must not sign a token with
 * no bucket restriction), and every command has `--help`. Errors never echo a value (it may be a
 * secret).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const GENERATE_HELP = `Usage: quilt-mcp jwt generate [--sub USER] [options]
       quilt-mcp jwt generate --auto-extract [options]
Makes a signed HS256 test token for JWT mode (development and tests). Prints only the token.
Takes the command line of jwt_helper.py generate too (--role-arn, --secret, --expiry,
--session-tags, --external-id, --auto-extract, --catalog-token, --issuer, --audience), and refuses
what this server would refuse (a malformed role ARN, a secret under 32 characters) with the reason.

  --sub USER           the user; without it, the user of your quilt3 login (with its catalog
                       token and URLs, as --auto-extract takes them) when there is one, else
                       "mcp-test-user" (said on stderr)
  --auto-extract       take the catalog token, catalog URL, registry URL and user from your quilt3
                       login (\`quilt3 login\`): the session's access token (refreshed if it is
                       about to expire), navigator_url and registryUrl from quilt3's config.yml, and
                       the user name the catalog's \`me\` query returns; fails without a login.
                       Options given here win.
  --secret S           HS256 secret, at least 32 characters (default: MCP_JWT_SECRET,
                       MCP_ENHANCED_JWT_SECRET or the content of MCP_JWT_SECRET_FILE)
  --role-arn ARN       IAM role the server assumes for this user (arn:aws:iam::<12 digits>:role/NAME)
  --external-id ID     sts:ExternalId the server passes when it assumes that role
  --roles a,b          role names (used with MCP_JWT_ROLE_ARN_TEMPLATE)
  --tags k=v,k2=v2     STS session tags
  --session-tags JSON  STS session tags as a JSON object, e.g. '{"team":"data"}'
  --buckets a,b        buckets the token may use (without it: no bucket restriction)
  --permissions p,q    e.g. s3:GetObject,s3:ListBucket
  --catalog-token T    Quilt catalog token
  --catalog-url U      the token's catalog
  --registry-url U     the token's registry
  --issuer I           iss (default: the first of MCP_JWT_ISSUER)
  --audience A         aud (default: the first of MCP_JWT_AUDIENCE)
  --kid K              key id header (default: MCP_JWT_KID or MCP_ENHANCED_JWT_KID)
  --enhanced           token_type "enhanced" (what the Quilt catalog issues)
  --scope "a b"        scope claim, space-separated as the catalog signs it (commas are accepted)
  --level L            level claim, e.g. read, write or admin (the catalog's authorization level)
  --expires-in SECONDS lifetime (default 3600); --expiry SECONDS is the same
  -h, --help           this text

Every token gets a random jti. The server shows scope and level (jwt inspect, jwt_diagnostics)
but grants access only by role, buckets and permissions.
`;

export const INSPECT_HELP = `Usage: quilt-mcp jwt inspect [TOKEN | --token TOKEN | -] [--secret S | --jwks-url URL]
Decodes a JWT (TOKEN; "-" reads it from stdin; else MCP_JWT_TOKEN) and shows its header and
normalized claims, and whether this server's configuration (MCP_JWT_SECRET or MCP_JWT_JWKS_URL,
issuer, audience, kid, allowed hosts, required claims) accepts it. Prints no signature.

  --token TOKEN        the token (instead of the TOKEN argument)
  --secret S           check the signature with this HS256 secret instead of the configured key
  --jwks-url URL       check the signature against this JWKS (RS256/ES256) instead
  -h, --help           this text

With --secret or --jwks-url only the key changes: issuer, audience, kid, allowed hosts and required
claims still come from the environment.
`;

export const JWT_HELP = `Usage: quilt-mcp jwt <command>
  generate [options]   make a signed test token (quilt-mcp jwt generate --help); --auto-extract
                       fills it from your quilt3 login
  inspect [TOKEN]      decode a token and check it against this server's configuration, or against
                       --secret / --jwks-url (quilt-mcp jwt inspect --help)
`;

const GENERATE_OPTIONS = {
  sub: { type: 'string' },
  secret: { type: 'string' },
  'role-arn': { type: 'string' },
  roles: { type: 'string' },
  tags: { type: 'string' },
  'session-tags': { type: 'string' },
  'external-id': { type: 'string' },
  buckets: { type: 'string' },
  permissions: { type: 'string' },
  'catalog-token': { type: 'string' },
  'catalog-url': { type: 'string' },
  'registry-url': { type: 'string' },
  issuer: { type: 'string' },
  audience: { type: 'string' },
  kid: { type: 'string' },
  enhanced: { type: 'boolean' },
  'auto-extract': { type: 'boolean' },
  scope: { type: 'string' },
  level: { type: 'string' },
  'expires-in': { type: 'string' },
  expiry: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

type GenerateFlags = 'help' | 'enhanced' | 'auto-extract';
export type GenerateOptions = { [K in Exclude<keyof typeof GENERATE_OPTIONS, GenerateFlags>]?: string } & {
  enhanced?: boolean;
  'auto-extract'?: boolean;
};

const INSPECT_OPTIONS = {
  token: { type: 'string' },
  secret: { type: 'string' },
  'jwks-url': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export interface InspectOptions {
  /** The token; "-" means stdin; undefined means MCP_JWT_TOKEN. */
  token: string | undefined;
  /** Verify with this HS256 secret instead of the configured key. */
  secret?: string;
  /** Verify against this JWKS instead of the configured key. */
  jwksUrl?: string;
}

export type JwtCommand =
  | { name: 'jwt-generate'; options: GenerateOptions }
  | ({ name: 'jwt-inspect' } & InspectOptions)
  | { name: 'jwt-help'; text: string };

/** A command-line mistake; the message is safe to print. */
export class ArgsError extends Error {}

function closest(name: string, known: readonly string[]): string | undefined {
  // A prefix either way (--bucket / --buckets, --role / --role-arn) is the usual typo.
  return known.find((k) => k.startsWith(name) || name.startsWith(k));
}

function strictParse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, command: string, help: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = err instanceof Error ? err.message : String(err);
    // Node's messages quote the option ("Unknown option '--bucket'"); values are never quoted
    // except after "argument missing", where there is none.
    const option = /'(-{1,2}[\w-]+)/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) {
      const guess = option.startsWith('--') ? closest(option.slice(2), Object.keys(options)) : undefined;
      throw new ArgsError(`Unknown option ${option} for "${command}"${guess ? ` (did you mean --${guess}?)` : ''}.\n\n${help}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option && /does not take an argument/.test(message)) {
      throw new ArgsError(`${option} is a flag and takes no value.\n\n${help}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
      throw new ArgsError(`${option} needs a value${/ambiguous/.test(message) ? ' (the next argument is an option; write --name=value if the value starts with "-")' : ''}.\n\n${help}`);
    }
    throw new ArgsError(`Invalid arguments for "${command}".\n\n${help}`);
  }
}

/** `args`: what follows `jwt` on the command line. `describe` makes an argument safe to print. */
export function parseJwtArgs(args: string[], describe: (arg: string) => string): JwtCommand {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    if (sub === undefined) throw new ArgsError(`A jwt command is needed.\n\n${JWT_HELP}`);
    return { name: 'jwt-help', text: JWT_HELP };
  }
  if (sub === 'generate') {
    const { values, positionals } = strictParse(rest, GENERATE_OPTIONS, 'jwt generate', GENERATE_HELP);
    if (values.help) return { name: 'jwt-help', text: GENERATE_HELP };
    // Not echoed: a stray word here is often a value whose option was dropped, maybe a secret.
    if (positionals.length) throw new ArgsError(`Unexpected argument for "jwt generate": every value follows its option (--name value).\n\n${GENERATE_HELP}`);
    const { help: _help, ...options } = values;
    return { name: 'jwt-generate', options };
  }
  if (sub === 'inspect') {
    const { values, positionals } = strictParse(rest, INSPECT_OPTIONS, 'jwt inspect', INSPECT_HELP);
    if (values.help) return { name: 'jwt-help', text: INSPECT_HELP };
    if (positionals.length > 1) throw new ArgsError(`"jwt inspect" takes one token, got ${positionals.length} arguments.\n\n${INSPECT_HELP}`);
    if (positionals.length && values.token !== undefined) {
      throw new ArgsError(`"jwt inspect" takes one token: give it as TOKEN or as --token, not both.\n\n${INSPECT_HELP}`);
    }
    if (values.secret !== undefined && values['jwks-url'] !== undefined) {
      // The algorithm is pinned by the kind of key, as on the server: one key, one answer.
      throw new ArgsError(`Give --secret or --jwks-url, not both: a token is checked against one key.\n\n${INSPECT_HELP}`);
    }
    return {
      name: 'jwt-inspect',
      token: values.token ?? positionals[0],
      ...(values.secret !== undefined ? { secret: values.secret } : {}),
      ...(values['jwks-url'] !== undefined ? { jwksUrl: values['jwks-url'] } : {}),
    };
  }
  throw new ArgsError(`Unknown jwt command "${describe(sub)}".\n\n${JWT_HELP}`);
}
