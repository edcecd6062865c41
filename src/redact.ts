/**
 * Removes credentials from text before it reaches a log line or an error message: JWTs, bearer
 * tokens, presigned-URL signatures, AWS keys and session tokens, token-like JSON or form fields,
 * and any exact secret registered at startup (e.g. MCP_JWT_SECRET).
 */
const exactSecrets = new Set<string>();

/** Registers a secret whose exact text must never be printed (ignored when short). */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 8) exactSecrets.add(secret);
}

const PATTERNS: Array<[RegExp, string]> = [
  // JWS compact form (header.payload.signature); also catches unsigned "alg: none" tokens.
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  // Presigned URL query parameters.
  [/\b(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s"']+/gi, '$1=[redacted]'],
  [/\b(Signature|AWSAccessKeyId|x-amz-security-token)=[^&\s"']+/g, '$1=[redacted]'],
  // Token-like fields in JSON, form bodies or key=value text.
  [
    /("?(?:access_?token|refresh_?token|catalog_?token|id_?token|session_?token|sessionToken|secret_?key|secret_?access_?key|SecretAccessKey|SessionToken|password|client_secret|token)"?\s*[:=]\s*"?)([^"&\s,}]+)/gi,
    '$1[redacted]',
  ],
  [/\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b/g, '[redacted-key-id]'],
  // Long opaque runs: AWS session tokens, signatures, secrets we do not know by name.
  [/[A-Za-z0-9+/_=-]{120,}/g, '[redacted]'],
];

export function redact(text: string): string {
  let out = text;
  for (const secret of exactSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
