import { z } from 'zod';
import { loadS3 } from '../aws/clients.js';
import { BUCKET_CONFIGS, type BucketConfigsData } from '../catalog/documents.js';
import { awsClients, type RuntimeContext } from '../context.js';
import { failureNote, fromAwsError, ToolError, toToolError } from '../core/errors.js';
import { isoDate } from './args.js';
import { defineTool } from './define.js';

const MAX_BUCKETS = 10_000;

interface Bucket {
  name: string;
  uri: string;
  title?: string | undefined;
  description?: string | undefined;
  created?: string | undefined;
  region?: string | undefined;
}

async function fromS3(ctx: RuntimeContext): Promise<Bucket[]> {
  const clients = awsClients(ctx);
  const buckets: Bucket[] = [];
  try {
    const [{ ListBucketsCommand }, client] = await Promise.all([loadS3(), clients.s3()]);
    let token: string | undefined;
    do {
      const out = await client.send(new ListBucketsCommand({ MaxBuckets: 1000, ContinuationToken: token }));
      for (const b of out.Buckets ?? []) {
        if (b.Name) buckets.push({ name: b.Name, uri: `s3://${b.Name}`, created: isoDate(b.CreationDate), region: b.BucketRegion });
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
  return buckets.sort((a, b) => (a.name < b.name ? -1 : 1));
}

export const bucketList = defineTool({
  name: 'bucket_list',
  title: 'List buckets',
  description: "The buckets you can work with: the Quilt catalog's (with titles), else those S3 lists; in JWT mode the token's.",
  toolset: 'buckets',
  kind: 'read',
  input: {},
  output: {
    buckets: z.array(
      z.object({
        name: z.string(),
        uri: z.string(),
        title: z.string().optional(),
        description: z.string().optional(),
        created: z.string().optional(),
        region: z.string().optional(),
      }),
    ),
    source: z.enum(['catalog', 's3', 'token']).describe('Where the list came from'),
    note: z.string().optional(),
  },
  async handler(_args, ctx) {
    let note: string | undefined;
    if (ctx.catalog.auth !== 'none') {
      try {
        const data = await ctx.catalog.client().graphql<BucketConfigsData>(BUCKET_CONFIGS);
        const allowed = ctx.allowedBuckets;
        const buckets: Bucket[] = data.bucketConfigs
          .filter((b) => !allowed || allowed.includes(b.name))
          .map((b) => ({ name: b.name, uri: `s3://${b.name}`, title: b.title, description: b.description ?? undefined }));
        return {
          data: { buckets, source: 'catalog' as const },
          text: `${buckets.length} bucket(s) in the Quilt catalog:\n${buckets.map((b) => `- ${b.name}${b.title ? `: ${b.title}` : ''}${b.description ? ` (${b.description})` : ''}`).join('\n')}`,
        };
      } catch (err) {
        // Say so, then answer from what AWS or the token knows.
        note = `The catalog's bucket list could not be read (${failureNote(toToolError(err))}); listed from ${ctx.allowedBuckets ? 'the token' : 'S3'} instead.`;
      }
    }
    if (ctx.allowedBuckets) {
      const buckets = ctx.allowedBuckets.map((name) => ({ name, uri: `s3://${name}` }));
      return {
        data: { buckets, source: 'token' as const, note },
        text: `${buckets.length} bucket(s) granted by your token:\n${buckets.map((b) => `- ${b.name}`).join('\n')}${note ? `\n${note}` : ''}`,
      };
    }
    const buckets = await fromS3(ctx);
    return {
      data: { buckets, source: 's3' as const, note },
      text:
        (buckets.length
          ? `${buckets.length} bucket(s):\n${buckets.map((b) => `- ${b.name}${b.region ? ` (${b.region})` : ''}`).join('\n')}`
          : 'No buckets are visible to these credentials.') + (note ? `\n${note}` : ''),
    };
  },
});
