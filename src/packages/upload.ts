/**
 * A local file into S3 as quilt3 push uploads it, with S3 checksums that are quilt's hash: one PUT
 * when the file is one chunk (its SHA-256 checksum is the chunk's sha256), else a multipart upload
 * whose parts are the hash's chunks, each sent with its sha256, so S3's COMPOSITE checksum is the
 * sha2-256-chunked value itself (s3-checksum.ts reads it back without reading the object). The
 * checksums were computed when the file was hashed: S3 refuses a part whose bytes changed since
 * (BadDigest), so an object never holds other bytes than its manifest entry says. Parts stream from
 * the file (nothing is buffered whole), a few at a time; a failed request is retried with the part
 * read again, and a failed upload is aborted (its parts would be billed).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { withS3 } from '../aws/s3.js';
import { mapBounded } from '../concurrency.js';
import type { RuntimeContext } from '../context.js';
import { guessContentType } from '../content-type.js';
import { ToolError } from '../errors.js';
import { chunkSizeFor } from './chunked-hash.js';

export const PART_CONCURRENCY = 4;
const ATTEMPTS = 3;
const EMPTY_SHA256 = createHash('sha256').digest();

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const nameOf = (err: unknown) => (err as { name?: string }).name ?? '';

/** S3 errors worth one more try (the part is read again): 5xx, throttling, a dropped connection. */
function retryable(err: unknown): boolean {
  const status = statusOf(err);
  if (status !== undefined) return status >= 500 || status === 429 || nameOf(err) === 'RequestTimeout';
  return ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'TimeoutError', 'RequestTimeout'].some((c) => (err as { code?: string }).code === c || nameOf(err) === c);
}

async function attempt<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= ATTEMPTS || signal?.aborted || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
  }
}

function changedSince(path: string): ToolError {
  return new ToolError('conflict', `${path} changed after it was hashed (S3 refused its bytes: their checksum differs).`, 'Retry once nothing is writing to the file; nothing was committed.');
}

export interface UploadSource {
  path: string;
  size: number;
  /** sha256 of each chunk of chunkSizeFor(size) bytes (from hashing it, hash-file.ts). */
  chunks: readonly Buffer[];
}

/** Uploads `src` to `dest`; returns the object's version id when the bucket is versioned. */
export async function uploadFile(
  ctx: RuntimeContext,
  src: UploadSource,
  dest: { bucket: string; key: string },
  signal: AbortSignal | undefined,
): Promise<{ versionId?: string | undefined }> {
  const chunk = chunkSizeFor(src.size);
  const parts = Math.ceil(src.size / chunk);
  if (parts !== src.chunks.length && !(parts === 0 && src.chunks.length === 0)) {
    throw new ToolError('internal', `Upload of ${src.path}: ${src.chunks.length} chunk checksums for ${parts} chunks.`);
  }
  const ContentType = guessContentType(dest.key, true);
  const body = (start: number, length: number) => (length === 0 ? new Uint8Array(0) : createReadStream(src.path, { start, end: start + length - 1 }));
  const target = { bucket: dest.bucket, key: dest.key, action: 'write' as const, verb: 'upload to' };
  const badDigest = (err: unknown) => statusOf(err) === 400 && /BadDigest|InvalidDigest|XAmzContentSHA256Mismatch/.test(nameOf(err));
  if (parts <= 1) {
    return withS3(ctx, target, async (client, { PutObjectCommand }) => {
      try {
        const out = await attempt(signal, () =>
          client.send(
            new PutObjectCommand({
              Bucket: dest.bucket,
              Key: dest.key,
              Body: body(0, src.size),
              ContentLength: src.size,
              ContentType,
              ChecksumSHA256: (src.chunks[0] ?? EMPTY_SHA256).toString('base64'),
            }),
            { abortSignal: signal },
          ),
        );
        return { versionId: out.VersionId };
      } catch (err) {
        if (badDigest(err)) throw changedSince(src.path);
        throw err;
      }
    });
  }
  return withS3(ctx, target, async (client, sdk) => {
    const created = await client.send(
      new sdk.CreateMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, ContentType, ChecksumAlgorithm: 'SHA256', ChecksumType: 'COMPOSITE' }),
      { abortSignal: signal },
    );
    const UploadId = created.UploadId;
    if (!UploadId) throw new ToolError('upstream_error', `S3 started no multipart upload for s3://${dest.bucket}/${dest.key}.`);
    try {
      const numbers = Array.from({ length: parts }, (_, i) => i + 1);
      const done = await mapBounded(numbers, PART_CONCURRENCY, async (PartNumber) => {
        const start = (PartNumber - 1) * chunk;
        const length = Math.min(chunk, src.size - start);
        const ChecksumSHA256 = src.chunks[PartNumber - 1]!.toString('base64');
        const out = await attempt(signal, () =>
          client.send(
            new sdk.UploadPartCommand({ Bucket: dest.bucket, Key: dest.key, UploadId, PartNumber, Body: body(start, length), ContentLength: length, ChecksumSHA256 }),
            { abortSignal: signal },
          ),
        );
        if (!out.ETag) throw new ToolError('upstream_error', `S3 returned no ETag for part ${PartNumber} of s3://${dest.bucket}/${dest.key}.`);
        return { PartNumber, ETag: out.ETag, ChecksumSHA256 };
      });
      const out = await attempt(signal, () =>
        client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId, MultipartUpload: { Parts: done } }), { abortSignal: signal }),
      );
      return { versionId: out.VersionId };
    } catch (err) {
      // Parts of an abandoned upload are billed until aborted.
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId })).catch(() => undefined);
      if (badDigest(err)) throw changedSince(src.path);
      throw err;
    }
  });
}
