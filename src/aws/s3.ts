/**
 * One way for tools to call S3: authorize against the caller's claims first, take the client from
 * the caller's context (for the bucket's own region), and turn any SDK failure into a ToolError
 * that names what was attempted.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { awsClients, type BucketAction, type RuntimeContext } from '../context.js';
import { fromAwsError } from '../core/errors.js';
import { loadS3, redirectRegion, type S3Module } from './clients.js';

export interface S3Target {
  bucket: string;
  key?: string | undefined;
  /** Checked against the caller's permissions before any AWS call. */
  action: BucketAction;
  /** Verb phrase for messages: "read", "list the objects of", "write". */
  verb: string;
}

/**
 * Runs `fn` with a client for the bucket's region. A bucket in another region answers 301 with its
 * region; the region is remembered and `fn` runs again, re-signed for it (a redirect means S3 did
 * nothing, so running again is safe). Done here rather than by the SDK's followRegionRedirects,
 * which re-signs by swapping the region of a client shared by concurrent requests.
 */
export async function withS3<T>(
  ctx: RuntimeContext,
  target: S3Target,
  fn: (client: S3Client, sdk: S3Module) => Promise<T>,
): Promise<T> {
  ctx.authorize(target.bucket, target.action);
  const clients = awsClients(ctx);
  try {
    const region = clients.knownRegion(target.bucket);
    const [sdk, client] = await Promise.all([loadS3(), clients.s3(region, { followRedirects: false, bucket: target.bucket })]);
    try {
      return await fn(client, sdk);
    } catch (err) {
      const moved = redirectRegion(err);
      if (!moved || moved === region) throw err;
      clients.rememberRegion(target.bucket, moved);
      return await fn(await clients.s3(moved, { followRedirects: false, bucket: target.bucket }), sdk);
    }
  } catch (err) {
    throw fromAwsError(err, { action: target.verb, bucket: target.bucket, key: target.key });
  }
}
