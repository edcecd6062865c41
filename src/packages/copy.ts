/**
 * Server-side copies of package sources into the registry bucket (`<name>/<logical key>`, where
 * quilt3 push puts data): CopyObject up to S3's 5 GiB limit, multipart UploadPartCopy above it. The
 * bytes never pass through this process. Every request is pinned to the source version or ETag that
 * was hashed, so the copy holds exactly the hashed bytes or the copy fails.
 */
import type { S3Location } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { mapBounded } from '../core/concurrency.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../core/errors.js';
import type { SourceHead } from './s3-checksum.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface CopyOptions {
  /** Objects larger than this are copied in parts (S3's CopyObject limit: 5 GiB). Internal: tests lower it. */
  multipartThreshold?: number;
  /** Part size of a multipart copy (raised so a copy needs at most 10,000 parts; at least 5 MiB). */
  partSize?: number;
  /** Parts copied at once. */
  concurrency?: number;
}

export const COPY_DEFAULTS = { multipartThreshold: 5 * GiB, partSize: 512 * MiB, concurrency: 4 } as const;

/** `x-amz-copy-source`: bucket/key URL-encoded (the SDK sends it as given), plus the version. */
export function copySource(src: S3Location): string {
  const key = src.key.split('/').map(encodeURIComponent).join('/');
  return `${src.bucket}/${key}${src.versionId && src.versionId !== 'null' ? `?versionId=${encodeURIComponent(src.versionId)}` : ''}`;
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

function changed(src: S3Location): ToolError {
  return new ToolError(
    'conflict',
    `s3://${src.bucket}/${src.key} changed while it was being packaged (its ETag no longer matches what was checksummed).`,
    'Retry once the object is no longer being written.',
  );
}

/**
 * Copies `src` (whose HeadObject is `head`) to `dest`; returns the copy's version id when the
 * registry bucket is versioned. Authorizes read on the source and write on the registry first.
 */
export async function copyObject(
  ctx: RuntimeContext,
  src: S3Location,
  head: SourceHead,
  dest: { bucket: string; key: string },
  options: CopyOptions = {},
  signal?: AbortSignal,
): Promise<{ versionId?: string | undefined }> {
  ctx.authorize(src.bucket, 'read');
  const o = { ...COPY_DEFAULTS, ...options };
  const source = { ...src, versionId: src.versionId ?? head.versionId };
  const CopySource = copySource(source);
  // Unversioned sources are pinned by ETag; a versioned one by its version id (and ETag too, harmless).
  const CopySourceIfMatch = head.etag;
  const target = { bucket: dest.bucket, key: dest.key, action: 'write' as const, verb: 'copy into' };
  if (head.size <= o.multipartThreshold) {
    return withS3(ctx, target, async (client, { CopyObjectCommand }) => {
      try {
        const out = await client.send(new CopyObjectCommand({ Bucket: dest.bucket, Key: dest.key, CopySource, CopySourceIfMatch }), { abortSignal: signal });
        return { versionId: out.VersionId };
      } catch (err) {
        if (statusOf(err) === 412) throw changed(src);
        throw err;
      }
    });
  }

  const partSize = Math.max(o.partSize, 5 * MiB, Math.ceil(head.size / 10_000 / MiB) * MiB);
  const count = Math.ceil(head.size / partSize);
  return withS3(ctx, target, async (client, sdk) => {
    const created = await client.send(
      new sdk.CreateMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, ContentType: head.contentType, Metadata: head.metadata }),
      { abortSignal: signal },
    );
    const UploadId = created.UploadId;
    if (!UploadId) throw new ToolError('upstream_error', `S3 started no multipart upload for s3://${dest.bucket}/${dest.key}.`);
    try {
      const numbers = Array.from({ length: count }, (_, i) => i + 1);
      const parts = await mapBounded(numbers, o.concurrency, async (PartNumber) => {
        const start = (PartNumber - 1) * partSize;
        const end = Math.min(head.size, start + partSize) - 1;
        try {
          const out = await client.send(
            new sdk.UploadPartCopyCommand({
              Bucket: dest.bucket,
              Key: dest.key,
              UploadId,
              PartNumber,
              CopySource,
              CopySourceIfMatch,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
            { abortSignal: signal },
          );
          const ETag = out.CopyPartResult?.ETag;
          if (!ETag) throw new ToolError('upstream_error', `S3 returned no ETag for part ${PartNumber} of the copy to s3://${dest.bucket}/${dest.key}.`);
          return { PartNumber, ETag };
        } catch (err) {
          if (statusOf(err) === 412) throw changed(src);
          throw err;
        }
      });
      const done = await client.send(
        new sdk.CompleteMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId, MultipartUpload: { Parts: parts } }),
        { abortSignal: signal },
      );
      return { versionId: done.VersionId };
    } catch (err) {
      // Parts of an abandoned upload are billed until aborted.
      await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId })).catch(() => undefined);
      throw err;
    }
  });
}
