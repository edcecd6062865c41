/**
 * GetObject bodies that survive a connection cut midway: when the body breaks off (a reset, or a
 * close short of its Content-Length), the rest is asked for again with a Range from where it
 * stopped, pinned to the object's ETag so that the pieces are of one version (a changed object
 * fails the resumed request with 412, which is reported as a conflict). At most two resumes per
 * body. The AWS SDK retries a request until its headers arrive, never a body that breaks later;
 * the S3 transfer tools (s3transfer, rclone) resume downloads in the same way.
 */
import { PassThrough, Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';

const MAX_RESUMES = 2;

/** A body cut by the network (not a consumer that stopped reading, nor a refusal of ours). */
function cutByNetwork(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'ECONNRESET' || e?.code === 'EPIPE' || e?.code === 'ETIMEDOUT' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.message === 'aborted';
}

/** The first byte a GetObject's Range asks for (`bytes=a-` or `bytes=a-b`); suffix ranges are not resumed. */
function rangeStart(range: unknown): number | undefined {
  if (range === undefined) return 0;
  const m = /^bytes=(\d+)-(\d*)$/.exec(String(range));
  return m ? Number(m[1]) : undefined;
}

type Body = Readable & {
  transformToByteArray(): Promise<Uint8Array>;
  transformToString(encoding?: string): Promise<string>;
  transformToWebStream(): ReadableStream;
};

/** The SDK's body helpers (sdkStreamMixin), on our stream. */
function withHelpers(stream: Readable): Body {
  const bytes = async () => {
    const chunks: Buffer[] = [];
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
    return new Uint8Array(Buffer.concat(chunks));
  };
  return Object.assign(stream, {
    transformToByteArray: bytes,
    transformToString: async (encoding = 'utf-8') => new TextDecoder(encoding).decode(await bytes()),
    transformToWebStream: () => Readable.toWeb(stream) as unknown as ReadableStream,
  });
}

/**
 * `first` (a body of `length` bytes), continued by `rest(offset)` (the body from `offset` on) when
 * the network cuts it.
 */
export function resumableBody(first: Readable, length: number, rest: (offset: number) => Promise<Readable>): Body {
  const out = new PassThrough();
  let source = first;
  let received = 0;
  let resumes = 0;
  const fail = (err: unknown) => out.destroy(err as Error);
  const attach = (s: Readable) => {
    source = s;
    s.on('data', (c: Buffer) => (received += c.length));
    s.once('end', () => (received >= length ? out.end() : broken(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))));
    s.once('error', broken);
    s.pipe(out, { end: false });
  };
  function broken(err: unknown) {
    source.unpipe(out);
    source.destroy();
    if (out.destroyed) return;
    if (!cutByNetwork(err) || resumes >= MAX_RESUMES || received >= length) return fail(err);
    resumes++;
    rest(received).then(attach, fail);
  }
  // A consumer that stops reading closes what it reads from.
  out.once('close', () => source.destroy());
  attach(first);
  return withHelpers(out);
}

/** Makes every GetObject body of `client` resumable (see resumableBody). */
export function resumeBodies(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'GetObjectCommand') return next(args);
      const result = await next(args);
      const output = result.output as { Body?: unknown; ContentLength?: number; ETag?: string };
      const input = args.input as { Range?: string; IfMatch?: string };
      const start = rangeStart(input.Range);
      const length = output.ContentLength;
      if (!(output.Body instanceof Readable) || start === undefined || length === undefined || length === 0) return result;
      const end = start + length - 1;
      output.Body = resumableBody(output.Body, length, async (offset) => {
        const again = await next({ ...args, input: { ...input, Range: `bytes=${start + offset}-${end}`, IfMatch: output.ETag ?? input.IfMatch } as typeof args.input });
        return (again.output as { Body: Readable }).Body;
      });
      return result;
    },
    { step: 'initialize', name: 'quiltMcpResumeBodies', priority: 'low' },
  );
  return client;
}
