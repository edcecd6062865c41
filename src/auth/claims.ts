/**
 * JWT claims: the three shapes in use (seed-era MCP token, enhanced frontend token, compressed
 * form) normalized into one `JwtClaims`. A malformed claim is an error that names the claim:
 * quietly turning it into an empty list is how misconfigured tokens went unnoticed before.
 */
import { BUCKET_NAME } from '../aws/s3-uri.js';

export class ClaimError extends Error {
  override name = 'ClaimError';
  constructor(
    readonly claim: string,
    message: string,
  ) {
    super(`Claim "${claim}" ${message}`);
  }
}

export type TokenShape = 'mcp' | 'enhanced' | 'compressed' | 'quilt_api_key';

export interface JwtClaims {
  sub: string;
  shape: TokenShape;
  roleArn: string | undefined;
  /** sts:ExternalId for AssumeRole of roleArn, when the role's trust policy asks for one. */
  externalId?: string | undefined;
  roles: string[];
  sessionTags: Record<string, string>;
  /** undefined: the token does not restrict buckets (IAM decides); [] allows none. */
  buckets: string[] | undefined;
  /** Full action names (s3:GetObject...); undefined: the token does not restrict actions. */
  permissions: string[] | undefined;
  scope: string | undefined;
  /** The OAuth scopes of `scope` (or `scp`, as Okta and Entra ID name it), one per entry. */
  scopes: string[];
  /**
   * True when `permissions` come from OAuth scopes (quilt:read, quilt:write) rather than a
   * permissions claim: a client can then ask its authorization server for more (insufficient_scope).
   */
  scopeGrant: boolean;
  level: string | undefined;
  catalogToken: string | undefined;
  catalogUrl: string | undefined;
  registryUrl: string | undefined;
  issuer: string | undefined;
  audience: string[];
  expiresAt: Date;
  issuedAt: Date | undefined;
}

export const PERMISSION_ABBREVIATIONS: Readonly<Record<string, string>> = {
  g: 's3:GetObject',
  p: 's3:PutObject',
  d: 's3:DeleteObject',
  l: 's3:ListBucket',
  la: 's3:ListAllMyBuckets',
  gv: 's3:GetObjectVersion',
  pa: 's3:PutObjectAcl',
  amu: 's3:AbortMultipartUpload',
};

/** What a tool is about to do to a bucket; checked against JWT claims before any AWS call. */
export type BucketAction = 'list' | 'read' | 'write' | 'delete';

/** The permission each tool action needs. */
export const ACTION_PERMISSION: Readonly<Record<BucketAction, string>> = {
  list: 's3:ListBucket',
  read: 's3:GetObject',
  write: 's3:PutObject',
  delete: 's3:DeleteObject',
};

/**
 * OAuth scopes this server defines (scopes_supported in its protected-resource metadata) and the
 * permissions each grants. A write scope does not imply read: clients ask for both.
 */
export const OAUTH_SCOPES = {
  'quilt:read': ['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 's3:ListAllMyBuckets'],
  'quilt:write': ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
} as const satisfies Record<string, readonly string[]>;
export type OAuthScope = keyof typeof OAUTH_SCOPES;
export const SCOPES_SUPPORTED = Object.keys(OAUTH_SCOPES) as OAuthScope[];
const isOAuthScope = (s: string): s is OAuthScope => Object.hasOwn(OAUTH_SCOPES, s);

/** The scope a tool of this kind needs (read tools: quilt:read; write and destructive: quilt:write). */
export function scopeForKind(kind: 'read' | 'write' | 'destructive'): OAuthScope {
  return kind === 'read' ? 'quilt:read' : 'quilt:write';
}

/**
 * The scope a client should ask for when this token may not run a tool of `kind`, or undefined
 * when it may (or when its grants are not OAuth scopes, which no authorization server can widen).
 * As the MCP authorization spec recommends, the answer keeps the scopes the token already has.
 */
export function missingScope(c: JwtClaims, kind: 'read' | 'write' | 'destructive'): string | undefined {
  if (!c.scopeGrant) return undefined;
  const needed = scopeForKind(kind);
  if (c.scopes.includes(needed)) return undefined;
  return [...new Set([...c.scopes.filter(isOAuthScope), needed])].join(' ');
}

export const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
/** What AWS STS accepts as ExternalId. */
export const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;

type Raw = Record<string, unknown>;

/** The first present claim among its aliases, with the name it was found under. */
function pick(raw: Raw, names: string[]): [string, unknown] | undefined {
  for (const n of names) if (raw[n] !== undefined && raw[n] !== null) return [n, raw[n]];
  return undefined;
}

function str(raw: Raw, names: string[]): string | undefined {
  const found = pick(raw, names);
  if (!found) return undefined;
  const [name, v] = found;
  if (typeof v !== 'string' || v.trim() === '') throw new ClaimError(name, 'must be a non-empty string.');
  return v.trim();
}

function strList(name: string, v: unknown): string[] {
  if (typeof v === 'string') {
    // Space- or comma-separated strings are common in scope-like claims.
    return v.split(/[\s,]+/).filter(Boolean);
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.trim() === '')) {
    throw new ClaimError(name, 'must be a list of non-empty strings.');
  }
  return (v as string[]).map((x) => x.trim());
}

function checkBuckets(name: string, buckets: string[]): string[] {
  for (const b of buckets) {
    if (b !== '*' && !BUCKET_NAME.test(b)) throw new ClaimError(name, `contains "${b.slice(0, 70)}", which is not a bucket name.`);
  }
  return [...new Set(buckets)];
}

/** Expands the compressed `b` claim. */
export function expandBuckets(name: string, v: unknown): string[] {
  if (Array.isArray(v)) return checkBuckets(name, strList(name, v));
  if (!v || typeof v !== 'object') throw new ClaimError(name, 'must be a list of buckets or a {_type, _data} object.');
  const { _type: type, _data: data } = v as { _type?: unknown; _data?: unknown };
  const out: string[] = [];
  if (type === 'groups' || type === 'patterns') {
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ClaimError(name, `has _type "${type}" but _data is not an object.`);
    for (const [key, list] of Object.entries(data as Raw)) {
      for (const item of strList(`${name}._data.${key}`, list)) {
        if (type === 'groups') out.push(item.includes('-') ? item : `${key}-${item}`);
        else out.push(key === 'quilt' ? `quilt-${item}` : item);
      }
    }
  } else if (type === 'compressed') {
    if (typeof data !== 'string') throw new ClaimError(name, 'has _type "compressed" but _data is not a base64 string.');
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
    } catch {
      throw new ClaimError(name, 'has _type "compressed" but _data is not base64 of a JSON list.');
    }
    out.push(...strList(`${name}._data`, decoded));
  } else {
    throw new ClaimError(name, `has unknown _type ${JSON.stringify(type)} (expected groups, patterns or compressed).`);
  }
  return checkBuckets(name, out);
}

function expandPermissions(name: string, v: unknown, abbreviated: boolean): string[] {
  const list = strList(name, v);
  return [
    ...new Set(
      list.map((p) => {
        if (p.includes(':') || p === '*') return p;
        const full = abbreviated ? PERMISSION_ABBREVIATIONS[p] : undefined;
        if (!full) throw new ClaimError(name, `contains unknown permission "${p.slice(0, 40)}".`);
        return full;
      }),
    ),
  ];
}

function sessionTags(raw: Raw): Record<string, string> {
  const found = pick(raw, ['session_tags', 'sessionTags', 'tags']);
  if (!found) return {};
  const [name, v] = found;
  const entries: Array<[string, unknown]> = Array.isArray(v)
    ? v.map((t, i) => {
        if (!t || typeof t !== 'object') throw new ClaimError(name, `item ${i} must be {Key, Value}.`);
        const { Key, Value, key, value } = t as Raw;
        return [String(Key ?? key ?? ''), Value ?? value];
      })
    : v && typeof v === 'object'
      ? Object.entries(v as Raw)
      : (() => {
          throw new ClaimError(name, 'must be an object of tag names to values.');
        })();
  if (entries.length > 50) throw new ClaimError(name, 'has more than 50 tags (the STS limit).');
  const tags: Record<string, string> = {};
  for (const [k, value] of entries) {
    if (!TAG_KEY.test(k)) throw new ClaimError(name, `has an invalid tag name "${k.slice(0, 40)}".`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ClaimError(name, `tag "${k}" must have a string value.`);
    }
    const s = String(value);
    if (s.length > 256) throw new ClaimError(name, `tag "${k}" is longer than 256 characters.`);
    tags[k] = s;
  }
  return tags;
}

function url(raw: Raw, names: string[]): string | undefined {
  const v = str(raw, names);
  if (v === undefined) return undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
    return v.replace(/\/+$/, '');
  } catch {
    throw new ClaimError(names[0] ?? 'url', 'must be an http(s) URL.');
  }
}

/** Latest time a token may name: a year 9999 `exp` is still a number, but no longer a date. */
const MAX_EPOCH_SECONDS = 253402300799;

/** A NumericDate claim as a Date; absurd values (beyond year 9999, negative) are malformed claims. */
function time(name: string, seconds: number): Date {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_EPOCH_SECONDS) {
    throw new ClaimError(name, 'is not a valid time (seconds since 1970, before the year 10000).');
  }
  return new Date(seconds * 1000);
}

export interface NormalizeOptions {
  /**
   * OAuth mode (authorization servers configured): a token without a permissions claim is granted
   * only what its quilt:* scopes grant, none when it has none. Otherwise quilt:* scopes still grant
   * their permissions, and a token with neither leaves the actions to IAM, as before.
   */
  scopesRequired?: boolean;
  /** A dotted path to the roles when they are not in `roles` (MCP_JWT_ROLES_CLAIM), e.g. realm_access.roles. */
  rolesClaim?: string | undefined;
}

/** The value at a dotted path of the claims, if every step is an object. */
function atPath(raw: Raw, path: string): unknown {
  let v: unknown = raw;
  for (const step of path.split('.')) {
    if (!v || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, step)) return undefined;
    v = (v as Raw)[step];
  }
  return v;
}

/** The `scope` claim (space-separated, RFC 9068) or `scp` (a list in Okta, a string in Entra ID), or compressed `s`. */
function scopeClaim(raw: Raw): { text: string | undefined; list: string[] } {
  const found = pick(raw, ['scope', 'scp', 's']);
  if (!found) return { text: undefined, list: [] };
  const [name, v] = found;
  if (typeof v === 'string') {
    // An empty scope is a token granted no scope (an authorization server may grant less than asked).
    return v.trim() === '' ? { text: undefined, list: [] } : { text: v.trim(), list: v.trim().split(/\s+/) };
  }
  const list = strList(name, v);
  return { text: list.join(' '), list };
}

/** Normalizes verified claims; throws ClaimError naming the first malformed claim. */
export function normalizeClaims(raw: Raw, options: NormalizeOptions = {}): JwtClaims {
  const sub = str(raw, ['sub', 'user_id', 'id']);
  if (!sub) throw new ClaimError('sub', 'is missing: the token must say who the user is.');
  const enhanced = raw.token_type === 'enhanced';
  const compressed = ['p', 'b', 'r', 's', 'l'].some((k) => raw[k] !== undefined);

  const roleArn = str(raw, ['role_arn', 'roleArn', 'aws_role_arn']);
  if (roleArn && !ROLE_ARN.test(roleArn)) throw new ClaimError('role_arn', 'is not an IAM role ARN (arn:aws:iam::<account>:role/<name>).');
  const externalId = str(raw, ['external_id', 'externalId']);
  if (externalId && !EXTERNAL_ID.test(externalId)) throw new ClaimError('external_id', 'must be 2 to 1224 characters of letters, digits and +=,.@:/-_ (what AWS STS accepts).');

  // Explicit full fields win over the compressed short ones.
  const configured = options.rolesClaim ? atPath(raw, options.rolesClaim) : undefined;
  const rolesRaw: [string, unknown] | undefined =
    configured !== undefined && configured !== null && options.rolesClaim ? [options.rolesClaim, configured] : pick(raw, ['roles', 'r']);
  const roles = rolesRaw ? strList(rolesRaw[0], rolesRaw[1]) : [];
  const bucketsRaw = pick(raw, ['buckets', 'b']);
  const buckets = bucketsRaw ? expandBuckets(bucketsRaw[0], bucketsRaw[1]) : undefined;
  const permsRaw = pick(raw, ['permissions', 'p']);
  const scope = scopeClaim(raw);
  const granted = scope.list.filter(isOAuthScope);
  // An explicit permissions claim wins; else quilt:* scopes grant theirs (OAuth access tokens).
  const scopeGrant = !permsRaw && (granted.length > 0 || options.scopesRequired === true);
  const permissions = permsRaw
    ? expandPermissions(permsRaw[0], permsRaw[1], permsRaw[0] === 'p')
    : scopeGrant
      ? [...new Set(granted.flatMap((g) => OAUTH_SCOPES[g]))]
      : undefined;

  const aud = raw.aud;
  const audience = aud === undefined ? [] : Array.isArray(aud) ? aud.map(String) : [String(aud)];
  if (typeof raw.exp !== 'number') throw new ClaimError('exp', 'is missing: tokens must expire.');
  const expiresAt = time('exp', raw.exp);
  const issuedAt = typeof raw.iat === 'number' ? time('iat', raw.iat) : undefined;

  return {
    sub,
    shape: enhanced ? 'enhanced' : compressed ? 'compressed' : 'mcp',
    roleArn,
    ...(externalId ? { externalId } : {}),
    roles,
    sessionTags: sessionTags(raw),
    buckets,
    permissions,
    scope: scope.text,
    scopes: scope.list,
    scopeGrant,
    level: str(raw, ['level', 'l']),
    catalogToken: str(raw, ['catalog_token']),
    catalogUrl: url(raw, ['catalog_url']),
    registryUrl: url(raw, ['registry_url']),
    issuer: typeof raw.iss === 'string' ? raw.iss : undefined,
    audience,
    expiresAt,
    issuedAt,
  };
}

/** A "basic" catalog token carries nothing that grants data access. */
export function isBasicToken(c: JwtClaims): boolean {
  return c.shape !== 'enhanced' && !c.roleArn && c.roles.length === 0 && c.buckets === undefined;
}

export function allowsBucket(c: JwtClaims, bucket: string): boolean {
  return c.buckets === undefined || c.buckets.includes('*') || c.buckets.includes(bucket);
}

export function allowsAction(c: JwtClaims, action: BucketAction): boolean {
  if (c.permissions === undefined) return true;
  const needed = ACTION_PERMISSION[action];
  return c.permissions.some((p) => p === '*' || p === 's3:*' || p === needed);
}

/** Claims as shown to people: no tokens, only whether they are present. */
export function publicClaims(c: JwtClaims): Record<string, unknown> {
  return {
    sub: c.sub,
    token_shape: c.shape,
    role_arn: c.roleArn ?? null,
    ...(c.externalId ? { external_id: c.externalId } : {}),
    roles: c.roles,
    session_tags: c.sessionTags,
    buckets: c.buckets ?? null,
    permissions: c.permissions ?? null,
    scope: c.scope ?? null,
    ...(c.scopeGrant ? { permissions_from: 'OAuth scopes' } : {}),
    level: c.level ?? null,
    catalog_token: c.catalogToken ? 'present' : 'absent',
    catalog_url: c.catalogUrl ?? null,
    registry_url: c.registryUrl ?? null,
    iss: c.issuer ?? null,
    aud: c.audience,
    expires_at: c.expiresAt.toISOString(),
    issued_at: c.issuedAt?.toISOString() ?? null,
  };
}
