/**
 * The bucket tools end to end: the built server over stdio (real MCP client), against s3rver
 * behind a local policy proxy, with a local STS for auth_status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapBounded } from '../src/core/concurrency.js';
import { call, connectStdio, objectText, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

// A 1x1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
const MIXED = 'Grüße aus Köln – 日本語のテキスト – emoji 😀 end.\n'.repeat(20);

const SESSION_CANARY = 'canary-session-token-must-not-leak';

let s3: LocalS3;
let sts: LocalSts;
let h: Harness;

beforeAll(async () => {
  s3 = await startS3({
    buckets: ['data-bucket', 'private-bucket'],
    deny: (r) => (r.bucket === 'private-bucket' || r.key.startsWith('secret/') ? 'AccessDenied' : r.key.startsWith('expired/') ? 'ExpiredToken' : undefined),
  });
  sts = await startSts();
  const keys = Array.from({ length: 1050 }, (_, i) => `many/item-${String(i).padStart(4, '0')}.txt`);
  await mapBounded(keys, 16, (k) => s3.put('data-bucket', k, k));
  await s3.put('data-bucket', 'README.md', '# Data\n\nHello, S3.\n', 'text/markdown');
  await s3.put('data-bucket', 'empty.txt', '');
  await s3.put('data-bucket', 'unicode/naïve café/日本語.txt', 'unicode key works');
  await s3.put('data-bucket', 'unicode/😀 emoji.txt', 'astral key works');
  await s3.put('data-bucket', 'mixed.txt', MIXED, 'text/plain');
  await s3.put('data-bucket', 'utf16.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('UTF-16 text ✓', 'utf16le')]));
  await s3.put('data-bucket', 'latin1.txt', Buffer.from('caf\xe9 cr\xe8me', 'latin1'));
  await s3.put('data-bucket', 'pixel.png', PNG, 'image/png');
  await s3.put('data-bucket', 'blob.bin', Buffer.from([1, 0, 2, 0, 3, 0, 255, 254]), 'application/octet-stream');
  await s3.put('data-bucket', 'secret/plan.txt', 'top secret');
  await s3.put('data-bucket', 'expired/x.txt', 'x');
  h = await connectStdio(s3Env(s3.endpoint, { AWS_ENDPOINT_URL_STS: sts.endpoint, AWS_SESSION_TOKEN: SESSION_CANARY }));
}, 120_000);

afterAll(async () => {
  await h?.close();
  await s3?.close();
  await sts?.close();
});

describe('tool list', () => {
  it('declares every tool with description, schemas and annotations derived from its kind', async () => {
    const { tools } = await h.client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'auth_status',
        'bucket_list',
        'bucket_objects_list',
        'bucket_object_info',
        'bucket_object_text',
        'bucket_object_fetch',
        'bucket_object_link',
        'bucket_objects_put',
      ]),
    );
    for (const t of tools) {
      expect(t.description?.length, t.name).toBeGreaterThan(30);
      expect(t.inputSchema.type).toBe('object');
      // Object contents are answered in text alone (once), so these two have no structured half.
      if (t.name === 'bucket_object_text' || t.name === 'bucket_object_fetch') expect(t.outputSchema, t.name).toBeUndefined();
      else expect(t.outputSchema?.type, t.name).toBe('object');
      expect(typeof t.annotations?.readOnlyHint, t.name).toBe('boolean');
      expect(typeof t.annotations?.destructiveHint, t.name).toBe('boolean');
    }
    const put = tools.find((t) => t.name === 'bucket_objects_put');
    // It overwrites objects with the same key.
    expect(put?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(tools.find((t) => t.name === 'discover_permissions')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    const list = tools.find((t) => t.name === 'bucket_objects_list');
    expect(list?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
  });
});

describe('listing', () => {
  it('lists buckets', async () => {
    const r = await call(h.client, 'bucket_list');
    expect(r.isError).toBe(false);
    expect(r.data.buckets.map((b: { name: string }) => b.name)).toEqual(expect.arrayContaining(['data-bucket', 'private-bucket']));
    expect(r.text).toContain('data-bucket');
  });

  it('pages through more than 1,000 keys with continuation tokens', async () => {
    const first = await call(h.client, 'bucket_objects_list', { bucket: 'data-bucket', prefix: 'many/', max_keys: 1000 });
    expect(first.isError).toBe(false);
    expect(first.data.objects).toHaveLength(1000);
    expect(first.data.is_truncated).toBe(true);
    expect(first.data.next_continuation_token).toBeTruthy();
    const second = await call(h.client, 'bucket_objects_list', {
      bucket: 's3://data-bucket',
      prefix: 'many/',
      max_keys: 1000,
      continuation_token: first.data.next_continuation_token,
    });
    expect(second.data.objects).toHaveLength(50);
    expect(second.data.is_truncated).toBe(false);
    const all = [...first.data.objects, ...second.data.objects].map((o: { key: string }) => o.key);
    expect(new Set(all).size).toBe(1050);
    expect(first.data.objects[0]).toMatchObject({ key: 'many/item-0000.txt', uri: 's3://data-bucket/many/item-0000.txt', size: 18 });
  });

  it('groups by delimiter into common prefixes', async () => {
    const r = await call(h.client, 'bucket_objects_list', { bucket: 'data-bucket', delimiter: '/' });
    expect(r.data.common_prefixes).toEqual(expect.arrayContaining(['many/', 'unicode/', 'secret/']));
    expect(r.data.objects.map((o: { key: string }) => o.key)).toContain('README.md');
    expect(r.data.objects.map((o: { key: string }) => o.key)).not.toContain('many/item-0000.txt');
  });

  it('lists and reads unicode keys', async () => {
    const r = await call(h.client, 'bucket_objects_list', { bucket: 'data-bucket', prefix: 'unicode/' });
    const keys = r.data.objects.map((o: { key: string }) => o.key);
    expect(keys).toEqual(expect.arrayContaining(['unicode/naïve café/日本語.txt', 'unicode/😀 emoji.txt']));
    const t = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/unicode/naïve café/日本語.txt' });
    expect(objectText(t).content).toBe('unicode key works');
    const e = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/unicode/😀 emoji.txt' });
    expect(objectText(e).content).toBe('astral key works');
  });
});

describe('reading', () => {
  it('returns object metadata', async () => {
    const r = await call(h.client, 'bucket_object_info', { uri: 's3://data-bucket/README.md' });
    expect(r.isError).toBe(false);
    expect(r.data).toMatchObject({ bucket: 'data-bucket', key: 'README.md', size: 19, content_type: 'text/markdown' });
    expect(r.data.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(Date.parse(r.data.last_modified)).toBeGreaterThan(0);
  });

  it('reads a zero-byte object as empty text', async () => {
    const r = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/empty.txt' });
    expect(r.isError).toBe(false);
    expect(r.raw.structuredContent).toBeUndefined();
    expect(objectText(r)).toMatchObject({ content: '', size: 0, next_offset: undefined });
    const info = await call(h.client, 'bucket_object_info', { uri: 's3://data-bucket/empty.txt' });
    expect(info.data.size).toBe(0);
  });

  it('reads text in ranges that never split a character', async () => {
    const total = Buffer.byteLength(MIXED);
    let offset = 0;
    let text = '';
    let calls = 0;
    for (;;) {
      const r = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/mixed.txt', offset, max_bytes: 7 });
      expect(r.isError, r.text).toBe(false);
      // Read from the text alone, as a model would.
      const o = objectText(r);
      expect(o.size).toBe(total);
      text += o.content;
      calls++;
      if (o.next_offset === undefined) break;
      expect(o.next_offset).toBeGreaterThan(offset);
      offset = o.next_offset;
    }
    expect(text).toBe(MIXED);
    expect(calls).toBeGreaterThan(total / 7 - 1);
  }, 120_000);

  it('detects UTF-16 and Windows-1252 text', async () => {
    const u = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/utf16.txt' });
    expect(objectText(u)).toMatchObject({ encoding: 'utf-16le', content: 'UTF-16 text ✓' });
    const l = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/latin1.txt' });
    expect(objectText(l)).toMatchObject({ encoding: 'windows-1252', content: 'café crème' });
    const a = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/README.md', max_bytes: 6 });
    expect(objectText(a)).toMatchObject({ encoding: 'ascii', content: '# Data', first: 0, stop: 6, size: 19, next_offset: 6 });
    expect(a.text).toBe('s3://data-bucket/README.md: ascii, text/markdown, bytes 0-6 of 19:\n# Data\n[truncated: 13 more bytes; continue with offset=6]');
  });

  it('refuses binary content with a hint to fetch it', async () => {
    for (const key of ['pixel.png', 'blob.bin']) {
      const r = await call(h.client, 'bucket_object_text', { uri: `s3://data-bucket/${key}` });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('is not text');
      expect(r.text).toContain('bucket_object_fetch');
    }
  });

  it('fetches small binary objects as base64, images also as an image', async () => {
    const r = await call(h.client, 'bucket_object_fetch', { uri: 's3://data-bucket/pixel.png' });
    expect(r.isError).toBe(false);
    // The image once, as an image; the text says what it is.
    const image = r.raw.content.find((c) => c.type === 'image');
    expect(image && Buffer.from(image.data, 'base64').equals(PNG)).toBe(true);
    expect(r.text).toBe(`s3://data-bucket/pixel.png: ${PNG.length} bytes of image/png, shown as an image.`);
    expect(r.raw.structuredContent).toBeUndefined();
    const blob = await call(h.client, 'bucket_object_fetch', { uri: 's3://data-bucket/blob.bin' });
    expect(blob.text).toBe(`s3://data-bucket/blob.bin: 8 bytes of application/octet-stream, base64:\n${Buffer.from([1, 0, 2, 0, 3, 0, 255, 254]).toString('base64')}`);
    const big = await call(h.client, 'bucket_object_fetch', { uri: 's3://data-bucket/blob.bin', max_bytes: 4 });
    expect(big.isError).toBe(true);
    expect(big.text).toMatch(/is 8 bytes, more than max_bytes \(4\)[\s\S]*Fix: Call again with max_bytes=8/);
    // Text is steered to bucket_object_text, whatever its size.
    const text = await call(h.client, 'bucket_object_fetch', { uri: 's3://data-bucket/mixed.txt' });
    expect(text.isError).toBe(true);
    expect(text.text).toMatch(/s3:\/\/data-bucket\/mixed\.txt is text \(\d+ bytes, text\/plain\)[\s\S]*Fix: Read it with bucket_object_text\(uri="s3:\/\/data-bucket\/mixed\.txt"\)/);
    const empty = await call(h.client, 'bucket_object_fetch', { uri: 's3://data-bucket/empty.txt' });
    expect(empty.text).toMatch(/^s3:\/\/data-bucket\/empty\.txt: 0 bytes.*base64:\n$/);
  });

  it('makes presigned links that download the object', async () => {
    const r = await call(h.client, 'bucket_object_link', { uri: 's3://data-bucket/README.md', expires_in: 600 });
    expect(r.isError).toBe(false);
    const url = new URL(r.data.url);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('600');
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    const body = await (await fetch(r.data.url)).text();
    expect(body).toBe('# Data\n\nHello, S3.\n');
    const missing = await call(h.client, 'bucket_object_link', { uri: 's3://data-bucket/nope.txt' });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('does not exist');
    const tooLong = await call(h.client, 'bucket_object_link', { uri: 's3://data-bucket/README.md', expires_in: 999_999 });
    expect(tooLong.isError).toBe(true);
  });
});

describe('writing', () => {
  it('writes each item and reports failures separately', async () => {
    const r = await call(h.client, 'bucket_objects_put', {
      bucket: 'data-bucket',
      items: [
        { key: 'out/notes.md', text: '# Notes ✓' },
        { key: 'out/bytes.bin', base64: Buffer.from([0, 1, 2, 3]).toString('base64'), metadata: { origin: 'test' } },
        { key: 'out/bad.txt', text: 'x', base64: 'eA==' },
        { key: 'secret/overwrite.txt', text: 'denied' },
      ],
    });
    expect(r.isError).toBe(false);
    expect(r.data).toMatchObject({ written: 2, failed: 2 });
    expect(r.data.results.map((x: { ok: boolean }) => x.ok)).toEqual([true, true, false, false]);
    expect(r.data.results[2].error).toContain('exactly one of text or base64');
    expect(r.data.results[3].error).toContain('Access denied');
    const back = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/out/notes.md' });
    expect(objectText(back).content).toBe('# Notes ✓');
    const info = await call(h.client, 'bucket_object_info', { uri: 's3://data-bucket/out/bytes.bin' });
    expect(info.data).toMatchObject({ size: 4, metadata: { origin: 'test' }, content_type: 'application/octet-stream' });
    const md = await call(h.client, 'bucket_object_info', { uri: 's3://data-bucket/out/notes.md' });
    expect(md.data.content_type).toBe('text/markdown; charset=utf-8');
  });

  it('is an error when no item could be written', async () => {
    const r = await call(h.client, 'bucket_objects_put', { bucket: 'private-bucket', items: [{ key: 'a.txt', text: 'a' }] });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('No object was written');
  });
});

describe('errors a person can act on', () => {
  it('maps AccessDenied, NoSuchKey, NoSuchBucket and ExpiredToken', async () => {
    const denied = await call(h.client, 'bucket_objects_list', { bucket: 'private-bucket' });
    expect(denied.isError).toBe(true);
    expect(denied.text).toMatch(/^Access denied: your AWS credentials may not list the objects of bucket "private-bucket"/);
    expect(denied.text).toContain('Fix:');
    const deniedRead = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/secret/plan.txt' });
    expect(deniedRead.text).toContain('Access denied');
    const missing = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/missing.txt' });
    expect(missing.text).toContain('s3://data-bucket/missing.txt does not exist');
    const missingHead = await call(h.client, 'bucket_object_info', { uri: 's3://data-bucket/missing.txt' });
    expect(missingHead.text).toContain('does not exist');
    const noBucket = await call(h.client, 'bucket_objects_list', { bucket: 'no-such-bucket' });
    expect(noBucket.text).toContain('Bucket "no-such-bucket" does not exist');
    const expired = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/expired/x.txt' });
    expect(expired.text).toContain('Your AWS credentials have expired');
    for (const r of [denied, deniedRead, missing, missingHead, noBucket, expired]) {
      expect(r.isError).toBe(true);
      expect(r.text).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('explains malformed URIs and arguments', async () => {
    const bad = await call(h.client, 'bucket_object_text', { uri: 'data-bucket/README.md' });
    expect(bad.isError).toBe(true);
    expect(bad.text).toContain('is not an S3 URI');
    const noKey = await call(h.client, 'bucket_object_info', { uri: 's3://data-bucket' });
    expect(noKey.text).toContain('names a bucket but no object key');
    const badBucket = await call(h.client, 'bucket_objects_list', { bucket: 'x' });
    expect(badBucket.text).toContain('is not a bucket name');
    const range = await call(h.client, 'bucket_object_text', { uri: 's3://data-bucket/README.md', offset: 1000 });
    expect(range.text).toContain('past the end');
    const schema = await call(h.client, 'bucket_objects_list', { bucket: 'data-bucket', max_keys: 5000 });
    expect(schema.isError).toBe(true);
  });
});

describe('auth_status', () => {
  it('shows the AWS identity and credential source without secrets', async () => {
    const r = await call(h.client, 'auth_status');
    expect(r.isError).toBe(false);
    expect(r.data.mode).toBe('desktop');
    expect(r.data.aws).toMatchObject({ available: true, identity: { arn: 'arn:aws:iam::123456789012:user/local-tester' } });
    expect(r.data.aws.source).toContain('environment variables');
    expect(JSON.stringify(r.raw)).not.toContain(SESSION_CANARY);
    expect(h.stderr()).not.toContain(SESSION_CANARY);
    expect(sts.identityCalls.length).toBeGreaterThan(0);
  });
});

describe('network failure', () => {
  it('says the endpoint is unreachable', async () => {
    const down = await connectStdio(s3Env('http://127.0.0.1:9', { AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9' }));
    try {
      const r = await call(down.client, 'bucket_objects_list', { bucket: 'data-bucket' });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('Could not reach the S3/AWS endpoint');
      const status = await call(down.client, 'auth_status');
      expect(status.data.aws.available).toBe(false);
      expect(status.data.aws.error).toContain('Could not reach');
    } finally {
      await down.close();
    }
  });
});
