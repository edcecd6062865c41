import { z } from 'zod';
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { ToolError, toToolError } from '../errors.js';
import { mapS3 } from '../concurrency.js';
import { guessContentType } from '../content-type.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';

const item = z.object({
  key: z.string().min(1).max(1024).describe('Object key, e.g. "reports/summary.md"'),
  text: z.string().optional().describe('Content as text (stored as UTF-8)'),
  base64: z.string().optional().describe('Content as base64, for binary data'),
  content_type: z.string().optional().describe('MIME type; guessed from the key when omitted'),
  metadata: z.record(z.string(), z.string()).optional().describe('User metadata (x-amz-meta-*)'),
});

export const bucketObjectsPut = defineTool({
  name: 'bucket_objects_put',
  title: 'Write objects',
  description:
    'Write one or more objects to an S3 bucket, each from text or base64. Existing objects with the same key are replaced. ' +
    'Each item is reported separately: one failure does not stop the others.',
  toolset: 'buckets',
  // It replaces existing objects with the same key: a client should confirm before it runs.
  kind: 'destructive',
  idempotent: true,
  input: {
    bucket: bucketArg,
    items: z.array(item).min(1).max(100).describe('Objects to write (1-100)'),
  },
  output: {
    bucket: z.string(),
    written: z.number(),
    failed: z.number(),
    results: z.array(
      z.object({
        key: z.string(),
        uri: z.string(),
        ok: z.boolean(),
        size: z.number().optional(),
        etag: z.string().optional(),
        version_id: z.string().optional(),
        error: z.string().optional(),
      }),
    ),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    ctx.authorize(bucket, 'write');
    const results = await mapS3(args.items, async (it) => {
      const uri = `s3://${bucket}/${it.key}`;
      try {
        checkKey(it.key);
        if ((it.text === undefined) === (it.base64 === undefined)) {
          throw new ToolError('invalid_input', `Item "${it.key}" needs exactly one of text or base64.`);
        }
        let body: Buffer;
        if (it.text !== undefined) body = Buffer.from(it.text, 'utf8');
        else {
          const b64 = (it.base64 ?? '').replace(/\s+/g, '');
          if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw new ToolError('invalid_input', `Item "${it.key}": base64 is not valid.`);
          body = Buffer.from(b64, 'base64');
        }
        const out = await withS3(ctx, { bucket, key: it.key, action: 'write', verb: 'write' }, (client, { PutObjectCommand }) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: it.key,
              Body: body,
              ContentType: it.content_type ?? guessContentType(it.key, it.text !== undefined),
              Metadata: it.metadata,
            }),
          ),
        );
        return { key: it.key, uri, ok: true, size: body.length, etag: out.ETag, version_id: out.VersionId };
      } catch (err) {
        return { key: it.key, uri, ok: false, error: toToolError(err).text };
      }
    });
    const written = results.filter((r) => r.ok).length;
    const failed = results.length - written;
    const lines = results.map((r) => (r.ok ? `ok      ${r.uri} (${r.size} B)` : `FAILED  ${r.uri}: ${r.error}`));
    if (written === 0) {
      throw new ToolError('upstream_error', `No object was written to ${bucket}:\n${lines.join('\n')}`);
    }
    return {
      data: { bucket, written, failed, results },
      text: `${written} of ${results.length} object(s) written to s3://${bucket}${failed ? `; ${failed} failed` : ''}:\n${lines.join('\n')}`,
    };
  },
});
