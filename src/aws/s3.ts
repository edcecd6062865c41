/**
 * One way for tools to call S3: authorize against the caller's claims first, take the client from
 * the caller's context, and turn any SDK failure into a ToolError that names what was attempted.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { awsClients, type BucketAction, type RuntimeContext } from '../context.js';
import { fromAwsError } from '../errors.js';
import { loadS3, type S3Module } from './clients.js';

export interface S3Target {
  bucket: string;
  key?: string | undefined;
  /** Checked against the caller's permissions before any AWS call. */
  action: BucketAction;
  /** Verb phrase for messages: "read", "list the objects of", "write". */
  verb: string;
}

export async function withS3<T>(
  ctx: RuntimeContext,
  target: S3Target,
  fn: (client: S3Client, sdk: S3Module) => Promise<T>,
): Promise<T> {
  ctx.authorize(target.bucket, target.action);
  const clients = awsClients(ctx);
  try {
    const [sdk, client] = await Promise.all([loadS3(), clients.s3()]);
    return await fn(client, sdk);
  } catch (err) {
    throw fromAwsError(err, { action: target.verb, bucket: target.bucket, key: target.key });
  }
}
