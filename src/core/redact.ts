/**
 * Removes credentials from text before it reaches a log line or an error message: JWTs, bearer
 * tokens, presigned-URL signatures, AWS keys and session tokens (also in STS/S3 XML bodies and in
 * SigV4 Authorization headers), token-like JSON, Python-repr or form fields, bare AWS secret
 * access keys, passwords in URLs, PEM private keys, and any exact secret registered at startup
 * (e.g. MCP_JWT_SECRET).
 *
 * Callers influence the text, so every pattern runs in linear time: no nested quantifiers that can
 * backtrack, and a pattern that scans a run of characters only starts at the beginning of that run
 * (a lookbehind rejects every later start in O(1)), so no run is rescanned from each of its
 * positions.
 */
const exactSecrets = new Set<string>();

/** Registers a secret whose exact text must never be printed (ignored when short). */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 8) exactSecrets.add(secret);
}

/** Field names whose value is a credential (JSON, Python repr, YAML, form bodies, env files, headers). */
const FIELD_NAMES = [
  'access_?token',
  'refresh_?token',
  'catalog_?token',
  'id_?token',
  'session_?token',
  'security_?token',
  'access_?key',
  'access_?key_?id',
  'secret_?key',
  'secret_?access_?key',
  'client_?secret',
  'api_?key',
  'private_?key',
  'password',
  'passwd',
  'secret',
  'token',
].join('|');

/** XML elements (STS, S3, IAM responses) whose text is a credential; the tags are kept. */
const XML_ELEMENTS = [
  'SecretAccessKey',
  'SessionToken',
  'AccessKeyId',
  'AWSAccessKeyId',
  'SecretKey',
  'Token',
  'AccessToken',
  'RefreshToken',
  'IdToken',
  'ClientSecret',
  'Password',
  'SignatureProvided',
].join('|');

const PATTERNS: Array<[RegExp, string]> = [
  // PEM private keys: the body up to the END line (base64 lines are too short for the run rule).
  [/(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----)[^-]+/g, '$1[redacted]'],
  // JWS compact form (header.payload.signature); also catches unsigned "alg: none" tokens.
  // Same matches as /\beyJ[\w-]{4,}\.[\w-]*\.[\w-]*/ but linear: it starts only at the beginning
  // of a run of base64url characters, and an atomic lookahead finds the first "eyJ" at a word
  // boundary in that run (the prefix before it is kept).
  [
    /(?<![A-Za-z0-9_-])(?=([A-Za-z0-9_-]*?)(?<![A-Za-z0-9_])eyJ[A-Za-z0-9_-]{4})\1eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g,
    '$1[redacted-jwt]',
  ],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  // Quilt API keys (qk_ and the secret), wherever they appear; starts only at the beginning of a run.
  [/(?<![A-Za-z0-9_])qk_[A-Za-z0-9._~+/=-]{6,}/g, 'qk_[redacted]'],
  // Presigned URL query parameters.
  [/\b(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s"']+/gi, '$1=[redacted]'],
  [/\b(Signature|AWSAccessKeyId|x-amz-security-token)=[^&\s"']+/g, '$1=[redacted]'],
  // SigV4 Authorization header: "Credential=AKIA.../20240101/us-east-1/s3/aws4_request"; the
  // access key id (of any provider, e.g. MinIO) goes, the scope stays. Signature= is above.
  [/\b(Credential)=[^/&\s"',]+/g, '$1=[redacted]'],
  // XML bodies as STS and S3 return them: <SessionToken>...</SessionToken>. No closing tag is
  // needed, so a body cut short still loses its value. The value starts with a character a
  // credential can start with, so a placeholder in prose ("Bearer <token>.") stays as written.
  [new RegExp(`(<(?:${XML_ELEMENTS})(?:\\s[^<>]*)?>)[A-Za-z0-9+/=_-][^<]*`, 'gi'), '$1[redacted]'],
  // Token-like fields in JSON, Python reprs, YAML, form bodies, headers or key=value text. The name
  // may be in single or double quotes; a quoted value runs to its matching (unescaped) quote.
  [
    new RegExp(
      `(["']?(?:${FIELD_NAMES})["']?\\s*[:=]\\s*)(?:(")(?:[^"\\\\]|\\\\[\\s\\S])*(")?|(')(?:[^'\\\\]|\\\\[\\s\\S])*(')?|[^"&\\s,}]+)`,
      'gi',
    ),
    // Quotes are kept; an unterminated quoted value (text cut short) is redacted to its end.
    '$1$2$4[redacted]$3$5',
  ],
  // Passwords in URLs: https://user:password@host/.
  [/(:\/\/[^\s:/?#@"'<>]+:)[^\s/?#@"'<>]+@/g, '$1[redacted]@'],
  [/\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b/g, '[redacted-key-id]'],
  // Bare AWS secret access keys: exactly 40 base64 characters, not part of a longer run, with an
  // upper-case letter, a lower-case letter and a digit, / or + (so SHA-1 hex digests and words stay).
  [
    /(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/g,
    '[redacted-secret-key]',
  ],
  // Long opaque runs: AWS session tokens, signatures, secrets we do not know by name.
  [/(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{120,}/g, '[redacted]'],
];

export function redact(text: string): string {
  let out = text;
  for (const secret of exactSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
