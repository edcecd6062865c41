/**
 * `s3://bucket/key` URIs as tool arguments. Keys are taken literally (like the AWS CLI), except
 * for a trailing `?versionId=...`, which selects a version, and except keys that a server could
 * normalise into another bucket (`unsafeKeyReason`).
 */
import { ToolError } from '../core/errors.js';

export interface S3Location {
  bucket: string;
  key: string;
  versionId?: string | undefined;
}

// Lenient on purpose: old us-east-1 buckets may contain capitals and underscores.
export const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

/** A bucket argument: `name`, `s3://name` or `s3://name/`. */
export function parseBucket(input: string): string {
  const name = input.trim().replace(/^s3:\/\//i, '').replace(/\/+$/, '');
  if (!BUCKET_NAME.test(name)) {
    throw new ToolError(
      'invalid_input',
      `"${input}" is not a bucket name.`,
      'Give a bucket name such as "my-bucket" or "s3://my-bucket".',
    );
  }
  return name;
}

/**
 * Why a key (or prefix) could escape its bucket, or undefined when it cannot. Path-style requests
 * put the key in the URL path after the bucket, and URL parsers, proxies and S3-compatible servers
 * resolve `.` and `..` segments there (the AWS SDK itself turns `/a/../b/k` into `/b/k`), so the
 * bucket that was authorized is not the bucket that is read. Segments are split on `/` and `\`
 * (Windows-minded servers), cut at `;` (path parameters), percent-decoded and NFKC-normalised
 * (double-decoding proxies, full-width dots) before the test.
 */
export function unsafeKeyReason(key: string): string | undefined {
  if (key.includes('\0')) return 'contains a NUL character';
  // Fast path: plain ASCII without a dot or a percent sign cannot hold a dot segment.
  if (!/[.%]|[^\x00-\x7f]/.test(key)) return undefined;
  for (const raw of key.split(/[/\\]/)) {
    let seg = raw;
    for (let i = 0; i < 3 && seg.includes('%'); i++) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        break;
      }
    }
    seg = (seg.split(';')[0] ?? '').normalize('NFKC').trim();
    if (/^\.+$/.test(seg)) return `has a "${seg}" path segment`;
    if (/[/\\]/.test(seg) && unsafeKeyReason(seg)) return 'hides a dot segment behind percent-encoding';
  }
  return undefined;
}

/** Refuses a key that could escape its bucket, naming the rule. */
export function checkKey(key: string, what = 'Key'): string {
  const why = unsafeKeyReason(key);
  if (why) {
    throw new ToolError(
      'invalid_input',
      `${what} ${JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}...` : key)} ${why}.`,
      'Keys with "." or ".." path segments (also behind "\\", ";" or percent-encoding) are refused, because a server could resolve them into another bucket. Name the object by its plain key.',
    );
  }
  return key;
}

export function parseS3Uri(input: string, { requireKey = true } = {}): S3Location {
  const text = input.trim();
  const m = /^s3:\/\/([^/?#]+)(?:\/(.*))?$/i.exec(text);
  if (!m) {
    throw new ToolError(
      'invalid_input',
      `"${input}" is not an S3 URI.`,
      'Use the form s3://bucket/path/to/key (bucket_objects_list shows the keys).',
    );
  }
  const bucket = parseBucket(m[1] ?? '');
  let key = m[2] ?? '';
  let versionId: string | undefined;
  const v = /\?versionId=([^&]+)$/.exec(key);
  if (v) {
    versionId = decodeURIComponent(v[1] ?? '');
    key = key.slice(0, v.index);
  }
  checkKey(key);
  if (requireKey && key === '') {
    throw new ToolError(
      'invalid_input',
      `"${input}" names a bucket but no object key.`,
      `Add the key: s3://${bucket}/path/to/object, or list keys with bucket_objects_list.`,
    );
  }
  return { bucket, key, versionId };
}

export function formatS3Uri({ bucket, key, versionId }: S3Location): string {
  return `s3://${bucket}/${key}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ''}`;
}
