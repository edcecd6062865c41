/**
 * Search without a catalog: scan S3 directly for object keys and package names that match the query
 * (query.ts: words, phrases, AND/OR/NOT). It cannot see file contents, metadata or package messages, ranks nothing, and
 * stops after a bounded number of keys per bucket; the result says all of that.
 */
import { listAll } from '../aws/list.js';
import type { RuntimeContext } from '../context.js';
import { allInOrder, mapBounded, mapS3 } from '../concurrency.js';
import { quiltPlusUri } from '../catalog/urls.js';
import { listPackages, readPointer } from '../packages/registry.js';
import { s3Registry } from '../packages/registries.js';
import { s3Matcher } from './query.js';
import type { Scope, SearchHit, SearchPage } from './types.js';

/** Keys listed per bucket and kind before the scan stops (10 list calls). */
export const SCAN_LIMIT = 10_000;
/** Buckets scanned at once (each listing splits across its prefixes on its own). */
const BUCKETS_AT_ONCE = 8;


interface Scan {
  hits: SearchHit[];
  matched: number;
  scanned: number;
  truncated: boolean;
}

async function scanObjects(ctx: RuntimeContext, bucket: string, match: (s: string) => boolean, limit: number, signal: AbortSignal): Promise<Scan> {
  const { keys, truncated } = await listAll(ctx, bucket, '', { max: SCAN_LIMIT, verb: 'search the objects of', signal });
  const out: Scan = { hits: [], matched: 0, scanned: keys.length, truncated };
  for (const o of keys) {
    if (o.key.startsWith('.quilt/') || !match(o.key)) continue;
    out.matched++;
    if (out.hits.length < limit) {
      out.hits.push({ type: 'file', bucket, key: o.key, size: o.size, modified: o.lastModified?.toISOString(), s3_uri: `s3://${bucket}/${o.key}` });
    }
  }
  return out;
}

async function scanPackages(ctx: RuntimeContext, bucket: string, match: (s: string) => boolean, limit: number, signal: AbortSignal): Promise<Scan> {
  const { packages, scanned, truncated } = await listPackages(s3Registry(ctx, bucket), { max: SCAN_LIMIT, signal });
  const found = packages.filter((p) => match(p.name));
  const hits = await mapS3(found.slice(0, limit), async ({ name, modified }) => {
    const hash = (await readPointer(s3Registry(ctx, bucket), name, 'latest', signal))?.hash;
    return {
      type: 'package' as const,
      bucket,
      name,
      hash,
      modified: modified?.toISOString(),
      quilt_uri: quiltPlusUri(bucket, name, { hash }),
    };
  });
  return { hits, matched: found.length, scanned, truncated };
}

/**
 * `why`: the sentence saying why there is no catalog search (it opens the result's note), and
 * `fix`: how to get one.
 */
export async function searchS3(
  ctx: RuntimeContext,
  req: { query: string; scope: Scope; buckets: string[]; limit: number; signal: AbortSignal; why: string; fix: string },
): Promise<SearchPage> {
  const match = s3Matcher(req.query);
  // A bucket's packages and files are scanned at once, and several buckets at a time.
  const scans = await mapBounded(req.buckets, BUCKETS_AT_ONCE, async (bucket) => {
    const [packages, files] = await allInOrder([
      req.scope !== 'file' ? scanPackages(ctx, bucket, match, req.limit, req.signal) : Promise.resolve(undefined),
      req.scope !== 'package' ? scanObjects(ctx, bucket, match, req.limit, req.signal) : Promise.resolve(undefined),
    ]);
    return { bucket, packages, files };
  });
  const all = scans.flatMap((s) => [...(s.packages?.hits ?? []), ...(s.files?.hits ?? [])]);
  const matched = (k: 'packages' | 'files') => scans.reduce((n, s) => n + (s[k]?.matched ?? 0), 0);
  const scanned = scans.reduce((n, s) => n + (s.packages?.scanned ?? 0) + (s.files?.scanned ?? 0), 0);
  const truncatedIn = scans.filter((s) => s.packages?.truncated || s.files?.truncated).map((s) => s.bucket);
  const hits = all.slice(0, req.limit);
  const more = matched('packages') + matched('files') - hits.length;
  const note = [
    `${req.why.replace(/\.$/, '')}, so this searched S3 directly: object keys and package names only`,
    '(not file contents, metadata or package messages), without relevance ranking.',
    `Scanned ${scanned} key(s) in ${req.buckets.length} bucket(s).`,
    truncatedIn.length ? `Stopped after ${SCAN_LIMIT} keys in ${truncatedIn.join(', ')}: matches beyond that were not seen.` : '',
    more > 0 ? `${more} more match(es) not shown: narrow the query or raise limit.` : '',
    req.fix,
  ]
    .filter(Boolean)
    .join(' ');
  return {
    hits,
    total: {
      ...(req.scope !== 'file' ? { packages: matched('packages') } : {}),
      ...(req.scope !== 'package' ? { files: matched('files') } : {}),
    },
    next: undefined,
    as: ctx.principal.id,
    note,
  };
}
