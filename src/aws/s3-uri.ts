/**
 * `s3://bucket/key` URIs as tool arguments. Keys are taken literally (like the AWS CLI), except
 * for a trailing `?versionId=...`, which selects a version.
 */
import { ToolError } from '../errors.js';

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
