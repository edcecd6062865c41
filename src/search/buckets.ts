/**
 * Which buckets a search without a catalog looks into when none are named: the token's (JWT), else
 * those S3 lists for these credentials; at most SCAN_BUCKETS of them, the ones whose names hold a
 * word of the query first, and the answer says how many were left out.
 */
import { loadS3 } from '../aws/clients.js';
import { awsClients, type RuntimeContext } from '../context.js';
import { ToolError, toToolError } from '../core/errors.js';
import { compareCodePoints } from '../core/code-points.js';

/** Buckets scanned at most without a catalog (each is listed, registry and keys). */
export const SCAN_BUCKETS = 10;

export interface VisibleBuckets {
  buckets: string[];
  /** Where the list came from, as a phrase: "the buckets given", "the token's buckets"... */
  from: string;
}

export async function visibleBuckets(ctx: RuntimeContext, requested: string[] | undefined, why: string): Promise<VisibleBuckets> {
  if (requested) return { buckets: requested, from: 'the buckets given' };
  if (ctx.allowedBuckets) return { buckets: [...ctx.allowedBuckets], from: "the token's buckets" };
  try {
    const [{ ListBucketsCommand }, client] = await Promise.all([loadS3(), awsClients(ctx).s3()]);
    const out = await client.send(new ListBucketsCommand({ MaxBuckets: 1000 }));
    return { buckets: (out.Buckets ?? []).flatMap((b) => (b.Name ? [b.Name] : [])).sort(compareCodePoints), from: 'the buckets S3 lists for these credentials' };
  } catch (err) {
    throw new ToolError(
      'invalid_input',
      `${why} and the buckets could not be listed to choose where to look (${toToolError(err).message}).`,
      'Pass buckets: ["my-bucket"] to say where to look.',
    );
  }
}

/** The buckets to scan: those whose names hold a word of `words` first, then the rest, at most SCAN_BUCKETS. */
export function bucketsToScan(buckets: readonly string[], words: readonly string[]): { scanned: string[]; skipped: number } {
  const named = (b: string) => words.some((w) => w && b.toLowerCase().includes(w.toLowerCase()));
  const order = [...buckets.filter(named), ...buckets.filter((b) => !named(b))];
  return { scanned: order.slice(0, SCAN_BUCKETS), skipped: Math.max(0, order.length - SCAN_BUCKETS) };
}
