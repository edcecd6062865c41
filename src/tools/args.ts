/** Argument schemas shared by several tools, so each is described the same way everywhere. */
import { z } from 'zod';

export const bucketArg = z
  .string()
  .min(1)
  .describe('Bucket name, e.g. "my-bucket" (an "s3://my-bucket" URI is accepted too)');

export const objectUriArg = z
  .string()
  .min(1)
  .describe('Object URI: s3://bucket/path/to/key (append ?versionId=... for a specific version)');

export const isoDate = (d: Date | undefined): string | undefined => (d ? d.toISOString() : undefined);
