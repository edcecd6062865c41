/**
 * A real S3 HTTP server (s3rver) on 127.0.0.1, optionally behind a small "IAM" proxy that answers
 * AccessDenied for chosen requests, the way S3 does (s3rver itself has no policies).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export interface S3Request {
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  accessKeyId: string | undefined;
  sessionToken: string | undefined;
}

export interface LocalS3 {
  endpoint: string;
  /** Every request that reached the endpoint (through the proxy when there is one). */
  requests: S3Request[];
  client: S3Client;
  put(bucket: string, key: string, body: string | Uint8Array, contentType?: string): Promise<void>;
  close(): Promise<void>;
}

export interface S3Options {
  buckets: string[];
  /** Requests the proxy refuses, with the S3 error code to answer (AccessDenied, ExpiredToken...). */
  deny?: (req: S3Request) => string | undefined;
  /** Bytes of the response body after which the connection is cut (a network failure mid-stream). */
  cut?: (req: S3Request) => number | undefined;
  /** Awaited before a request is forwarded: lets a test act "at the same moment" as the server. */
  before?: (req: S3Request) => Promise<void> | void;
}

const STATUS: Record<string, number> = { InvalidRange: 416, AccessDenied: 403, InvalidAccessKeyId: 403, ExpiredToken: 400, SlowDown: 503 };
const errorXml = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code} (local policy)</Message><RequestId>LOCAL</RequestId></Error>`;

function describe(req: http.IncomingMessage): S3Request {
  const url = new URL(req.url ?? '/', 'http://x');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const auth = req.headers.authorization ?? '';
  const accessKeyId = /Credential=([^/]+)\//.exec(auth)?.[1] ?? url.searchParams.get('X-Amz-Credential')?.split('/')[0];
  return {
    method: req.method ?? 'GET',
    bucket: decodeURIComponent(bucket),
    key: decodeURIComponent(rest.join('/')),
    query: url.searchParams,
    accessKeyId,
    sessionToken: (req.headers['x-amz-security-token'] as string | undefined) ?? url.searchParams.get('X-Amz-Security-Token') ?? undefined,
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
  const target = `http://127.0.0.1:${info.port}`;
  const requests: S3Request[] = [];

  // The proxy always runs: it records requests (tests assert "no AWS call was made") and plays IAM.
  const proxy = http.createServer(async (req, res) => {
    const r = describe(req);
    requests.push(r);
    if (opts.before) {
      req.pause();
      await opts.before(r);
    }
    const refusal = opts.deny?.(r);
    if (refusal) {
      req.resume();
      res.writeHead(STATUS[refusal] ?? 403, { 'content-type': 'application/xml' });
      res.end(req.method === 'HEAD' ? undefined : errorXml(refusal));
      return;
    }
    const upstream = http.request(
      `${target}${req.url}`,
      { method: req.method, headers: req.headers },
      (up) => {
        // s3rver answers a ranged GET of an empty object with 206 and a body it never sends;
        // S3 answers 416 InvalidRange. Play S3.
        if (up.statusCode === 206 && /\/0$/.test(String(up.headers['content-range']))) {
          up.resume();
          res.writeHead(416, { 'content-type': 'application/xml' });
          res.end(errorXml('InvalidRange'));
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
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
      },
    );
    // A client that gives up on a response (e.g. stops reading a stream) must not leave s3rver writing.
    res.on('close', () => upstream.destroy());
    upstream.on('error', () => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const client = new S3Client({
    endpoint: target,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    requests,
    client,
    async put(bucket, key, body, contentType) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
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
