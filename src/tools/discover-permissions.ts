import { z } from 'zod';
import { loadS3 } from '../aws/clients.js';
import { parseBucket } from '../aws/s3-uri.js';
import { mapBounded } from '../core/concurrency.js';
import { awsClients, type BucketAction, type RuntimeContext } from '../context.js';
import { failureNote, fromAwsError, ToolError, toToolError } from '../core/errors.js';
import { defineTool } from './define.js';

type Answer = 'yes' | 'no' | 'unknown';
const MAX_PROBED = 25;
const PROBE_TIMEOUT_MS = 8_000;

interface BucketAccess {
  bucket: string;
  list: Answer;
  read: Answer;
  write: Answer;
  source: 'token' | 'probe';
  detail?: string | undefined;
}

/** In JWT mode the token's claims answer (no AWS call) when they restrict; otherwise null. */
function fromClaims(ctx: RuntimeContext, bucket: string): BucketAccess | null {
  const claims = ctx.session.jwtClaims;
  if (ctx.mode !== 'jwt' || !claims) return null;
  const can = (a: BucketAction): Answer => {
    try {
      ctx.authorize(bucket, a);
      return 'yes';
    } catch {
      return 'no';
    }
  };
  const answer = { list: can('list'), read: can('read'), write: can('write') };
  if (claims.permissions === null && answer.list === 'yes') return null; // the token does not restrict: ask AWS
  return {
    bucket,
    ...answer,
    source: 'token',
    detail: answer.list === 'no' && answer.read === 'no' ? "not allowed by the token's buckets or permissions" : "from the token's claims; the role's IAM policy may still refuse",
  };
}

const denied = (err: unknown, bucket: string) => {
  const e = fromAwsError(err, { action: 'probe', bucket });
  return e.code === 'access_denied' ? 'no' : e;
};

/**
 * Cheap probes: list one key, HEAD it, and start-then-abort a multipart upload (needs
 * s3:PutObject, leaves nothing behind) for write.
 */
async function probe(ctx: RuntimeContext, bucket: string): Promise<BucketAccess> {
  const out: BucketAccess = { bucket, list: 'unknown', read: 'unknown', write: 'unknown', source: 'probe' };
  // A client of this bucket's own: probes of several buckets run at once (see AwsClients.s3).
  const clients = awsClients(ctx);
  const [sdk, client] = await Promise.all([loadS3(), clients.s3(clients.knownRegion(bucket), { bucket })]);
  const opts = () => ({ abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const notes: string[] = [];
  // Listing and starting an upload are independent: both at once, then the HEAD and the abort.
  const [page, upload] = await Promise.allSettled([
    client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }), opts()),
    client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: `.quilt-mcp-write-probe/${Date.now()}` }), opts()),
  ]);
  const abort = async () => {
    if (upload.status !== 'fulfilled') return;
    const mpu = upload.value;
    await client
      .send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: mpu.Key, UploadId: mpu.UploadId }), opts())
      .catch((err: unknown) => ctx.logger.debug('write probe abort failed', { bucket, error: toToolError(err).message }));
  };
  let sampleKey: string | undefined;
  if (page.status === 'fulfilled') {
    out.list = 'yes';
    sampleKey = page.value.Contents?.[0]?.Key;
  } else {
    const d = denied(page.reason, bucket);
    if (d instanceof ToolError) {
      await abort();
      throw d; // no such bucket, expired credentials...: the whole answer is wrong
    }
    out.list = d;
  }
  if (upload.status === 'fulfilled') out.write = 'yes';
  else {
    const d = denied(upload.reason, bucket);
    out.write = d instanceof ToolError ? 'unknown' : d;
    if (d instanceof ToolError) notes.push(`write not known: ${failureNote(d)}`);
  }
  const head = async () => {
    if (!sampleKey) {
      notes.push(out.list === 'yes' ? 'empty bucket: read not probed' : 'read not probed without a key');
      return;
    }
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: sampleKey }), opts());
      out.read = 'yes';
    } catch (err) {
      const d = denied(err, bucket);
      out.read = d instanceof ToolError ? 'unknown' : d;
      if (d instanceof ToolError) notes.push(`read not known: ${failureNote(d)}`);
    }
  };
  await Promise.all([head(), abort()]);
  if (notes.length) out.detail = notes.join('; ');
  return out;
}

export const discoverPermissions = defineTool({
  name: 'discover_permissions',
  title: 'Discover bucket permissions',
  description:
    "For each bucket: can you list, read, write it? JWT mode: from the token; else cheap probes (list, head, start and abort an upload).",
  toolset: 'buckets',
  // The write probe starts (and aborts) a multipart upload: not a read, so not offered read-only.
  kind: 'write',
  input: { buckets: z.array(z.string()).max(MAX_PROBED).optional().describe('Buckets to check (default: those you can see, at most 25)') },
  output: {
    buckets: z.array(
      z.object({
        bucket: z.string(),
        list: z.enum(['yes', 'no', 'unknown']),
        read: z.enum(['yes', 'no', 'unknown']),
        write: z.enum(['yes', 'no', 'unknown']),
        source: z.enum(['token', 'probe']),
        detail: z.string().optional(),
      }),
    ),
    note: z.string().optional(),
  },
  async handler(args, ctx) {
    let names = args.buckets?.map(parseBucket);
    let note: string | undefined;
    if (!names) {
      if (ctx.allowedBuckets) names = [...ctx.allowedBuckets];
      else {
        const [{ ListBucketsCommand }, client] = await Promise.all([loadS3(), awsClients(ctx).s3()]);
        const listed = await client.send(new ListBucketsCommand({})).catch((err: unknown) => {
          throw new ToolError(
            fromAwsError(err, { action: 'list the buckets of' }).code,
            'The buckets to check could not be listed.',
            'Pass buckets: ["my-bucket", ...] explicitly.',
          );
        });
        names = (listed.Buckets ?? []).map((b) => b.Name ?? '').filter(Boolean);
      }
      if (names.length > MAX_PROBED) {
        note = `Checked the first ${MAX_PROBED} of ${names.length} buckets; pass buckets to choose.`;
        names = names.slice(0, MAX_PROBED);
      }
    }
    const results = await mapBounded(names, MAX_PROBED, async (bucket) => {
      const known = fromClaims(ctx, bucket);
      if (known) return known;
      try {
        return await probe(ctx, bucket);
      } catch (err) {
        return { bucket, list: 'unknown', read: 'unknown', write: 'unknown', source: 'probe', detail: failureNote(toToolError(err)) } as BucketAccess;
      }
    });
    const text = [
      'bucket: list / read / write',
      ...results.map((r) => `${r.bucket}: ${r.list} / ${r.read} / ${r.write}${r.detail ? ` (${r.detail})` : ''}`),
      ...(note ? [note] : []),
    ].join('\n');
    return { data: { buckets: results, note }, text };
  },
});
