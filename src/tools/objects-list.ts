import { z } from 'zod';
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { bucketArg, isoDate, lines, moreLine } from './args.js';
import { defineTool } from './define.js';

export const bucketObjectsList = defineTool({
  name: 'bucket_objects_list',
  title: 'List objects',
  description: 'List objects under a prefix, a page at a time; delimiter "/" lists folders (common_prefixes).',
  toolset: 'buckets',
  kind: 'read',
  input: {
    bucket: bucketArg,
    prefix: z.string().optional().describe('Key prefix'),
    delimiter: z.string().max(8).optional().describe('Usually "/"'),
    max_keys: z.number().int().min(1).max(1000).default(100).describe('Objects per page'),
    continuation_token: z.string().optional().describe('next_continuation_token of the previous call'),
  },
  output: {
    bucket: z.string(),
    prefix: z.string(),
    objects: z.array(
      z.object({
        key: z.string(),
        uri: z.string(),
        size: z.number(),
        last_modified: z.string().optional(),
        etag: z.string().optional(),
        storage_class: z.string().optional(),
      }),
    ),
    common_prefixes: z.array(z.string()),
    is_truncated: z.boolean(),
    next_continuation_token: z.string().optional(),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    const prefix = checkKey(args.prefix ?? '', 'Prefix');
    const out = await withS3(ctx, { bucket, action: 'list', verb: 'list the objects of' }, (client, { ListObjectsV2Command }) =>
      client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix || undefined,
          Delimiter: args.delimiter || undefined,
          MaxKeys: args.max_keys,
          ContinuationToken: args.continuation_token || undefined,
        }),
      ),
    );
    const objects = (out.Contents ?? []).map((o) => ({
      key: o.Key ?? '',
      uri: `s3://${bucket}/${o.Key ?? ''}`,
      size: o.Size ?? 0,
      last_modified: isoDate(o.LastModified),
      etag: o.ETag,
      storage_class: o.StorageClass,
    }));
    const commonPrefixes = (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? '').filter(Boolean);
    const next = out.IsTruncated ? out.NextContinuationToken : undefined;
    const data = {
      bucket,
      prefix,
      objects,
      common_prefixes: commonPrefixes,
      is_truncated: Boolean(out.IsTruncated),
      next_continuation_token: next,
    };
    const where = `s3://${bucket}/${prefix}`;
    const text =
      objects.length + commonPrefixes.length === 0
        ? `Nothing under ${where}.`
        : lines(
            `${objects.length} object(s)${commonPrefixes.length ? ` and ${commonPrefixes.length} folder(s)` : ''} under ${where}:`,
            commonPrefixes.map((p) => `s3://${bucket}/${p}  (folder)`),
            objects.map((o) => `${o.uri}  ${o.size} B  ${o.last_modified ?? ''}`.trimEnd()),
            moreLine('objects', 'continuation_token', next),
          );
    return { data, text };
  },
});
