/**
 * Listings split across sub-prefixes (aws/list.ts), against s3rver behind the test proxy: every key
 * once and in S3's order however the work was split, exactly the first `max` keys, and fewer
 * round trips than page after page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAll } from '../src/aws/list.js';
import type { RuntimeContext } from '../src/context.js';
import { s3Context } from './helpers/context.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const BUCKET = 'listing';
let s3: LocalS3;
let ctx: RuntimeContext;
const expected: string[] = [];

beforeAll(async () => {
  s3 = await startS3({ buckets: [BUCKET] });
  ctx = await s3Context(s3.endpoint);
  // 2,400 keys: a flat run under a/, nested folders under b/ (two levels), keys directly under the
  // root between them, and a flat folder long enough to need pages of its own. (No key like "b.txt"
  // next to "b/": s3rver walks its folders in an order that differs from S3's there, and loses it.)
  for (let i = 0; i < 300; i++) expected.push(`a/${String(i).padStart(4, '0')}.txt`);
  for (let f = 0; f < 6; f++) for (let g = 0; g < 3; g++) for (let i = 0; i < 60; i++) expected.push(`b/f${f}/g${g}/${String(i).padStart(3, '0')}`);
  expected.push('bz.txt', 'c-direct.txt');
  for (let i = 0; i < 1018; i++) expected.push(`d/${String(i).padStart(5, '0')}`);
  expected.sort();
  for (let i = 0; i < expected.length; i += 100) await Promise.all(expected.slice(i, i + 100).map((k) => s3.put(BUCKET, k, 'x')));
}, 120_000);

afterAll(async () => {
  await s3?.close();
});

const lists = (since: number) => s3.requests.slice(since).filter((r) => r.method === 'GET' && r.bucket === BUCKET && r.key === '');

describe('listAll', () => {
  it('lists every key once, in order, splitting a long listing across its sub-prefixes', async () => {
    const n = s3.requests.length;
    const { keys, truncated } = await listAll(ctx, BUCKET, '');
    expect(truncated).toBe(false);
    expect(keys.map((k) => k.key)).toEqual(expected);
    expect(keys.every((k) => k.size === 1 && k.lastModified instanceof Date)).toBe(true);
    // Split: delimiter listings were asked for, and the sub-prefixes were listed on their own.
    const requests = lists(n);
    expect(requests.some((r) => r.query.get('delimiter') === '/')).toBe(true);
    expect(requests.some((r) => r.query.get('prefix') === 'd/')).toBe(true);
  });

  it('keeps exactly the first `max` keys and says there were more', async () => {
    for (const max of [1, 999, 1000, 1500, expected.length - 1]) {
      const { keys, truncated } = await listAll(ctx, BUCKET, '', { max });
      expect(keys.map((k) => k.key), `max ${max}`).toEqual(expected.slice(0, max));
      expect(truncated, `max ${max}`).toBe(true);
    }
    const all = await listAll(ctx, BUCKET, '', { max: expected.length });
    expect(all.truncated).toBe(false);
    expect(all.keys).toHaveLength(expected.length);
  });

  it('pages through a prefix without sub-prefixes, and lists short prefixes in one request', async () => {
    let n = s3.requests.length;
    const flat = await listAll(ctx, BUCKET, 'd/');
    expect(flat.keys.map((k) => k.key)).toEqual(expected.filter((k) => k.startsWith('d/')));
    expect(lists(n).filter((r) => !r.query.has('delimiter'))).toHaveLength(2);
    n = s3.requests.length;
    const short = await listAll(ctx, BUCKET, 'b/f1/');
    expect(short.keys).toHaveLength(180);
    expect(lists(n)).toHaveLength(1);
  });

  it('needs list on the bucket, checked before any request', async () => {
    const n = s3.requests.length;
    const denied = { ...ctx, authorize: () => { throw new Error('not allowed'); } } as unknown as RuntimeContext;
    await expect(listAll(denied, BUCKET, '')).rejects.toThrow();
    expect(s3.requests.length).toBe(n);
  });
});
