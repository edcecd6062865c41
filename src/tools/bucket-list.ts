import { z } from 'zod';
import { awsClients } from '../context.js';
import { fromAwsError, ToolError } from '../errors.js';
import { loadS3 } from '../aws/clients.js';
import { isoDate } from './args.js';
import { defineTool } from './define.js';

const MAX_BUCKETS = 10_000;

export const bucketList = defineTool({
  name: 'bucket_list',
  title: 'List buckets',
  description:
    'List the S3 buckets the current credentials can see. In JWT mode these are the buckets the token grants. ' +
    'If listing all buckets is not allowed, name a bucket directly in bucket_objects_list.',
  toolset: 'buckets',
  kind: 'read',
  input: {},
  output: {
    buckets: z.array(
      z.object({
        name: z.string(),
        uri: z.string(),
        created: z.string().optional(),
        region: z.string().optional(),
      }),
    ),
    source: z.enum(['s3', 'token']).describe('Where the list came from'),
  },
  async handler(_args, ctx) {
    if (ctx.allowedBuckets) {
      const buckets = ctx.allowedBuckets.map((name) => ({ name, uri: `s3://${name}` }));
      return {
        data: { buckets, source: 'token' as const },
        text: `${buckets.length} bucket(s) granted by your token:\n${buckets.map((b) => `- ${b.name}`).join('\n')}`,
      };
    }
    const clients = awsClients(ctx);
    const buckets: Array<{ name: string; uri: string; created?: string; region?: string }> = [];
    try {
      const [{ ListBucketsCommand }, client] = await Promise.all([loadS3(), clients.s3()]);
      let token: string | undefined;
      do {
        const out = await client.send(new ListBucketsCommand({ MaxBuckets: 1000, ContinuationToken: token }));
        for (const b of out.Buckets ?? []) {
          if (!b.Name) continue;
          buckets.push({ name: b.Name, uri: `s3://${b.Name}`, created: isoDate(b.CreationDate), region: b.BucketRegion });
        }
        token = out.ContinuationToken;
      } while (token && buckets.length < MAX_BUCKETS);
    } catch (err) {
      const error = fromAwsError(err, { action: 'list the buckets of' });
      if (error.code === 'access_denied') {
        throw new ToolError(
          'access_denied',
          'Your credentials may not list all buckets (s3:ListAllMyBuckets is not allowed).',
          'Name a bucket directly: bucket_objects_list with bucket="your-bucket" works without that permission.',
        );
      }
      throw error;
    }
    buckets.sort((a, b) => (a.name < b.name ? -1 : 1));
    return {
      data: { buckets, source: 's3' as const },
      text: buckets.length
        ? `${buckets.length} bucket(s):\n${buckets.map((b) => `- ${b.name}${b.region ? ` (${b.region})` : ''}`).join('\n')}`
        : 'No buckets are visible to these credentials.',
    };
  },
});
