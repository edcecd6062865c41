/**
 * The S3 clients under concurrency: the SDK's middleware cache (cacheMiddleware) shares one handler
 * context per command class and client, in which each request writes its endpoint before an await;
 * two requests of one class to different buckets at once could then swap endpoints, and a read of
 * s3://a/k answer with s3://b/k. Clients are kept per bucket, so this cannot happen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWithContext, type RuntimeContext } from '../src/context.js';
import { bucketObjectText } from '../src/tools/object-read.js';
import { s3Registry } from '../src/packages/registries.js';
import { getText } from '../src/packages/registry.js';
import type { ToolExtras } from '../src/tools/define.js';
import { s3Context } from './helpers/context.js';
import { objectText } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const BUCKETS = ['clients-a', 'clients-b', 'clients-c'];
let s3: LocalS3;
let ctx: RuntimeContext;

beforeAll(async () => {
  s3 = await startS3({ buckets: BUCKETS });
  ctx = await s3Context(s3.endpoint);
  await Promise.all(BUCKETS.map((b) => s3.put(b, 'same/key.txt', `from ${b}`)));
});

afterAll(async () => {
  await s3?.close();
});

describe('concurrent requests to different buckets', () => {
  it('each read reaches its own bucket (tool calls and registry reads, many at once)', async () => {
    const extras: ToolExtras = { signal: new AbortController().signal, progress: async () => {} };
    const reads = Array.from({ length: 60 }, (_, i) => BUCKETS[i % BUCKETS.length]!).map(async (bucket, i) => {
      const text =
        i % 2
          ? objectText({ isError: false, text: (await runWithContext(ctx, () => bucketObjectText.handler({ uri: `s3://${bucket}/same/key.txt`, max_bytes: 100, offset: 0 }, ctx, extras))).text ?? '', data: undefined, raw: { content: [] } }).content
          : (await getText(s3Registry(ctx, bucket), 'same/key.txt'))?.text;
      return { bucket, text };
    });
    for (const { bucket, text } of await Promise.all(reads)) expect(text).toBe(`from ${bucket}`);
    // And each request went to its bucket.
    const gets = s3.requests.filter((r) => r.method === 'GET' && r.key === 'same/key.txt');
    expect(gets).toHaveLength(60);
  });
});
