/** Reads of a byte range of an S3 object, shared by the object tools and the object resources. */
import type { S3Client } from '@aws-sdk/client-s3';
import { ToolError } from '../core/errors.js';
import type { S3Module } from './clients.js';
import { formatS3Uri, type S3Location } from './s3-uri.js';

export interface RangeRead {
  bytes: Uint8Array;
  /** Size of the whole object. */
  total: number;
  contentType: string | undefined;
  versionId: string | undefined;
}

/**
 * Reads bytes [offset, offset + length) with an explicit Range (some S3-compatible servers get
 * suffix ranges wrong). S3 answers 416 for any range of an empty object: that is an empty read.
 */
export async function readRange(client: S3Client, sdk: S3Module, loc: S3Location, offset: number, length: number): Promise<RangeRead> {
  try {
    const out = await client.send(
      new sdk.GetObjectCommand({
        Bucket: loc.bucket,
        Key: loc.key,
        VersionId: loc.versionId,
        Range: `bytes=${offset}-${offset + length - 1}`,
      }),
    );
    let bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
    const total = Number(/\/(\d+)$/.exec(out.ContentRange ?? '')?.[1] ?? Number.NaN);
    if (Number.isNaN(total)) {
      // 200 without Content-Range: the server sent the whole object.
      const whole = bytes.length;
      bytes = bytes.subarray(offset, offset + length);
      return { bytes, total: whole, contentType: out.ContentType, versionId: out.VersionId };
    }
    return { bytes, total, contentType: out.ContentType, versionId: out.VersionId };
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((err as Error).name !== 'InvalidRange' && status !== 416) throw err;
    const head = await client.send(new sdk.HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId }));
    const size = head.ContentLength ?? 0;
    if (size === 0) return { bytes: new Uint8Array(), total: 0, contentType: head.ContentType, versionId: head.VersionId };
    throw new ToolError(
      'invalid_input',
      `offset ${offset} is past the end of ${formatS3Uri(loc)} (${size} bytes).`,
      `Use an offset below ${size}.`,
    );
  }
}
