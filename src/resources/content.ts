/**
 * The content of one S3 object as a resource: small text inline, anything else (large, or not
 * text) as its metadata and a presigned download link. Both through withS3, so the caller's
 * permissions are checked before any AWS call.
 */
import { loadPresigner } from '../aws/clients.js';
import { formatS3Uri, type S3Location } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { awsClients, type RuntimeContext } from '../context.js';
import { guessContentType } from '../core/content-type.js';
import { formatBytes } from '../core/format.js';
import { binaryContentType, decodeText } from '../core/text-detect.js';
import { readRange } from '../aws/object-range.js';
import type { TextContent } from './define.js';

/** Largest object returned inline as text; resources are read whole, so keep them context-sized. */
export const INLINE_TEXT_BYTES = 256 * 1024;
/** Validity of the download link offered instead. */
export const LINK_SECONDS = 3600;

/** A text mime type for the text read: the object's own when it is a text type, else from the key. */
function textMimeType(contentType: string | undefined, key: string): string {
  if (contentType && /^(text\/|application\/(json|x-ndjson|xml|yaml|x-yaml|csv))/i.test(contentType)) return contentType;
  return guessContentType(key, true);
}

async function presign(ctx: RuntimeContext, loc: S3Location): Promise<{ url: string; expiresAt: Date; note?: string }> {
  const clients = awsClients(ctx);
  return withS3(ctx, { ...loc, action: 'read', verb: 'link to' }, async (_client, sdk) => {
    const client = await clients.s3ForBucket(loc.bucket);
    const { getSignedUrl } = await loadPresigner();
    const url = await getSignedUrl(client, new sdk.GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId }), { expiresIn: LINK_SECONDS });
    const creds = await clients.credentials();
    const wanted = new Date(Date.now() + LINK_SECONDS * 1000);
    if (creds.expiration && creds.expiration < wanted) {
      return { url, expiresAt: creds.expiration, note: 'The link stops working when the temporary credentials that signed it expire.' };
    }
    return { url, expiresAt: wanted };
  });
}

/**
 * `uri` is the resource URI read (it is what the content names); `describe` adds fields to the
 * metadata answer (a package entry's logical key and hash).
 */
export async function objectContent(ctx: RuntimeContext, uri: string, loc: S3Location, describe: Record<string, unknown> = {}): Promise<TextContent[]> {
  // One byte more than inlined tells "too large" without a separate HEAD.
  const read = await withS3(ctx, { ...loc, action: 'read', verb: 'read' }, (client, sdk) => readRange(client, sdk, loc, 0, INLINE_TEXT_BYTES + 1));
  let why: string;
  if (read.total > INLINE_TEXT_BYTES) why = `it is ${formatBytes(read.total)} (${read.total} bytes), more than the ${INLINE_TEXT_BYTES} bytes a resource shows inline`;
  else if (binaryContentType(read.contentType)) why = `it is not text (content type ${read.contentType})`;
  else {
    const decoded = decodeText(read.bytes, { atStart: true, atEnd: true });
    if (decoded.kind === 'text') return [{ uri, mimeType: textMimeType(read.contentType, loc.key), text: decoded.text }];
    why = `it is not text (${decoded.reason})`;
  }
  const link = await presign(ctx, { ...loc, versionId: loc.versionId ?? read.versionId });
  const data = {
    uri,
    ...describe,
    s3_uri: formatS3Uri(loc),
    size: read.total,
    content_type: read.contentType,
    version_id: read.versionId,
    inline: false,
    why_not_inline: `Not shown inline: ${why}.`,
    download_url: link.url,
    expires_at: link.expiresAt.toISOString(),
    note: `${link.note ? `${link.note} ` : ''}The download URL works without credentials until it expires: treat it as a secret. bucket_object_text reads text in pieces.`,
  };
  return [{ uri, mimeType: 'application/json', text: JSON.stringify(data, null, 2) }];
}
