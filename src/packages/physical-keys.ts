/**
 * Physical keys as quilt3 writes them in manifests: `s3://bucket/<quote(key)>?versionId=<quote_plus(id)>`
 * (Python's urllib quoting, which differs from encodeURIComponent on `!'()*`).
 */
import { ToolError } from '../core/errors.js';
import type { S3Location } from '../aws/s3-uri.js';

const pyQuote = (s: string, safe: string) =>
  encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%2F/g, safe.includes('/') ? '/' : '%2F');

export function formatPhysicalKey({ bucket, key, versionId }: S3Location): string {
  const v = versionId && versionId !== 'null' ? `?versionId=${pyQuote(versionId, '').replace(/%20/g, '+')}` : '';
  return `s3://${bucket}/${pyQuote(key, '/')}${v}`;
}

export function parsePhysicalKey(pk: string): S3Location {
  const m = /^s3:\/\/([^/?#]+)\/([^?#]*)(?:\?(.*))?$/.exec(pk);
  if (!m) {
    throw new ToolError('unsupported', `Physical key "${pk}" is not in S3; only S3 physical keys can be read here.`);
  }
  const params = new URLSearchParams(m[3] ?? '');
  return { bucket: m[1] ?? '', key: decodeURIComponent(m[2] ?? ''), versionId: params.get('versionId') ?? undefined };
}
