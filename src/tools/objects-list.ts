import { z } from 'zod';
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { bucketArg, isoDate } from './args.js';
import { defineTool } from './define.js';

export const bucketObjectsList = defineTool({
  name: 'bucket_objects_list',
  title: 'List objects',
  description:
    'List objects in an S3 bucket under an optional prefix, one page at a time. Use delimiter "/" to browse like folders ' +
    '(sub-folders come back as common_prefixes). Pass next_continuation_token back as continuation_token for the next page.',
  toolset: 'buckets',
  kind: 'read',
  input: {
    bucket: bucketArg,
    prefix: z.string().optional().describe('Only keys starting with this, e.g. "data/2024/"'),
    delimiter: z.string().max(8).optional().describe('Group keys by this character, usually "/"'),
    max_keys: z.number().int().min(1).max(1000).default(100).describe('Objects per page (1-1000)'),
    continuation_token: z.string().optional().describe('next_continuation_token from the previous page'),
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
    const data = {
      bucket,
      prefix,
      objects,
      common_prefixes: commonPrefixes,
      is_truncated: Boolean(out.IsTruncated),
      next_continuation_token: out.IsTruncated ? out.NextContinuationToken : undefined,
    };
    const lines = [
      ...commonPrefixes.map((p) => `${p}  (prefix)`),
      ...objects.map((o) => `${o.key}  ${o.size} B  ${o.last_modified ?? ''}`),
    ];
    const where = `s3://${bucket}/${prefix}`;
    const text =
      lines.length === 0
        ? `Nothing under ${where}.`
        : `${objects.length} object(s)${commonPrefixes.length ? ` and ${commonPrefixes.length} prefix(es)` : ''} under ${where}:\n${lines.join('\n')}` +
          (data.is_truncated ? `\nMore results: call again with continuation_token="${data.next_continuation_token}".` : '');
    return { data, text };
  },
});
