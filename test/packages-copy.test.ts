/**
 * Package copy mode and checksum reuse. End to end (built server over stdio, s3rver behind the
 * proxy that plays S3's stored checksums, GetObjectAttributes and UploadPartCopy): sources copied
 * server-side into the registry at <name>/<logical key>, hashes equal to quilt3's known answers,
 * one request per source, and no hashing of a source whose SHA-256 checksum S3 already holds. In process: the multipart
 * copy path with a lowered threshold, pinning to the hashed ETag, and authorization.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeContext } from '../src/context.js';
import { ToolError } from '../src/errors.js';
import { s3Registry } from '../src/packages/registries.js';
import { materialize } from '../src/packages/build.js';
import { chunkedHashOf } from '../src/packages/chunked-hash.js';
import { copyObject } from '../src/packages/copy.js';
import { chunkedFromComposite, chunkedFromFullObject, headSource } from '../src/packages/s3-checksum.js';
import type { ToolExtras } from '../src/tools/define.js';
import { s3Context } from './helpers/context.js';
import { call, connectStdio, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3, type S3Request } from './helpers/s3.js';

const REG = 'copy-registry';
const SRC = 'copy-source';
const MiB = 1024 * 1024;
// Known answers (reference/quilt-formats.md).
const HELLO = Buffer.from('Hello, World!');
const HELLO_HASH = 'BCp9ZKWB7y7pg/IQWIAcw1ZjtwXmxV9i+o4PGOzHCYk=';
const EIGHT = Buffer.from('12345678'.repeat(1_048_576));
const EIGHT_HASH = '7V3rZ3Q/AmAYax2wsQBZbc7N1EMIxlxRyMiMthGRdwg=';
const EMPTY_HASH = '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=';
// 8 MiB + 5 bytes: two chunks; uploaded in 8 MiB parts its composite checksum is the chunked hash.
const BIG = Buffer.concat([EIGHT, Buffer.from('tail!')]);

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64');

let s3: LocalS3;
let h: Harness;

async function object(bucket: string, key: string): Promise<Buffer> {
  const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function manifestEntries(hash: string): Promise<Array<{ logical_key: string; physical_keys: string[]; size: number; hash: { value: string } }>> {
  const lines = (await object(REG, `.quilt/packages/${hash}`)).toString('utf8').trim().split('\n');
  return lines.slice(1).map((l) => JSON.parse(l));
}

const sourceGets = (since: number, keys: string[]) =>
  s3.requests.slice(since).filter((r) => r.bucket === SRC && r.method === 'GET' && !r.query.has('attributes') && keys.includes(r.key));

beforeAll(async () => {
  s3 = await startS3({ buckets: [REG, SRC] });
  await s3.put(SRC, 'data/plain.csv', 'a,b\n1,2\n');
  await s3.putWithChecksum(SRC, 'data/hello.txt', HELLO);
  await s3.putWithChecksum(SRC, 'data/eight.bin', EIGHT);
  await s3.putWithChecksum(SRC, 'data/big.bin', BIG, { partSize: 8 * MiB });
  // A multipart upload in parts that are not quilt's chunks: its composite is not the chunked hash.
  await s3.putWithChecksum(SRC, 'data/odd-parts.bin', BIG, { partSize: 5 * MiB });
  // One 8 MiB + 5 byte part: a full-object checksum of more than one chunk says nothing.
  await s3.putWithChecksum(SRC, 'data/big-single.bin', BIG);
  await s3.putWithChecksum(SRC, 'data/empty.txt', Buffer.alloc(0));
  h = await connectStdio(s3Env(s3.endpoint));
}, 60_000);

afterAll(async () => {
  await h?.close();
  await s3?.close();
});

describe('sha2-256-chunked from S3 checksums (known answers)', () => {
  it('one chunk: the full-object sha256 hashed once more', () => {
    expect(chunkedFromFullObject(HELLO.length, sha256(HELLO))).toBe(HELLO_HASH);
    expect(chunkedFromFullObject(EIGHT.length, sha256(EIGHT))).toBe(EIGHT_HASH);
    expect(chunkedHashOf(HELLO)).toBe(HELLO_HASH);
  });

  it('empty: no chunks, so the value is sha256 of nothing, the checksum itself', () => {
    expect(chunkedFromFullObject(0, sha256(Buffer.alloc(0)))).toBe(EMPTY_HASH);
  });

  it('more than one chunk: a full-object checksum is of no use; a composite of 8 MiB parts is the value', () => {
    expect(chunkedFromFullObject(BIG.length, sha256(BIG))).toBeUndefined();
    const parts = [EIGHT, Buffer.from('tail!')];
    const composite = sha256(Buffer.concat(parts.map((p) => createHash('sha256').update(p).digest())));
    expect(chunkedFromComposite(BIG.length, `${composite}-2`, [8 * MiB, 5])).toBe(chunkedHashOf(BIG));
    expect(chunkedFromComposite(BIG.length, composite, [8 * MiB, 5])).toBe(chunkedHashOf(BIG));
    // Other part layouts hash other byte ranges.
    expect(chunkedFromComposite(BIG.length, composite, [5 * MiB, 3 * MiB + 5])).toBeUndefined();
    expect(chunkedFromComposite(BIG.length, composite, [8 * MiB])).toBeUndefined();
    // A single-part composite of one chunk is sha256(sha256(data)) too.
    const one = sha256(createHash('sha256').update(HELLO).digest());
    expect(chunkedFromComposite(HELLO.length, `${one}-1`, [HELLO.length])).toBe(HELLO_HASH);
  });
});

describe('package_create copy=true (built server)', () => {
  it('copies the sources into the registry at <name>/<logical key>, with quilt3 hashes, without reading checksummed sources', async () => {
    const n = s3.requests.length;
    const r = await call(h.client, 'package_create', {
      bucket: REG,
      name: 'team/copied',
      copy: true,
      entries: [
        { logical_key: 'plain.csv', s3_uri: `s3://${SRC}/data/plain.csv` },
        { logical_key: 'hello.txt', s3_uri: `s3://${SRC}/data/hello.txt` },
        { logical_key: 'nested/eight.bin', s3_uri: `s3://${SRC}/data/eight.bin` },
        { logical_key: 'big.bin', s3_uri: `s3://${SRC}/data/big.bin` },
        { logical_key: 'empty.txt', s3_uri: `s3://${SRC}/data/empty.txt` },
        { logical_key: 'note.md', text: '# copied' },
      ],
    });
    expect(r.isError, r.text).toBe(false);
    const entries = await manifestEntries(r.data.top_hash);
    const byKey = Object.fromEntries(entries.map((e) => [e.logical_key, e]));
    expect(byKey['hello.txt']?.hash.value).toBe(HELLO_HASH);
    expect(byKey['nested/eight.bin']?.hash.value).toBe(EIGHT_HASH);
    expect(byKey['big.bin']?.hash.value).toBe(chunkedHashOf(BIG));
    expect(byKey['empty.txt']?.hash.value).toBe(EMPTY_HASH);
    expect(byKey['plain.csv']?.hash.value).toBe(chunkedHashOf(Buffer.from('a,b\n1,2\n')));
    // Every entry lives in the registry bucket, next to the package, and holds the source's bytes.
    for (const e of entries) {
      expect(e.physical_keys).toEqual([`s3://${REG}/team/copied/${e.logical_key}`]);
    }
    expect((await object(REG, 'team/copied/big.bin')).equals(BIG)).toBe(true);
    expect((await object(REG, 'team/copied/nested/eight.bin')).equals(EIGHT)).toBe(true);
    expect((await object(REG, 'team/copied/hello.txt')).toString()).toBe('Hello, World!');
    // Copies are server-side CopyObject, pinned to the ETag that was checksummed.
    const copies = s3.requests.slice(n).filter((q) => q.method === 'PUT' && q.bucket === REG && q.headers['x-amz-copy-source']);
    expect(copies.map((q) => q.key).sort()).toEqual(['team/copied/big.bin', 'team/copied/empty.txt', 'team/copied/hello.txt', 'team/copied/nested/eight.bin', 'team/copied/plain.csv']);
    expect(copies.every((q) => typeof q.headers['x-amz-copy-source-if-match'] === 'string')).toBe(true);
    // One request per source, a GET whose answer carries S3's checksum (no HEAD first): where the
    // checksum gives the hash the body is not hashed (proved below with a checksum that lies).
    for (const key of ['data/plain.csv', 'data/hello.txt', 'data/eight.bin', 'data/big.bin', 'data/empty.txt']) expect(sourceGets(n, [key]), key).toHaveLength(1);
    expect(s3.requests.slice(n).filter((q) => q.bucket === SRC && q.method === 'HEAD')).toEqual([]);
    // The composite's part sizes came from GetObjectAttributes.
    expect(s3.requests.slice(n).some((q) => q.key === 'data/big.bin' && q.query.has('attributes'))).toBe(true);
  });

  it('reads sources whose checksum does not give the chunked hash (other parts, one big part)', async () => {
    const n = s3.requests.length;
    const r = await call(h.client, 'package_create', {
      bucket: REG,
      name: 'team/unusable-checksums',
      entries: [
        { logical_key: 'odd.bin', s3_uri: `s3://${SRC}/data/odd-parts.bin` },
        { logical_key: 'single.bin', s3_uri: `s3://${SRC}/data/big-single.bin` },
      ],
    });
    expect(r.isError, r.text).toBe(false);
    const entries = await manifestEntries(r.data.top_hash);
    expect(entries.map((e) => e.hash.value)).toEqual([chunkedHashOf(BIG), chunkedHashOf(BIG)]);
    expect(sourceGets(n, ['data/odd-parts.bin'])).toHaveLength(1);
    expect(sourceGets(n, ['data/big-single.bin'])).toHaveLength(1);
    // In place (the default): the entries point at the sources.
    expect(entries.map((e) => e.physical_keys[0])).toEqual([`s3://${SRC}/data/odd-parts.bin`, `s3://${SRC}/data/big-single.bin`]);
  });

  it('in place (default) also reuses checksums: no GetObject, entries point at the sources', async () => {
    const n = s3.requests.length;
    const r = await call(h.client, 'package_create', {
      bucket: REG,
      name: 'team/in-place',
      entries: [{ logical_key: 'hello.txt', s3_uri: `s3://${SRC}/data/hello.txt` }],
    });
    expect(r.isError, r.text).toBe(false);
    const [e] = await manifestEntries(r.data.top_hash);
    expect(e?.physical_keys).toEqual([`s3://${SRC}/data/hello.txt`]);
    expect(e?.hash.value).toBe(HELLO_HASH);
    expect(sourceGets(n, ['data/hello.txt'])).toHaveLength(1);
    expect(s3.requests.slice(n).some((q) => q.method === 'PUT' && q.headers['x-amz-copy-source'])).toBe(false);
  });

  it('takes the hash from S3\'s checksum, not the bytes: one GET per source, or a HEAD when the listing names a SHA-256 checksum', async () => {
    // A checksum that does not match the bytes: only a hash made from the checksum can carry it.
    await s3.putWithChecksum(SRC, 'told/eight.bin', EIGHT);
    const told = sha256(Buffer.from('not these bytes'));
    s3.checksums.set(`${SRC}/told/eight.bin`, { type: 'FULL_OBJECT', sha256: told });
    const fromChecksum = chunkedFromFullObject(EIGHT.length, told);
    let n = s3.requests.length;
    const one = await call(h.client, 'package_create', { bucket: REG, name: 'team/told', entries: [{ logical_key: 'eight.bin', s3_uri: `s3://${SRC}/told/eight.bin` }] });
    expect(one.isError, one.text).toBe(false);
    expect((await manifestEntries(one.data.top_hash))[0]?.hash.value).toBe(fromChecksum);
    expect(s3.requests.slice(n).filter((q) => q.bucket === SRC).map((q) => q.method)).toEqual(['GET']);
    // From a prefix: the listing names the checksum's algorithm, so a HEAD (no body) is enough.
    n = s3.requests.length;
    const all = await call(h.client, 'package_create_from_s3', { bucket: REG, name: 'team/told-prefix', source_uri_prefix: `s3://${SRC}/told/` });
    expect(all.isError, all.text).toBe(false);
    expect((await manifestEntries(all.data.top_hash))[0]?.hash.value).toBe(fromChecksum);
    expect(s3.requests.slice(n).filter((q) => q.bucket === SRC && q.key !== '').map((q) => q.method)).toEqual(['HEAD']);
  });

  it('package_update copy=true copies the added sources; a file already at its place is not copied onto itself', async () => {
    const n = s3.requests.length;
    const r = await call(h.client, 'package_update', {
      bucket: REG,
      name: 'team/copied',
      copy: true,
      add: [
        { logical_key: 'extra.csv', s3_uri: `s3://${SRC}/data/plain.csv` },
        { logical_key: 'hello.txt', s3_uri: `s3://${REG}/team/copied/hello.txt` },
      ],
    });
    console.log(JSON.stringify(s3.requests.slice(n).map((q) => [q.method, q.bucket, q.key, q.status, q.headers['if-match'], q.headers['x-amz-checksum-mode']])));
    expect(r.isError, r.text).toBe(false);
    const byKey = Object.fromEntries((await manifestEntries(r.data.top_hash)).map((e) => [e.logical_key, e]));
    expect(byKey['extra.csv']?.physical_keys).toEqual([`s3://${REG}/team/copied/extra.csv`]);
    expect(byKey['hello.txt']?.physical_keys).toEqual([`s3://${REG}/team/copied/hello.txt`]);
    expect(byKey['big.bin']?.physical_keys).toEqual([`s3://${REG}/team/copied/big.bin`]);
    const copies = s3.requests.slice(n).filter((q) => q.method === 'PUT' && q.headers['x-amz-copy-source']);
    expect(copies.map((q) => q.key)).toEqual(['team/copied/extra.csv']);
  });

  it('refuses a copy destination key that could escape the bucket, before any write', async () => {
    const n = s3.requests.length;
    const r = await call(h.client, 'package_create', {
      bucket: REG,
      name: 'team/unsafe',
      copy: true,
      entries: [{ logical_key: 'a/%2e%2e/b.csv', s3_uri: `s3://${SRC}/data/plain.csv` }],
    });
    expect(r.isError).toBe(true);
    expect(s3.requests.slice(n).filter((q: S3Request) => q.method === 'PUT')).toEqual([]);
  });
});

describe('copies in process (multipart path, pinning, authorization)', () => {
  let ctx: RuntimeContext;
  const extras: ToolExtras = { signal: new AbortController().signal, progress: async () => {} };

  beforeAll(async () => {
    ctx = await s3Context(s3.endpoint);
  });

  it('copies above the threshold in parts with UploadPartCopy (threshold lowered for the test)', async () => {
    const src = { bucket: SRC, key: 'data/big-single.bin' };
    const head = await headSource(ctx, src);
    const n = s3.requests.length;
    await copyObject(ctx, src, head, { bucket: REG, key: 'mp/big.bin' }, { multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    const reqs = s3.requests.slice(n).filter((q) => q.bucket === REG);
    expect(reqs.filter((q) => q.method === 'POST' && q.query.has('uploads'))).toHaveLength(1);
    const parts = reqs.filter((q) => q.method === 'PUT' && q.query.has('uploadId'));
    expect(parts.map((q) => q.headers['x-amz-copy-source-range']).sort()).toEqual([`bytes=0-${5 * MiB - 1}`, `bytes=${5 * MiB}-${BIG.length - 1}`]);
    expect(parts.every((q) => q.headers['x-amz-copy-source'] === `${SRC}/data/big-single.bin`)).toBe(true);
    expect(reqs.filter((q) => q.method === 'POST' && q.query.has('uploadId'))).toHaveLength(1);
    expect((await object(REG, 'mp/big.bin')).equals(BIG)).toBe(true);
    expect(reqs.some((q) => q.method === 'PUT' && !q.query.has('uploadId'))).toBe(false);
  });

  it('a package materialized in copy mode through the multipart path points at the copies', async () => {
    const m = await materialize(s3Registry(ctx, REG), 'team/multipart', [{ logicalKey: 'big.bin', s3: { bucket: SRC, key: 'data/big.bin' } }], extras, {
      copy: true,
      copyOptions: { multipartThreshold: 5 * MiB, partSize: 5 * MiB },
    });
    await m.store();
    expect(m.entries[0]?.physical_keys).toEqual([`s3://${REG}/team/multipart/big.bin`]);
    expect(m.entries[0]?.hash.value).toBe(chunkedHashOf(BIG));
    expect((await object(REG, 'team/multipart/big.bin')).equals(BIG)).toBe(true);
  });

  it('a source that changed since it was hashed is not copied (copy-source If-Match), in either path', async () => {
    const src = { bucket: SRC, key: 'data/plain.csv' };
    const head = await headSource(ctx, src);
    const stale = { ...head, etag: '"0123456789abcdef0123456789abcdef"' };
    await expect(copyObject(ctx, src, stale, { bucket: REG, key: 'stale/one.csv' })).rejects.toMatchObject({ code: 'conflict' });
    await expect(
      copyObject(ctx, src, { ...stale, size: 6 * MiB }, { bucket: REG, key: 'stale/two.csv' }, { multipartThreshold: 5 * MiB, partSize: 5 * MiB }),
    ).rejects.toMatchObject({ code: 'conflict' });
  });

  it('needs read on the source bucket and write on the registry, checked before any S3 call', async () => {
    const refuse = (bucket: string, action: string) =>
      Object.assign(Object.create(ctx) as RuntimeContext, {
        authorize(b: string, a: string) {
          if (b === bucket && a === action) throw new ToolError('access_denied', `Bucket ${b}: ${a} is not allowed by this token.`);
        },
      });
    const head = await headSource(ctx, { bucket: SRC, key: 'data/plain.csv' });
    for (const [bucket, action] of [
      [SRC, 'read'],
      [REG, 'write'],
    ] as const) {
      const n = s3.requests.length;
      await expect(copyObject(refuse(bucket, action), { bucket: SRC, key: 'data/plain.csv' }, head, { bucket: REG, key: 'denied/x.csv' })).rejects.toMatchObject({
        code: 'access_denied',
      });
      expect(s3.requests.length).toBe(n);
    }
    const n = s3.requests.length;
    await expect(
      materialize(s3Registry(refuse(REG, 'write'), REG), 'team/denied', [{ logicalKey: 'x.csv', s3: { bucket: SRC, key: 'data/plain.csv' } }], extras, { copy: true }),
    ).rejects.toMatchObject({ code: 'access_denied' });
    expect(s3.requests.length).toBe(n);
  });
});
