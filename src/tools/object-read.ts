import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { S3Module } from '../aws/clients.js';
import { formatS3Uri, parseS3Uri, type S3Location } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { ToolError } from '../errors.js';
import { binaryContentType, decodeText } from '../text-detect.js';
import { isoDate, objectUriArg } from './args.js';
import { defineTool, type ExtraContent } from './define.js';

interface RangeRead {
  bytes: Uint8Array;
  /** Size of the whole object. */
  total: number;
  contentType: string | undefined;
  versionId: string | undefined;
}

/**
 * Reads bytes [offset, offset + length) with an explicit Range (some S3-compatible servers get
 * suffix ranges wrong). S3 answers 416 for any range of an empty object: that is an empty read.
 */
export async function readRange(client: S3Client, sdk: S3Module, loc: S3Location, offset: number, length: number): Promise<RangeRead> {
  try {
    const out = await client.send(
      new sdk.GetObjectCommand({
        Bucket: loc.bucket,
        Key: loc.key,
        VersionId: loc.versionId,
        Range: `bytes=${offset}-${offset + length - 1}`,
      }),
    );
    let bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
    const total = Number(/\/(\d+)$/.exec(out.ContentRange ?? '')?.[1] ?? Number.NaN);
    if (Number.isNaN(total)) {
      // 200 without Content-Range: the server sent the whole object.
      const whole = bytes.length;
      bytes = bytes.subarray(offset, offset + length);
      return { bytes, total: whole, contentType: out.ContentType, versionId: out.VersionId };
    }
    return { bytes, total, contentType: out.ContentType, versionId: out.VersionId };
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((err as Error).name !== 'InvalidRange' && status !== 416) throw err;
    const head = await client.send(new sdk.HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId }));
    const size = head.ContentLength ?? 0;
    if (size === 0) return { bytes: new Uint8Array(), total: 0, contentType: head.ContentType, versionId: head.VersionId };
    throw new ToolError(
      'invalid_input',
      `offset ${offset} is past the end of ${formatS3Uri(loc)} (${size} bytes).`,
      `Use an offset below ${size}.`,
    );
  }
}

export const bucketObjectInfo = defineTool({
  name: 'bucket_object_info',
  title: 'Object metadata',
  description: 'Metadata of one S3 object without downloading it: size, content type, ETag, last modified, version id, user metadata.',
  toolset: 'buckets',
  kind: 'read',
  input: { uri: objectUriArg },
  output: {
    uri: z.string(),
    bucket: z.string(),
    key: z.string(),
    size: z.number(),
    content_type: z.string().optional(),
    content_encoding: z.string().optional(),
    etag: z.string().optional(),
    last_modified: z.string().optional(),
    version_id: z.string().optional(),
    storage_class: z.string().optional(),
    metadata: z.record(z.string(), z.string()),
  },
  async handler(args, ctx) {
    const loc = parseS3Uri(args.uri);
    const head = await withS3(ctx, { ...loc, action: 'read', verb: 'read the metadata of' }, (client, { HeadObjectCommand }) =>
      client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId })),
    );
    const data = {
      uri: formatS3Uri(loc),
      bucket: loc.bucket,
      key: loc.key,
      size: head.ContentLength ?? 0,
      content_type: head.ContentType,
      content_encoding: head.ContentEncoding,
      etag: head.ETag,
      last_modified: isoDate(head.LastModified),
      version_id: head.VersionId,
      storage_class: head.StorageClass,
      metadata: head.Metadata ?? {},
    };
    return { data };
  },
});

const MAX_TEXT_BYTES = 1024 * 1024;

export const bucketObjectText = defineTool({
  name: 'bucket_object_text',
  title: 'Read object as text',
  description:
    'Read a text object (CSV, JSON, Markdown, code, logs...) from S3, up to max_bytes starting at offset. The encoding is detected ' +
    '(UTF-8, UTF-16 with BOM, Windows-1252). When truncated is true, call again with offset=next_offset for more. ' +
    'Binary objects are refused: use bucket_object_fetch or bucket_object_link for those.',
  toolset: 'buckets',
  kind: 'read',
  input: {
    uri: objectUriArg,
    max_bytes: z.number().int().min(1).max(MAX_TEXT_BYTES).default(65536).describe('Bytes to read (at most 1 MiB)'),
    offset: z.number().int().min(0).default(0).describe('Byte offset to start reading at'),
  },
  output: {
    uri: z.string(),
    text: z.string(),
    encoding: z.string(),
    offset: z.number().describe('Byte offset of the first character of text'),
    bytes: z.number().describe('Bytes of the object that text covers'),
    size: z.number().describe('Size of the whole object in bytes'),
    truncated: z.boolean(),
    next_offset: z.number().optional(),
    content_type: z.string().optional(),
  },
  async handler(args, ctx) {
    const loc = parseS3Uri(args.uri);
    const read = await withS3(ctx, { ...loc, action: 'read', verb: 'read' }, (client, sdk) =>
      readRange(client, sdk, loc, args.offset, args.max_bytes),
    );
    const uri = formatS3Uri(loc);
    const end = args.offset + read.bytes.length;
    const decoded = binaryContentType(read.contentType)
      ? ({ kind: 'binary', reason: `content type ${read.contentType}` } as const)
      : decodeText(read.bytes, { atStart: args.offset === 0, atEnd: end >= read.total });
    if (decoded.kind === 'binary') {
      throw new ToolError(
        'unsupported',
        `${uri} is not text (${decoded.reason}).`,
        'Use bucket_object_fetch for the raw bytes (base64) of small objects, or bucket_object_link for a download URL.',
      );
    }
    const stop = args.offset + decoded.usedBytes;
    const truncated = stop < read.total;
    const data = {
      uri,
      text: decoded.text,
      encoding: decoded.encoding,
      offset: args.offset + decoded.skippedStart,
      bytes: decoded.usedBytes - decoded.skippedStart,
      size: read.total,
      truncated,
      next_offset: truncated ? stop : undefined,
      content_type: read.contentType,
    };
    const tail = truncated ? `\n\n[truncated: ${read.total - stop} more bytes; continue with offset=${stop}]` : '';
    return { data, text: `${decoded.text}${tail}` };
  },
});

const MAX_FETCH_BYTES = 5 * 1024 * 1024;

export const bucketObjectFetch = defineTool({
  name: 'bucket_object_fetch',
  title: 'Fetch object bytes',
  description:
    'Fetch a small object as base64 (images also come back as an image). Objects larger than max_bytes are refused: ' +
    'use bucket_object_link to get a download URL for those, and bucket_object_text for text.',
  toolset: 'buckets',
  kind: 'read',
  input: {
    uri: objectUriArg,
    max_bytes: z.number().int().min(1).max(MAX_FETCH_BYTES).default(1024 * 1024).describe('Largest object to fetch (at most 5 MiB)'),
  },
  output: {
    uri: z.string(),
    size: z.number(),
    content_type: z.string().optional(),
    base64: z.string(),
  },
  async handler(args, ctx) {
    const loc = parseS3Uri(args.uri);
    // One byte more than allowed tells "too large" without a separate HEAD.
    const read = await withS3(ctx, { ...loc, action: 'read', verb: 'read' }, (client, sdk) =>
      readRange(client, sdk, loc, 0, args.max_bytes + 1),
    );
    const uri = formatS3Uri(loc);
    if (read.total > args.max_bytes) {
      throw new ToolError(
        'too_large',
        `${uri} is ${read.total} bytes, more than max_bytes (${args.max_bytes}).`,
        read.total <= MAX_FETCH_BYTES
          ? `Call again with max_bytes=${read.total}, or use bucket_object_link for a download URL.`
          : 'Use bucket_object_link for a download URL, or bucket_object_text to read text in pieces.',
      );
    }
    const base64 = Buffer.from(read.bytes).toString('base64');
    const contentType = read.contentType;
    const extraContent: ExtraContent[] = [];
    const isImage = contentType !== undefined && /^image\/(png|jpeg|gif|webp)$/i.test(contentType);
    if (isImage) extraContent.push({ type: 'image', data: base64, mimeType: contentType.toLowerCase() });
    return {
      data: { uri, size: read.total, content_type: contentType, base64 },
      text: isImage
        ? `${uri}: ${read.total} bytes of ${contentType} (shown as an image).`
        : `${uri}: ${read.total} bytes${contentType ? ` of ${contentType}` : ''}, base64:\n${base64}`,
      extraContent,
    };
  },
});
