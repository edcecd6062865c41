/** `s3://bucket/key` objects as resources (the bucket_object_* tools' URIs). */
import { parseS3Uri } from '../aws/s3-uri.js';
import { objectContent } from './content.js';
import type { TemplateResource } from './define.js';
import { S3_SCHEME } from './uris.js';

export const objectResource: TemplateResource = {
  name: 's3-object',
  title: 'S3 object',
  uriTemplate: 's3://{bucket}/{+key}',
  description:
    'One S3 object: small text objects inline (append ?versionId=... for a version), anything else as its metadata and a ' +
    'presigned download link valid for an hour.',
  toolset: 'buckets',
  accepts: (uri) => S3_SCHEME.test(uri),
  async read(uri, ctx) {
    const loc = parseS3Uri(uri);
    return objectContent(ctx, uri, loc);
  },
};
