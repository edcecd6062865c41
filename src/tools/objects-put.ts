import { z } from 'zod';
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { ToolError, toToolError } from '../errors.js';
import { mapS3 } from '../concurrency.js';
import { guessContentType } from '../content-type.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';
import { strictObject } from './schema.js';

const item = strictObject({
  key: z.string().min(1).max(1024).describe('Object key'),
  text: z.string().optional().describe('UTF-8 text'),
  base64: z.string().optional().describe('Or base64'),
  content_type: z.string().optional().describe('Default: from the key'),
  metadata: z.record(z.string(), z.string()).optional().describe('x-amz-meta-* user metadata'),
});

export const bucketObjectsPut = defineTool({
  name: 'bucket_objects_put',
  title: 'Write objects',
  description: 'Write objects from text or base64, replacing any with the same key; each item succeeds or fails on its own.',
  toolset: 'buckets',
  // It replaces existing objects with the same key: a client should confirm before it runs.
  kind: 'destructive',
  idempotent: true,
  input: {
    bucket: bucketArg,
    items: z.array(item).min(1).max(100).describe('Objects to write'),
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
    const lines = results.map((r) =>
      r.ok ? `ok      ${r.uri} (${r.size} B${r.version_id ? `, version ${r.version_id}` : ''})` : `FAILED  ${r.uri}: ${r.error}`,
    );
    if (written === 0) {
      throw new ToolError('upstream_error', `No object was written to ${bucket}:\n${lines.join('\n')}`);
    }
    return {
      data: { bucket, written, failed, results },
      text: `${written} of ${results.length} object(s) written to s3://${bucket}${failed ? `; ${failed} failed` : ''}:\n${lines.join('\n')}`,
    };
  },
});
