/**
 * A real S3 HTTP server (s3rver) on 127.0.0.1, optionally behind a small "IAM" proxy that answers
 * AccessDenied for chosen requests, the way S3 does (s3rver itself has no policies). The proxy also
 * plays what s3rver is lenient about and real S3 is not: 403 instead of 404 for roles without
 * s3:ListBucket, buckets in other regions (301 PermanentRedirect), conditional writes and reads
 * (If-Match on GET and HEAD).
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export interface S3Request {
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  accessKeyId: string | undefined;
  sessionToken: string | undefined;
  /** The region the request is signed for (SigV4 credential scope `AKID/date/REGION/s3/aws4_request`). */
  region: string | undefined;
  headers: http.IncomingHttpHeaders;
  /** The status the proxy answered (set when the answer starts). */
  status?: number;
}

export interface LocalS3 {
  endpoint: string;
  /** Every request that reached the endpoint (through the proxy when there is one). */
  requests: S3Request[];
  /** Requests whose answer is not finished yet (removed once the response is closed). */
  open: Set<S3Request>;
  client: S3Client;
  put(bucket: string, key: string, body: string | Uint8Array, contentType?: string): Promise<void>;
  /**
   * Stores an object as S3 does when it was uploaded with SHA-256 checksums (s3rver keeps none; the
   * proxy answers for it): one PUT gives a FULL_OBJECT sha256; `partSize` plays a multipart upload
   * in parts of that size, whose COMPOSITE checksum is sha256 of the parts' sha256s ("-N" on HEAD).
   */
  putWithChecksum(bucket: string, key: string, body: Uint8Array, opts?: { partSize?: number }): Promise<StoredChecksum>;
  /** Checksums the proxy answers for (cleared by any later write of the key). */
  checksums: Map<string, StoredChecksum>;
  close(): Promise<void>;
}

export interface StoredChecksum {
  type: 'FULL_OBJECT' | 'COMPOSITE';
  /** base64, without the "-N" suffix. */
  sha256: string;
  /** Multipart: each part's size and base64 sha256. */
  parts?: Array<{ size: number; sha256: string }>;
}

export interface S3Options {
  buckets: string[];
  /** Requests the proxy refuses, with the S3 error code to answer (AccessDenied, ExpiredToken...). */
  deny?: (req: S3Request) => string | undefined;
  /** Bytes of the response body after which the connection is cut (a network failure mid-stream). */
  cut?: (req: S3Request) => number | undefined;
  /** Awaited before a request is forwarded: lets a test act "at the same moment" as the server. */
  before?: (req: S3Request) => Promise<void> | void;
  /**
   * The caller lacks s3:ListBucket on this request's bucket: as S3 does, GET/HEAD of a missing key
   * answers 403 AccessDenied instead of 404, and listing the bucket (or HEAD bucket) is refused.
   */
  noListBucket?: (req: S3Request) => boolean;
  /** Buckets that live in another region than us-east-1: requests signed for another region get 301. */
  regions?: Record<string, string>;
  /** s3rver ignores If-Match / If-None-Match on PUT and DELETE; S3 honours them. Default true. */
  conditionalWrites?: boolean;
}

const STATUS: Record<string, number> = {
  InvalidRange: 416,
  AccessDenied: 403,
  InvalidAccessKeyId: 403,
  ExpiredToken: 400,
  SlowDown: 503,
  PreconditionFailed: 412,
  NoSuchKey: 404,
  PermanentRedirect: 301,
};
const errorXml = (code: string, extra = '') =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code} (local policy)</Message>${extra}<RequestId>LOCAL</RequestId></Error>`;
const DEFAULT_REGION = 'us-east-1';
/** ETags compared as S3 compares them: quotes and a weak prefix do not matter. */
const bareEtag = (e: string | undefined) => e?.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

function describe(req: http.IncomingMessage): S3Request {
  const url = new URL(req.url ?? '/', 'http://x');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const auth = req.headers.authorization ?? '';
  const scope = /Credential=([^,\s]+)/.exec(auth)?.[1] ?? url.searchParams.get('X-Amz-Credential') ?? undefined;
  const accessKeyId = scope?.split('/')[0];
  return {
    method: req.method ?? 'GET',
    bucket: decodeURIComponent(bucket),
    key: decodeURIComponent(rest.join('/')),
    query: url.searchParams,
    accessKeyId,
    sessionToken: (req.headers['x-amz-security-token'] as string | undefined) ?? url.searchParams.get('X-Amz-Security-Token') ?? undefined,
    region: scope?.split('/')[2],
    headers: req.headers,
  };
}

/** A request's whole body, or undefined when its client went away before the body ended. */
async function readWhole(req: http.IncomingMessage): Promise<Buffer | undefined> {
  // Gone already: a request without a body (DELETE) that had arrived is still whole.
  if (req.destroyed) return req.complete && !Number(req.headers['content-length'] ?? 0) ? Buffer.alloc(0) : undefined;
  const chunks: Buffer[] = [];
  try {
    for await (const c of req) chunks.push(c as Buffer);
  } catch {
    return undefined;
  }
  return req.complete ? Buffer.concat(chunks) : undefined;
}

/**
 * Runs callbacks with the same key one at a time (the proxy's check-then-put must be atomic);
 * `settled(key)` waits for the callbacks of a key queued so far.
 */
function serializer() {
  const tails = new Map<string, Promise<unknown>>();
  const run = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const prev = tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.catch(() => undefined);
    tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
  return Object.assign(run, { settled: async (key: string) => void (await tails.get(key)) });
}

interface S3rverObject {
  bucket: string;
  key: string;
  metadata: Record<string, string>;
  content: Buffer | NodeJS.ReadableStream;
}
interface S3rverStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
}

/**
 * s3rver writes an object in place and answers the PUT before the file is flushed, so a GET at the
 * same moment reads a truncated object (an empty pointer, half a manifest). S3 serves the old
 * object or the new one, whole. Here the bytes go to a temporary file that is renamed over the
 * object once flushed; a reader that opened the old file keeps reading the old bytes.
 */
function writeObjectsWhole(store: S3rverStore): void {
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(path.dirname(objectPath), { recursive: true });
    // Not ending in `._S3rver_object`, so listings never see it.
    const temp = `${objectPath}.${process.pid}-${randomUUID()}.partial`;
    const md5 = createHash('md5');
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : (object.content as NodeJS.ReadableStream);
      await pipeline(source, counted, createWriteStream(temp));
      await rename(temp, objectPath);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const digest = md5.digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}

export async function startS3(opts: S3Options): Promise<LocalS3> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 's3rver-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: opts.buckets.map((name) => ({ name, configs: [] })),
  });
  const info = (await server.run()) as AddressInfo;
  writeObjectsWhole((server as unknown as { store: S3rverStore }).store);
  const target = `http://127.0.0.1:${info.port}`;
  const requests: S3Request[] = [];

  // Talks to s3rver directly: the test's own setup, and the proxy's checks of conditional writes.
  const client = new S3Client({
    endpoint: target,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const serialize = serializer();

  /** The object's current ETag, or undefined when it does not exist. */
  async function currentEtag(bucket: string, key: string): Promise<string | undefined> {
    try {
      return bareEtag((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag) ?? '';
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }

  /** What S3 answers for a conditional PUT/DELETE given the key's current state (undefined: go ahead). */
  async function preconditionFailure(r: S3Request): Promise<string | undefined> {
    const ifMatch = r.headers['if-match'] as string | undefined;
    const ifNoneMatch = r.headers['if-none-match'] as string | undefined;
    if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
    const etag = await currentEtag(r.bucket, r.key);
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() === '*' && etag !== undefined) return 'PreconditionFailed';
    if (ifMatch !== undefined) {
      // S3: If-Match on a missing key is 404 NoSuchKey, on another ETag 412.
      if (etag === undefined) return 'NoSuchKey';
      if (ifMatch.trim() !== '*' && bareEtag(ifMatch) !== etag) return 'PreconditionFailed';
    }
    return undefined;
  }

  const answer = (r: S3Request, req: http.IncomingMessage, res: http.ServerResponse, code: string, headers: http.OutgoingHttpHeaders = {}, extra = '') => {
    req.resume();
    r.status = STATUS[code] ?? 403;
    res.writeHead(r.status, { 'content-type': 'application/xml', ...headers });
    res.end(req.method === 'HEAD' ? undefined : errorXml(code, extra));
  };

  const checksums = new Map<string, StoredChecksum>();
  /** Part checksums of multipart uploads in progress, by upload id. */
  const uploadParts = new Map<string, Map<number, { size: number; sha256: string }>>();
  const isListing = (r: S3Request) => r.method === 'GET' && r.bucket !== '' && r.key === '' && ['location', 'uploads', 'versioning', 'versions', 'policy', 'acl', 'cors', 'tagging'].every((q) => !r.query.has(q));
  const unescapeXml = (t: string) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  /** A listing's XML with ChecksumAlgorithm and ChecksumType in each object that has a stored checksum, as S3 lists them. */
  const withListedChecksums = (bucket: string, xml: string) =>
    xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (whole, inner: string) => {
      const key = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
      const stored = key === undefined ? undefined : checksums.get(`${bucket}/${unescapeXml(key)}`);
      return stored ? `<Contents>${inner}<ChecksumAlgorithm>SHA256</ChecksumAlgorithm><ChecksumType>${stored.type}</ChecksumType></Contents>` : whole;
    });
  const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
  const xmlOk = (r: S3Request, req: http.IncomingMessage, res: http.ServerResponse, body: string, headers: http.OutgoingHttpHeaders = {}) => {
    req.resume();
    r.status = 200;
    res.writeHead(200, { 'content-type': 'application/xml', ...headers });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
  };
  const parseCopySource = (header: string) => {
    const [path = '', query = ''] = decodeURIComponent(header).replace(/^\//, '').split('?');
    const [bucket = '', ...key] = path.split('/');
    return { bucket, key: key.join('/'), versionId: new URLSearchParams(query).get('versionId') ?? undefined };
  };

  /** x-amz-copy-source-if-match against the source's current ETag (S3: 412 when it differs). */
  async function copySourceFailure(r: S3Request): Promise<string | undefined> {
    const ifMatch = r.headers['x-amz-copy-source-if-match'] as string | undefined;
    if (ifMatch === undefined) return undefined;
    const src = parseCopySource(String(r.headers['x-amz-copy-source']));
    const etag = await currentEtag(src.bucket, src.key);
    if (etag === undefined) return 'NoSuchKey';
    return bareEtag(ifMatch) === etag ? undefined : 'PreconditionFailed';
  }

  /** UploadPartCopy: the source range read from s3rver and uploaded as the part. */
  async function uploadPartCopy(r: S3Request, req: http.IncomingMessage, res: http.ServerResponse) {
    const src = parseCopySource(String(r.headers['x-amz-copy-source']));
    const range = r.headers['x-amz-copy-source-range'] as string | undefined;
    let part;
    try {
      const got = await client.send(new GetObjectCommand({ Bucket: src.bucket, Key: src.key, ...(range ? { Range: range } : {}) }));
      const body = await got.Body!.transformToByteArray();
      part = await client.send(
        new UploadPartCommand({ Bucket: r.bucket, Key: r.key, UploadId: r.query.get('uploadId') ?? '', PartNumber: Number(r.query.get('partNumber')), Body: body }),
      );
    } catch {
      return answer(r, req, res, 'NoSuchKey');
    }
    xmlOk(r, req, res, `<CopyPartResult><ETag>${part.ETag ?? ''}</ETag><LastModified>${new Date().toISOString()}</LastModified></CopyPartResult>`);
  }

  /** GetObjectAttributes, from s3rver's HEAD and the stored checksum (parts paged as S3 pages them). */
  async function objectAttributes(r: S3Request, req: http.IncomingMessage, res: http.ServerResponse) {
    let head;
    try {
      head = await client.send(new HeadObjectCommand({ Bucket: r.bucket, Key: r.key }));
    } catch {
      return answer(r, req, res, 'NoSuchKey');
    }
    const wanted = String(r.headers['x-amz-object-attributes'] ?? '').split(',').map((a) => a.trim());
    const stored = checksums.get(`${r.bucket}/${r.key}`);
    const out: string[] = [];
    if (wanted.includes('ETag')) out.push(`<ETag>${bareEtag(head.ETag) ?? ''}</ETag>`);
    if (wanted.includes('Checksum') && stored) out.push(`<Checksum><ChecksumSHA256>${stored.sha256}</ChecksumSHA256><ChecksumType>${stored.type}</ChecksumType></Checksum>`);
    if (wanted.includes('ObjectParts') && stored?.parts) {
      const max = Number(r.headers['x-amz-max-parts'] ?? 1000);
      const marker = Number(r.headers['x-amz-part-number-marker'] ?? 0);
      const page = stored.parts.slice(marker, marker + max);
      const next = marker + page.length;
      out.push(
        `<ObjectParts><PartsCount>${stored.parts.length}</PartsCount><PartNumberMarker>${marker}</PartNumberMarker><NextPartNumberMarker>${next}</NextPartNumberMarker>` +
          `<MaxParts>${max}</MaxParts><IsTruncated>${next < stored.parts.length}</IsTruncated>` +
          page.map((p, i) => `<Part><PartNumber>${marker + i + 1}</PartNumber><Size>${p.size}</Size><ChecksumSHA256>${p.sha256}</ChecksumSHA256></Part>`).join('') +
          `</ObjectParts>`,
      );
    }
    if (wanted.includes('ObjectSize')) out.push(`<ObjectSize>${head.ContentLength ?? 0}</ObjectSize>`);
    xmlOk(r, req, res, `<GetObjectAttributesResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${out.join('')}</GetObjectAttributesResponse>`, {
      'last-modified': (head.LastModified ?? new Date()).toUTCString(),
    });
  }

  // The proxy always runs: it records requests (tests assert "no AWS call was made") and plays IAM.
  const open = new Set<S3Request>();
  const proxy = http.createServer(async (req, res) => {
    const r = describe(req);
    requests.push(r);
    open.add(r);
    res.once('close', () => open.delete(r));
    req.pause();
    if (opts.before) await opts.before(r);
    const refusal = opts.deny?.(r);
    if (refusal) return answer(r, req, res, refusal);
    // A bucket in another region: S3 answers requests signed for the wrong region with 301 and the
    // bucket's region in a header (HEAD bucket too, without a body); S3 clients re-sign from it.
    const home = opts.regions?.[r.bucket] ?? DEFAULT_REGION;
    if (r.bucket && r.region && r.region !== home) {
      return answer(r, req, res, 'PermanentRedirect', { 'x-amz-bucket-region': home }, `<Bucket>${r.bucket}</Bucket><Endpoint>s3.${home}.amazonaws.com</Endpoint>`);
    }
    const noList = opts.noListBucket?.(r) ?? false;
    const isBucketRequest = r.bucket !== '' && r.key === '';
    // Listing and HEAD bucket need s3:ListBucket (HEAD bucket still tells the region, as S3 does).
    if (noList && isBucketRequest && (r.method === 'HEAD' || (r.method === 'GET' && !r.query.has('location')))) {
      return answer(r, req, res, 'AccessDenied', r.method === 'HEAD' ? { 'x-amz-bucket-region': home } : {});
    }
    // What s3rver cannot play: stored checksums (HEAD/GET with checksum mode, GetObjectAttributes)
    // and UploadPartCopy; copy-source If-Match, which s3rver ignores.
    const objectId = `${r.bucket}/${r.key}`;
    if (!isBucketRequest && r.method === 'GET' && r.query.has('attributes')) return objectAttributes(r, req, res);
    // GET/HEAD If-Match (s3rver ignores it): S3 answers 412 when the ETag differs, 404 when the key is gone.
    const readIfMatch = r.headers['if-match'] as string | undefined;
    if (!isBucketRequest && (r.method === 'GET' || r.method === 'HEAD') && readIfMatch !== undefined && !r.query.has('versionId')) {
      const etag = await currentEtag(r.bucket, r.key);
      if (etag === undefined) return answer(r, req, res, 'NoSuchKey');
      if (readIfMatch.trim() !== '*' && bareEtag(readIfMatch) !== etag) return answer(r, req, res, 'PreconditionFailed');
    }
    if (!isBucketRequest && r.method === 'PUT' && r.headers['x-amz-copy-source']) {
      const failed = await copySourceFailure(r);
      if (failed) return answer(r, req, res, failed);
      if (r.query.has('uploadId')) return uploadPartCopy(r, req, res);
    }
    const writesKey = !isBucketRequest && ((r.method === 'PUT' && !r.query.has('uploadId')) || r.method === 'DELETE' || (r.method === 'POST' && r.query.has('uploadId')));
    if (writesKey) checksums.delete(objectId);
    // A PUT or UploadPart sent with a SHA-256 checksum: S3 checks it against the bytes (400 BadDigest
    // when they differ) and keeps it; CompleteMultipartUpload then keeps the COMPOSITE checksum of
    // the parts' checksums. s3rver keeps none: the proxy does, as S3 would.
    const sentSha = r.headers['x-amz-checksum-sha256'] as string | undefined;
    // A write is received whole before it goes on (S3 drops a request whose client went away
    // before its body ended, and carries out one that arrived whole even if the answer is lost):
    // so a write under way never waits on its client, and the reads of its key that wait for it
    // (below) always end. A PUT with a checksum is read whole to check it.
    let buffered: Buffer | undefined;
    if (writesKey || (!isBucketRequest && r.method === 'PUT' && sentSha)) {
      buffered = await readWhole(req);
      if (buffered === undefined) return void res.destroy();
    }
    let onSuccess: (() => void) | undefined;
    if (!isBucketRequest && r.method === 'PUT' && sentSha && !r.headers['x-amz-copy-source'] && buffered) {
      if (sha256(buffered).toString('base64') !== sentSha) {
        r.status = 400;
        res.writeHead(400, { 'content-type': 'application/xml' });
        return void res.end(errorXml('BadDigest'));
      }
      const uploadId = r.query.get('uploadId');
      const body = buffered;
      onSuccess = uploadId
        ? () => {
            const parts = uploadParts.get(uploadId) ?? new Map<number, { size: number; sha256: string }>();
            parts.set(Number(r.query.get('partNumber')), { size: body.length, sha256: sentSha });
            uploadParts.set(uploadId, parts);
          }
        : () => checksums.set(objectId, { type: 'FULL_OBJECT', sha256: sentSha });
    } else if (!isBucketRequest && r.method === 'POST' && r.query.has('uploadId')) {
      const uploadId = r.query.get('uploadId')!;
      onSuccess = () => {
        const parts = uploadParts.get(uploadId);
        uploadParts.delete(uploadId);
        if (!parts?.size) return;
        const ordered = [...parts.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
        const all = Buffer.concat(ordered.map((p) => Buffer.from(p.sha256, 'base64')));
        checksums.set(objectId, { type: 'COMPOSITE', sha256: sha256(all).toString('base64'), parts: ordered });
      };
    }
    const conditional =
      opts.conditionalWrites !== false && !isBucketRequest && (r.method === 'PUT' || r.method === 'DELETE') && !r.query.has('uploadId') && !r.headers['x-amz-copy-source'];
    const forward = () =>
      new Promise<void>((done) => {
        // A read whose client has gone is not sent on (its body may never end).
        if (buffered === undefined && (res.destroyed || req.destroyed)) return done();
        const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
          if ((up.statusCode ?? 500) < 300) onSuccess?.();
          up.on('end', () => done());
          up.on('error', () => done());
          // The answer to a write whose client has gone: the write is done, the answer lost.
          if (res.destroyed) return void up.resume();
          // s3rver answers a ranged GET of an empty object with 206 and a body it never sends;
          // S3 answers 416 InvalidRange. Play S3.
          if (up.statusCode === 206 && /\/0$/.test(String(up.headers['content-range']))) {
            up.resume();
            r.status = 416;
            res.writeHead(416, { 'content-type': 'application/xml' });
            res.end(errorXml('InvalidRange'));
            return;
          }
          // Without s3:ListBucket, S3 does not tell a missing key from a forbidden one.
          if (noList && up.statusCode === 404 && (r.method === 'GET' || r.method === 'HEAD') && !isBucketRequest) {
            up.resume();
            r.status = 403;
            res.writeHead(403, { 'content-type': 'application/xml' });
            res.end(r.method === 'HEAD' ? undefined : errorXml('AccessDenied'));
            return;
          }
          const headers = { ...up.headers };
          // With checksum mode, S3 tells the stored checksum (composite ones with "-<parts>").
          const stored = checksums.get(objectId);
          if (stored && up.statusCode === 200 && !isBucketRequest && (r.method === 'HEAD' || r.method === 'GET') && r.headers['x-amz-checksum-mode'] === 'ENABLED') {
            headers['x-amz-checksum-sha256'] = stored.parts ? `${stored.sha256}-${stored.parts.length}` : stored.sha256;
            headers['x-amz-checksum-type'] = stored.type;
          }
          // S3 tells every HEAD bucket the bucket's region; SDKs read it from there.
          if (isBucketRequest && r.method === 'HEAD') headers['x-amz-bucket-region'] = home;
          // Listings name the algorithm of each object's stored checksum (s3rver keeps none).
          if (isListing(r) && up.statusCode === 200 && [...checksums.keys()].some((k) => k.startsWith(`${r.bucket}/`))) {
            const chunks: Buffer[] = [];
            up.on('data', (c: Buffer) => chunks.push(c));
            up.on('end', () => {
              const body = Buffer.from(withListedChecksums(r.bucket, Buffer.concat(chunks).toString('utf8')));
              r.status = 200;
              res.writeHead(200, { ...headers, 'content-length': String(body.length) });
              res.end(body);
            });
            return;
          }
          r.status = up.statusCode ?? 502;
          res.writeHead(r.status, headers);
          const cut = opts.cut?.(r);
          if (cut === undefined) return void up.pipe(res);
          let sent = 0;
          up.on('data', (c: Buffer) => {
            if (sent + c.length <= cut) {
              sent += c.length;
              res.write(c);
              return;
            }
            res.write(c.subarray(0, cut - sent), () => res.destroy());
            up.destroy();
          });
          up.on('end', () => res.end());
        });
        // A client that gives up on a read (e.g. stops reading a stream) must not leave s3rver
        // sending; a write that arrived whole goes on to its end, as on S3.
        res.on('close', () => {
          if (buffered !== undefined) return;
          upstream.destroy();
          done();
        });
        upstream.on('error', () => {
          done();
          if (res.headersSent) return void res.destroy();
          res.writeHead(502);
          res.end();
        });
        if (buffered) upstream.end(buffered);
        else req.pipe(upstream);
      });
    const write = async () => {
      if (!writesKey) {
        // A read waits for the writes of its key already under way: S3 reads after a write see it whole.
        if (!isBucketRequest && (r.method === 'GET' || r.method === 'HEAD')) await serialize.settled(objectId);
        return forward();
      }
      // Every write of a key goes through one queue, so a conditional check and its write are atomic.
      await serialize(objectId, async () => {
        const failure = conditional ? await preconditionFailure(r) : undefined;
        if (failure) return answer(r, req, res, failure);
        await forward();
      });
    };
    // s3rver removes a deleted key's empty folders, and two deletes in one folder at once race there
    // (a 500 after the key was deleted; S3 has no folders to race on): one delete per folder at a time.
    if (r.method === 'DELETE' && !isBucketRequest) return serialize(`${r.bucket}/${r.key.replace(/[^/]*$/, '')} (folder)`, write);
    await write();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  return {
    endpoint,
    requests,
    open,
    client,
    async put(bucket, key, body, contentType) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
    },
    checksums,
    async putWithChecksum(bucket, key, body, { partSize } = {}) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      let stored: StoredChecksum;
      if (partSize === undefined) stored = { type: 'FULL_OBJECT', sha256: sha256(body).toString('base64') };
      else {
        const parts: Array<{ size: number; sha256: string }> = [];
        for (let off = 0; off < body.length || parts.length === 0; off += partSize) {
          const piece = body.subarray(off, Math.min(body.length, off + partSize));
          parts.push({ size: piece.length, sha256: sha256(piece).toString('base64') });
        }
        const all = Buffer.concat(parts.map((p) => Buffer.from(p.sha256, 'base64')));
        stored = { type: 'COMPOSITE', sha256: sha256(all).toString('base64'), parts };
      }
      checksums.set(`${bucket}/${key}`, stored);
      return stored;
    },
    async close() {
      client.destroy();
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
