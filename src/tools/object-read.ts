import { z } from 'zod';
import { readRange } from '../aws/object-range.js';
import { formatS3Uri, parseS3Uri } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { ToolError } from '../core/errors.js';
import { binaryContentType, decodeText } from '../core/text-detect.js';
import { isoDate, objectUriArg } from './args.js';
import { defineTool, type ExtraContent } from './define.js';

export const bucketObjectInfo = defineTool({
  name: 'bucket_object_info',
  title: 'Object metadata',
  description: "One object's metadata without reading it: size, content type, ETag, modified, version id, user metadata.",
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
    const text = [
      `${data.uri}: ${data.size} bytes${data.content_type ? `, ${data.content_type}` : ''}${data.content_encoding ? ` (${data.content_encoding})` : ''}`,
      `modified ${data.last_modified ?? 'unknown'}, ETag ${data.etag ?? 'none'}${data.version_id ? `, version ${data.version_id}` : ''}${data.storage_class ? `, ${data.storage_class}` : ''}`,
      `metadata: ${JSON.stringify(data.metadata)}`,
    ].join('\n');
    return { data, text };
  },
});

const MAX_TEXT_BYTES = 1024 * 1024;

/**
 * Object contents are the one thing a tool answer holds in bulk, and they go in the text alone: a
 * structured copy would double what reaches clients that pass both halves, and clients that pass
 * only one read the text when there is no structured content. So these two tools declare no
 * output schema, and their text starts with what the next call needs (URI, size, next offset).
 */
export const bucketObjectText = defineTool({
  name: 'bucket_object_text',
  title: 'Read object as text',
  description:
    'Read a text object (CSV, JSON, code, logs...): max_bytes from offset, encoding detected. Binary is refused.',
  toolset: 'buckets',
  kind: 'read',
  input: {
    uri: objectUriArg,
    max_bytes: z.number().int().min(1).max(MAX_TEXT_BYTES).default(65536).describe('Bytes to read'),
    offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).describe('Byte to start at'),
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
        `Use bucket_object_fetch(uri="${uri}") for its bytes (base64; images are shown), or bucket_object_link for a download URL.`,
      );
    }
    const first = args.offset + decoded.skippedStart;
    const stop = args.offset + decoded.usedBytes;
    const head = `${uri}: ${decoded.encoding}${read.contentType ? `, ${read.contentType}` : ''}, bytes ${first}-${stop} of ${read.total}${read.versionId && !loc.versionId ? `, version ${read.versionId}` : ''}:`;
    const tail = stop < read.total ? `\n[truncated: ${read.total - stop} more bytes; continue with offset=${stop}]` : '';
    return { data: {}, text: `${head}\n${decoded.text}${tail}` };
  },
});

const MAX_FETCH_BYTES = 5 * 1024 * 1024;
/**
 * Base64 costs about one token per byte (o200k: 16 KiB of random bytes is ~15,000 tokens), so the
 * default is what one answer in a conversation can carry; more is a deliberate max_bytes.
 */
const DEFAULT_FETCH_BYTES = 16 * 1024;
const IMAGE = /^image\/(png|jpeg|gif|webp)$/i;

export const bucketObjectFetch = defineTool({
  name: 'bucket_object_fetch',
  title: 'Fetch object bytes',
  description:
    'Fetch a small binary object as base64 (images are shown). Text is refused: use bucket_object_text; large objects: bucket_object_link.',
  toolset: 'buckets',
  kind: 'read',
  input: {
    uri: objectUriArg,
    max_bytes: z.number().int().min(1).max(MAX_FETCH_BYTES).default(DEFAULT_FETCH_BYTES).describe('Largest object to fetch'),
  },
  async handler(args, ctx) {
    const loc = parseS3Uri(args.uri);
    // One byte more than allowed tells "too large" without a separate HEAD.
    const read = await withS3(ctx, { ...loc, action: 'read', verb: 'read' }, (client, sdk) =>
      readRange(client, sdk, loc, 0, args.max_bytes + 1),
    );
    const uri = formatS3Uri(loc);
    const contentType = read.contentType;
    const isImage = contentType !== undefined && IMAGE.test(contentType);
    const asText = read.total > 0 && !isImage && !binaryContentType(contentType) && decodeText(read.bytes.subarray(0, 65536), { atStart: true, atEnd: read.total <= 65536 }).kind === 'text';
    if (asText) {
      throw new ToolError(
        'unsupported',
        `${uri} is text (${read.total} bytes${contentType ? `, ${contentType}` : ''}): base64 would hide it and cost a third more.`,
        `Read it with bucket_object_text(uri="${uri}")${read.total > 65536 ? ', 64 KiB at a time (offset continues)' : ''}.`,
      );
    }
    if (read.total > args.max_bytes) {
      throw new ToolError(
        'too_large',
        `${uri} is ${read.total} bytes, more than max_bytes (${args.max_bytes}).`,
        read.total <= MAX_FETCH_BYTES
          ? `Call again with max_bytes=${read.total}${isImage ? ' (an image is shown as an image, not spelled out)' : ' (base64 costs about one token per byte)'}, or use bucket_object_link for a download URL.`
          : 'Use bucket_object_link for a download URL.',
      );
    }
    const base64 = Buffer.from(read.bytes).toString('base64');
    const head = `${uri}: ${read.total} bytes${contentType ? ` of ${contentType}` : ''}${read.versionId && !loc.versionId ? `, version ${read.versionId}` : ''}`;
    if (isImage) {
      const extraContent: ExtraContent[] = [{ type: 'image', data: base64, mimeType: contentType.toLowerCase() }];
      return { data: {}, text: `${head}, shown as an image.`, extraContent };
    }
    return { data: {}, text: `${head}, base64:\n${base64}` };
  },
});
