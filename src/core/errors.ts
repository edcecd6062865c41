/**
 * Expected failures are tool results a person can act on, not exceptions with stack traces.
 * `ToolError` carries a stable code, a message and a hint; `toToolError` maps anything thrown
 * (AWS SDK errors, network errors, bugs) onto one, and everything is redacted on the way out.
 */
import { redact } from './redact.js';

export type ErrorCode =
  | 'invalid_input'
  | 'not_found'
  | 'access_denied'
  | 'credentials_expired'
  | 'no_credentials'
  | 'not_logged_in'
  | 'unauthorized'
  | 'unreachable'
  | 'timeout'
  | 'throttled'
  | 'conflict'
  | 'too_large'
  | 'unsupported'
  | 'catalog_error'
  | 'no_catalog'
  | 'upstream_error'
  | 'cancelled'
  | 'internal';

/** Failures that may pass on their own: retrying may help (the others need a change first). */
export const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['throttled', 'timeout', 'unreachable', 'upstream_error']);

/** A failure told inside an answer that goes on without it: what failed, and whether retrying may help. */
export function failureNote(e: ToolError): string {
  return TRANSIENT_CODES.has(e.code) ? `${e.message.replace(/\.$/, '')}; retrying may help` : e.message;
}

export class ToolError extends Error {
  override name = 'ToolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }

  /** The text a person reads: what went wrong, then how to fix it. */
  get text(): string {
    return redact(this.hint ? `${this.message}\nFix: ${this.hint}` : this.message);
  }
}

/** What an AWS call was doing, so its error can name it. */
export interface AwsTarget {
  action: string;
  bucket?: string | undefined;
  key?: string | undefined;
  /** What is acted on when it is not a bucket or object, e.g. 'Athena workgroup "primary"'. */
  resource?: string | undefined;
}

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string> };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETIMEDOUT',
]);

function describe(t: AwsTarget): string {
  if (t.bucket && t.key !== undefined) return `s3://${t.bucket}/${t.key}`;
  if (t.bucket) return `bucket "${t.bucket}"`;
  return t.resource ?? 'AWS';
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A GET or HEAD of one object (the verbs withS3 callers use for reads and links). */
function isSingleKeyRead(t: AwsTarget): boolean {
  return t.bucket !== undefined && t.key !== undefined && /^(read|link)\b/.test(t.action);
}

/**
 * S3 answers 403 (not 404) for a missing key when the caller lacks s3:ListBucket on the bucket, so
 * a 403 on one key cannot say which it is: say both rather than guess.
 */
export function deniedOrMissing(what: string, target: Pick<AwsTarget, 'action' | 'bucket'>): ToolError {
  return new ToolError(
    'access_denied',
    `Access denied, or ${what} does not exist: without s3:ListBucket on ${target.bucket ? `bucket "${target.bucket}"` : 'its bucket'} S3 answers 403 for both (trying to ${target.action} it).`,
    'Check the key (bucket_objects_list works only with s3:ListBucket); if it exists, ask an administrator for s3:GetObject on it, or use credentials (quilt3 login, AWS profile) that have it.',
  );
}

/** Maps an AWS SDK (or network) error to a ToolError; unknown errors become `upstream_error`. */
export function fromAwsError(err: unknown, target: AwsTarget): ToolError {
  if (err instanceof ToolError) return err;
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? e.Code ?? '';
  const status = e.$metadata?.httpStatusCode;
  const what = describe(target);
  const net = networkCode(err);
  if (net) {
    return new ToolError(
      'unreachable',
      `Could not reach the S3/AWS endpoint while trying to ${target.action} ${what} (${net}).`,
      'Check the network connection, proxy and AWS_ENDPOINT_URL_* settings, then try again.',
    );
  }
  switch (name) {
    case 'AbortError':
      return new ToolError('cancelled', 'The call was cancelled (the client cancelled it or went away).');
    case 'NoSuchKey':
      return new ToolError('not_found', `${what} does not exist.`, 'Check the key with bucket_objects_list.');
    case 'NoSuchBucket':
      return new ToolError(
        'not_found',
        target.bucket ? `Bucket "${target.bucket}" does not exist.` : `The bucket does not exist (trying to ${target.action} ${what}).`,
        'Check the bucket name; bucket_list shows the buckets you can see.',
      );
    case 'NoSuchVersion':
      return new ToolError('not_found', `That version of ${what} does not exist.`);
    case 'NotFound':
      return new ToolError('not_found', `${what} does not exist.`, 'Check the name with bucket_objects_list.');
    case 'AccessDenied':
    case 'AccessDeniedException':
    case 'Forbidden':
    case 'AllAccessDisabled':
    case 'AccountProblem':
      if (isSingleKeyRead(target)) return deniedOrMissing(what, target);
      return new ToolError(
        'access_denied',
        `Access denied: your AWS credentials may not ${target.action} ${what}.`,
        'Ask an administrator for access, or use credentials (quilt3 login, AWS profile) that have it.',
      );
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'TokenRefreshRequired':
    case 'RequestExpired':
      return new ToolError(
        'credentials_expired',
        'Your AWS credentials have expired.',
        'Log in again (`quilt3 login`, or `aws sso login` for SSO profiles), then retry.',
      );
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'InvalidClientTokenId':
    case 'InvalidToken':
    case 'UnrecognizedClientException':
      return new ToolError(
        'access_denied',
        `AWS rejected the credentials (${name}) while trying to ${target.action} ${what}.`,
        'The credentials are invalid or belong to another endpoint: log in again or check AWS_PROFILE / AWS_ACCESS_KEY_ID.',
      );
    case 'CredentialsProviderError':
    case 'TokenProviderError': {
      const msg = e.message ?? '';
      if (/sso/i.test(msg) && /expired|refresh/i.test(msg)) {
        return new ToolError(
          'credentials_expired',
          'Your AWS SSO session has expired.',
          'Run `aws sso login` (with your --profile), then retry.',
        );
      }
      return new ToolError(
        'no_credentials',
        'No AWS credentials were found.',
        'Run `quilt3 login`, or configure AWS credentials (`aws configure`, `aws sso login`, AWS_PROFILE or AWS_ACCESS_KEY_ID).',
      );
    }
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return new ToolError(
        'upstream_error',
        `${what} is in another region than the one used.`,
        'Set AWS_REGION to the bucket\'s region.',
      );
    case 'PreconditionFailed':
    case 'ConditionalRequestConflict':
      return new ToolError(
        'conflict',
        `${what} was changed by someone else at the same moment.`,
        'Read it again and retry.',
      );
    case 'SlowDown':
    case 'Throttling':
    case 'ThrottlingException':
    case 'TooManyRequestsException':
      return new ToolError('throttled', `AWS is throttling requests to ${what}.`, 'Wait a moment and retry.');
    case 'TimeoutError':
    case 'RequestTimeout':
    case 'RequestTimeoutException':
      return new ToolError('timeout', `The request to ${what} timed out.`, 'Retry; if it keeps happening, check the network.');
    case 'InvalidRange':
      return new ToolError('invalid_input', `The requested byte range is outside ${what}.`, 'Use an offset smaller than the object size.');
    case 'InvalidBucketName':
      return new ToolError('invalid_input', `"${target.bucket ?? ''}" is not a valid bucket name.`);
    case 'EntityTooLarge':
      return new ToolError('too_large', `The object is too large for a single upload to ${what}.`);
  }
  if (status === 403) {
    return fromAwsError({ name: 'AccessDenied' }, target);
  }
  if (status === 412) return fromAwsError({ name: 'PreconditionFailed' }, target);
  if (status === 404) {
    return fromAwsError({ name: target.key !== undefined ? 'NotFound' : 'NoSuchBucket' }, target);
  }
  if (status === 301) return fromAwsError({ name: 'PermanentRedirect' }, target);
  const detail = redact(`${name || 'Error'}${e.message ? `: ${e.message}` : ''}`).slice(0, 300);
  return new ToolError(
    'upstream_error',
    `AWS could not ${target.action} ${what}${status ? ` (HTTP ${status})` : ''}: ${detail}`,
    status !== undefined && status < 500
      ? 'AWS refused the request itself, so retrying it unchanged will not help.'
      : 'The service failed on its side (requests were retried 3 times); retry in a moment.',
  );
}

/** Any thrown value as a ToolError; bugs become a generic message (details go to the log). */
export function toToolError(err: unknown): ToolError {
  if (err instanceof ToolError) return err;
  // A cancelled call's reads end with AbortError (the SDK's, or an aborted signal's reason).
  if (err instanceof Error && err.name === 'AbortError') return fromAwsError(err, { action: 'complete the request' });
  // Credential providers throw before any request, so their errors carry no $metadata.
  const providerError = err instanceof Error && (err.name === 'CredentialsProviderError' || err.name === 'TokenProviderError');
  if (err && typeof err === 'object' && ('$metadata' in err || networkCode(err) || providerError)) {
    return fromAwsError(err, { action: 'complete the request' });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ToolError('internal', `Unexpected error: ${redact(message).slice(0, 300)}`, 'This is a bug in quilt-mcp; the server log has details.');
}
