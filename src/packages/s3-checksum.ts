/**
 * A source object's facts (HeadObject) and, when S3 already holds a SHA-256 checksum of the right
 * shape, its sha2-256-chunked hash without reading the object. The arithmetic, from quilt-formats.md:
 * chunked = sha256(sha256(chunk 1) || ... || sha256(chunk n)) over chunks of chunkSizeFor(size).
 * - One chunk (size <= chunk size): chunked = sha256(sha256(data)), and a single-part upload's
 *   FULL_OBJECT checksum is sha256(data): hash it once more. (Empty: no chunks, so chunked =
 *   sha256(empty) = the checksum itself.)
 * - S3's COMPOSITE checksum of a multipart upload is sha256 of the parts' sha256s: exactly the
 *   chunked hash when every part but the last is one chunk long (quilt3 uploads that way).
 * Anything else (a big single-part object, other part sizes, no SHA-256) is hashed by streaming.
 */
import { createHash } from 'node:crypto';
import type { S3Location } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../core/errors.js';
import { chunkSizeFor } from '../core/chunked-hash.js';

export interface SourceHead {
  size: number;
  versionId?: string | undefined;
  etag?: string | undefined;
  contentType?: string | undefined;
  metadata?: Record<string, string> | undefined;
  /** x-amz-checksum-sha256 as HeadObject gives it (`<base64>` or, composite, `<base64>-<parts>`). */
  sha256?: string | undefined;
  checksumType?: string | undefined;
}

const EMPTY_SHA256 = createHash('sha256').digest('base64');

/** From a FULL_OBJECT SHA-256 of the whole object (a single-part upload). */
export function chunkedFromFullObject(size: number, sha256: string): string | undefined {
  if (size === 0) return sha256 === EMPTY_SHA256 ? sha256 : undefined;
  if (size > chunkSizeFor(size)) return undefined;
  const raw = Buffer.from(sha256, 'base64');
  if (raw.length !== 32) return undefined;
  return createHash('sha256').update(raw).digest('base64');
}

/** From a COMPOSITE SHA-256 (checksum of part checksums) and the parts' sizes, in order. */
export function chunkedFromComposite(size: number, sha256: string, partSizes: readonly number[]): string | undefined {
  const value = sha256.replace(/-\d+$/, '');
  if (Buffer.from(value, 'base64').length !== 32) return undefined;
  const chunk = chunkSizeFor(size);
  const n = Math.ceil(size / chunk);
  if (n === 0 || partSizes.length !== n) return undefined;
  const last = size - chunk * (n - 1);
  return partSizes.every((p, i) => p === (i < n - 1 ? chunk : last)) ? value : undefined;
}

export async function headSource(ctx: RuntimeContext, loc: S3Location, signal?: AbortSignal): Promise<SourceHead> {
  // The signal is checked rather than passed to send, whose per-request options defeat the SDK's middleware cache.
  signal?.throwIfAborted();
  const out = await withS3(ctx, { bucket: loc.bucket, key: loc.key, action: 'read', verb: 'read' }, (client, { HeadObjectCommand }) =>
    client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId, ChecksumMode: 'ENABLED' })),
  );
  const size = out.ContentLength;
  if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
    throw new ToolError('upstream_error', `S3 gave no size for s3://${loc.bucket}/${loc.key}.`);
  }
  return {
    size,
    versionId: loc.versionId ?? out.VersionId,
    etag: out.ETag,
    contentType: out.ContentType,
    metadata: out.Metadata,
    sha256: out.ChecksumSHA256,
    checksumType: out.ChecksumType,
  };
}

/** Part sizes of a multipart object (GetObjectAttributes, paged), or undefined when S3 will not tell. */
async function partSizes(ctx: RuntimeContext, loc: S3Location, expected: number, signal?: AbortSignal): Promise<number[] | undefined> {
  const sizes: number[] = [];
  let marker: string | undefined;
  try {
    for (let page = 0; page < 20; page++) {
      const out = await withS3(ctx, { bucket: loc.bucket, key: loc.key, action: 'read', verb: 'read the attributes of' }, (client, { GetObjectAttributesCommand }) =>
        client.send(
          new GetObjectAttributesCommand({
            Bucket: loc.bucket,
            Key: loc.key,
            VersionId: loc.versionId,
            ObjectAttributes: ['ObjectParts', 'Checksum'],
            MaxParts: 1000,
            PartNumberMarker: marker,
          }),
          { abortSignal: signal },
        ),
      );
      const parts = out.ObjectParts;
      if (!parts?.Parts || parts.TotalPartsCount !== expected) return undefined;
      for (const p of parts.Parts) {
        if (p.Size === undefined || p.PartNumber !== sizes.length + 1) return undefined;
        sizes.push(p.Size);
      }
      if (!parts.IsTruncated) return sizes;
      marker = parts.NextPartNumberMarker;
      if (!marker) return undefined;
    }
  } catch (err) {
    // No s3:GetObjectAttributes (a separate IAM action), or a store that lacks the call: stream instead.
    if (err instanceof ToolError && ['access_denied', 'unsupported', 'invalid_input', 'upstream_error', 'not_found'].includes(err.code)) {
      ctx.logger.debug('part sizes unavailable; hashing by reading', { bucket: loc.bucket, code: err.code });
      return undefined;
    }
    throw err;
  }
  return undefined;
}

/** The chunked hash S3's stored checksum gives for this object, or undefined when it must be read. */
export async function chunkedHashFromS3(ctx: RuntimeContext, loc: S3Location, head: SourceHead, signal?: AbortSignal): Promise<string | undefined> {
  if (head.size === 0) return EMPTY_SHA256;
  const sha = head.sha256;
  if (!sha) return undefined;
  const parts = /-(\d+)$/.exec(sha);
  const composite = head.checksumType === 'COMPOSITE' || parts !== null;
  if (!composite) return chunkedFromFullObject(head.size, sha);
  const n = parts ? Number(parts[1]) : undefined;
  const chunk = chunkSizeFor(head.size);
  const want = Math.ceil(head.size / chunk);
  if (n !== undefined && n !== want) return undefined;
  // One part covering the whole object (at most one chunk): its composite is sha256(sha256(data)).
  if (want === 1) return chunkedFromComposite(head.size, sha, [head.size]);
  const sizes = await partSizes(ctx, { ...loc, versionId: head.versionId }, want, signal);
  return sizes ? chunkedFromComposite(head.size, sha, sizes) : undefined;
}
