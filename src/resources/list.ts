/**
 * resources/list: the fixed resources, then the most recently updated packages of the buckets the
 * caller can see (JWT: only the token's buckets), newest first per bucket, as pinned
 * `quilt+s3://bucket#package=name@hash` URIs. Bounded per page: at most PAGE_SIZE packages, at most
 * BUCKETS_PER_PAGE bucket listings of at most POINTER_KEYS registry keys each (in a registry with more,
 * only packages among the first keys by name are seen: recency is a browsing aid, not an index). The
 * cursor is sealed for the caller (cursors.ts) and its buckets are authorized again on every page.
 */
import type { Resource } from '@modelcontextprotocol/sdk/types.js';
import { loadS3 } from '../aws/clients.js';
import { BUCKET_CONFIGS, type BucketConfigsData } from '../catalog/documents.js';
import { quiltPlusUri } from '../catalog/urls.js';
import { mapS3 } from '../concurrency.js';
import { awsClients, type RuntimeContext } from '../context.js';
import { ToolError, toToolError } from '../errors.js';
import { compareCodePoints } from '../packages/pyjson.js';
import { listPackages, readPointer, type ListedPackage } from '../packages/registry.js';
import { openRegistry, s3Registry } from '../packages/registries.js';
import type { RegistryStore } from '../packages/store.js';
import { quiltPlusOf } from '../catalog/urls.js';
import { isFixed, type ResourceDefinition } from './define.js';

export const PAGE_SIZE = 25;
/** quilt3's local registry in the list a listing goes through (desktop mode); no bucket name has a "~". */
const LOCAL = '~local';

const registryOf = (ctx: RuntimeContext, bucket: string): Promise<RegistryStore> => (bucket === LOCAL ? openRegistry(ctx, 'local') : Promise.resolve(s3Registry(ctx, bucket)));
export const BUCKETS_PER_PAGE = 4;
/** Buckets looked into (the cursor carries their names: 50 keep it well under cursors.ts's size limit). */
export const MAX_BUCKETS = 50;
export const POINTER_KEYS = 2000;

interface ListCursor {
  /** The buckets being listed (a snapshot, so pages agree). */
  b: string[];
  /** Index of the bucket the next page starts in. */
  i: number;
  /** Within that bucket, packages after this one in (modified desc, name) order. */
  after?: [string, string] | undefined;
}

function parseCursor(v: Record<string, unknown>): ListCursor {
  const ok =
    Array.isArray(v.b) &&
    v.b.length <= MAX_BUCKETS &&
    v.b.every((x) => typeof x === 'string') &&
    Number.isInteger(v.i) &&
    (v.after === undefined || (Array.isArray(v.after) && v.after.length === 2 && v.after.every((x) => typeof x === 'string')));
  if (!ok) throw new ToolError('invalid_input', 'The cursor is not one resources/list returned.', 'Pass nextCursor from the previous page unchanged.');
  return v as unknown as ListCursor;
}

function mayList(ctx: RuntimeContext, bucket: string): boolean {
  try {
    ctx.authorize(bucket, 'list');
    return true;
  } catch {
    return false;
  }
}

/** Buckets to list packages of: the token's, else the catalog's, else what S3 ListBuckets shows (all bounded). */
async function visibleBuckets(ctx: RuntimeContext): Promise<string[]> {
  let names: string[] = [];
  if (ctx.allowedBuckets) names = [...ctx.allowedBuckets];
  else if (ctx.catalog.auth !== 'none') {
    try {
      names = (await ctx.catalog.client().graphql<BucketConfigsData>(BUCKET_CONFIGS)).bucketConfigs.map((b) => b.name);
    } catch (err) {
      ctx.logger.info('resources/list: catalog buckets unavailable, trying S3', { error: toToolError(err).message });
    }
  }
  if (!ctx.allowedBuckets && names.length === 0 && ctx.aws.clients) {
    try {
      const [{ ListBucketsCommand }, client] = await Promise.all([loadS3(), awsClients(ctx).s3()]);
      const out = await client.send(new ListBucketsCommand({ MaxBuckets: MAX_BUCKETS }));
      names = (out.Buckets ?? []).flatMap((b) => (b.Name ? [b.Name] : [])).sort(compareCodePoints);
    } catch (err) {
      // Without s3:ListAllMyBuckets there is nothing to list; the fixed resources still are.
      ctx.logger.info('resources/list: buckets cannot be listed', { error: toToolError(err).message });
    }
  }
  return names.filter((b) => mayList(ctx, b)).slice(0, MAX_BUCKETS);
}

/** Newest first; ties by name, so the order (and a cursor's place in it) is total. */
function newestFirst(a: ListedPackage, b: ListedPackage): number {
  const t = (b.modified?.getTime() ?? 0) - (a.modified?.getTime() ?? 0);
  return t || compareCodePoints(a.name, b.name);
}

const placeOf = (p: ListedPackage): [string, string] => [p.modified?.toISOString() ?? '', p.name];

function isAfter(p: ListedPackage, after: [string, string]): boolean {
  const [when, name] = placeOf(p);
  return when < after[0] || (when === after[0] && compareCodePoints(name, after[1]) > 0);
}

export async function listResources(
  ctx: RuntimeContext,
  resources: readonly ResourceDefinition[],
  cursor: string | undefined,
  signal: AbortSignal,
): Promise<{ resources: Resource[]; nextCursor?: string }> {
  const out: Resource[] = [];
  let state: ListCursor;
  if (cursor === undefined) {
    for (const r of resources) {
      if (isFixed(r)) out.push({ uri: r.uri, name: r.name, title: r.title, description: r.description, ...(r.mimeType ? { mimeType: r.mimeType } : {}) });
    }
    const packagesOffered = resources.some((r) => !isFixed(r) && r.toolset === 'packages');
    // Desktop mode lists quilt3's local registry first (it needs no AWS), then the buckets.
    state = { b: packagesOffered ? [...(ctx.local ? [LOCAL] : []), ...(ctx.aws.clients ? await visibleBuckets(ctx) : [])] : [], i: 0 };
  } else {
    state = parseCursor(ctx.cursors.open('resources_list', cursor));
    // Sealed for this caller, and checked again all the same (a token's buckets may have changed).
    for (const b of state.b) if (b !== LOCAL) ctx.authorize(b, 'list');
  }

  const found: Array<{ bucket: string; pkg: ListedPackage }> = [];
  let listings = 0;
  let { i, after } = state;
  // The buckets this page may reach, listed at once (a page that fills early leaves some unused).
  const ahead = state.b.slice(i, i + BUCKETS_PER_PAGE).map((bucket) =>
    registryOf(ctx, bucket).then((reg) => listPackages(reg, { max: POINTER_KEYS, signal })).then(
      (r) => r.packages.sort(newestFirst),
      (err: unknown) => {
        ctx.logger.info('resources/list: packages of a bucket cannot be listed', { bucket, error: toToolError(err).message });
        return [] as ListedPackage[];
      },
    ),
  );
  while (i < state.b.length && found.length < PAGE_SIZE && listings < BUCKETS_PER_PAGE) {
    const bucket = state.b[i]!;
    const packages = await ahead[listings]!;
    listings++;
    const rest = after ? packages.filter((p) => isAfter(p, after!)) : packages;
    const take = rest.slice(0, PAGE_SIZE - found.length);
    for (const pkg of take) found.push({ bucket, pkg });
    if (take.length < rest.length) {
      after = placeOf(take[take.length - 1]!);
      break;
    }
    i++;
    after = undefined;
  }

  const listed = await mapS3(found, async ({ bucket, pkg }): Promise<Resource | undefined> => {
    const reg = await registryOf(ctx, bucket);
    const latest = await readPointer(reg, pkg.name, 'latest', signal).catch(() => undefined);
    if (!latest) return undefined; // deleted meanwhile, or unreadable: not listed
    const when = pkg.modified?.toISOString();
    return {
      uri: reg.bucket ? quiltPlusUri(bucket, pkg.name, { hash: latest.hash }) : quiltPlusOf(reg.uri, pkg.name, { hash: latest.hash }),
      name: `${reg.id}/${pkg.name}`,
      title: `${pkg.name} (${bucket === LOCAL ? 'local registry' : bucket})`,
      description: `Latest revision of Quilt package ${pkg.name} in ${reg.uri}${when ? `, set ${when}` : ''}.`,
      mimeType: 'application/json',
      ...(when ? { annotations: { lastModified: when } } : {}),
    };
  });
  for (const r of listed) if (r) out.push(r);
  const more = i < state.b.length;
  return { resources: out, ...(more ? { nextCursor: ctx.cursors.seal('resources_list', { b: state.b, i, ...(after ? { after } : {}) }) } : {}) };
}
