import { z } from 'zod';
import { loadPresigner } from '../aws/clients.js';
import { formatS3Uri, parseS3Uri } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { awsClients } from '../context.js';
import { objectUriArg } from './args.js';
import { defineTool } from './define.js';

const MAX_EXPIRY = 7 * 24 * 3600; // SigV4 limit

export const bucketObjectLink = defineTool({
  name: 'bucket_object_link',
  title: 'Presigned download link',
  description:
    "A presigned URL that downloads an object without credentials for expires_in seconds (at most 7 days or the credentials' expiry). A secret.",
  toolset: 'buckets',
  kind: 'read',
  idempotent: false,
  input: {
    uri: objectUriArg,
    expires_in: z.number().int().min(1).max(MAX_EXPIRY).default(3600).describe('Seconds'),
  },
  output: {
    uri: z.string(),
    url: z.string(),
    expires_in: z.number(),
    expires_at: z.string(),
    note: z.string().optional(),
  },
  async handler(args, ctx) {
    const loc = parseS3Uri(args.uri);
    const clients = awsClients(ctx);
    const { url, credentialsExpire } = await withS3(ctx, { ...loc, action: 'read', verb: 'link to' }, async (_client, sdk) => {
      // Check the object exists, so the link is not to nothing; sign in the bucket's own region.
      const client = await clients.s3ForBucket(loc.bucket);
      await client.send(new sdk.HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId }));
      const { getSignedUrl } = await loadPresigner();
      const url = await getSignedUrl(
        client,
        new sdk.GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId }),
        { expiresIn: args.expires_in },
      );
      const creds = await clients.credentials();
      return { url, credentialsExpire: creds.expiration };
    });
    let expiresAt = new Date(Date.now() + args.expires_in * 1000);
    let note: string | undefined;
    if (credentialsExpire && credentialsExpire < expiresAt) {
      expiresAt = credentialsExpire;
      note = 'The link stops working when the temporary credentials that signed it expire, before the requested time.';
    }
    const data = { uri: formatS3Uri(loc), url, expires_in: args.expires_in, expires_at: expiresAt.toISOString(), note };
    return {
      data,
      text: `Download link for ${data.uri} (valid until ${data.expires_at}):\n${url}${note ? `\n${note}` : ''}`,
    };
  },
});
