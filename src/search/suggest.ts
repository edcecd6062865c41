/**
 * Query refinements from what exists: buckets, package names and package metadata keys that
 * match the words of a (partial) query. From the catalog when the caller has one (its bucket list,
 * a package search and its metadata facets); else from a bounded S3 scan (registry listings and
 * the headers of a few manifests). Only buckets the caller may list are ever looked at or named.
 */
import { BUCKET_CONFIGS, SEARCH_SUGGEST, type BucketConfigsData, type FacetShape, type SearchSuggestData } from '../catalog/documents.js';
import { quiltPlusUri } from '../catalog/urls.js';
import { mapBounded, mapS3 } from '../concurrency.js';
import type { RuntimeContext } from '../context.js';
import { bucketsToScan, SCAN_BUCKETS, visibleBuckets } from './buckets.js';
import { ToolError, toToolError } from '../errors.js';
import type { ManifestHeader } from '../packages/manifest.js';
import { compareCodePoints, toPlain } from '../packages/pyjson.js';
import { listPackages, readPointer, streamManifest, type ListedPackage } from '../packages/registry.js';
import { s3Registry } from '../packages/registries.js';

/** S3 scan bounds: registry keys per bucket, manifest headers read (buckets: buckets.ts). */
export { SCAN_BUCKETS };
export const SCAN_POINTER_KEYS = 2000;
export const SCAN_MANIFESTS = 10;
const MAX_VALUES = 5;

export interface BucketSuggestion {
  name: string;
  title?: string | undefined;
  matched: string[];
}
export interface PackageSuggestion {
  bucket: string;
  name: string;
  quilt_uri: string;
  matched: string[];
}
export interface MetaKeySuggestion {
  key: string;
  type: string;
  values?: string[] | undefined;
  range?: { min: number; max: number } | undefined;
  matched: string[];
}
export interface QuerySuggestion {
  query: string;
  scope: 'global' | 'package' | 'file';
  buckets?: string[] | undefined;
  why: string;
}
export interface Suggestions {
  source: 'catalog' | 's3_scan';
  words: string[];
  buckets: BucketSuggestion[];
  packages: PackageSuggestion[];
  metadata_keys: MetaKeySuggestion[];
  queries: QuerySuggestion[];
  note: string;
}

/** The plain words of a query: Elasticsearch syntax (fields, operators, quotes, wildcards) stripped. */
export function queryWords(query: string): string[] {
  const words = query
    .replace(/\b(AND|OR|NOT)\b/g, ' ')
    .split(/[\s"()[\]{}:+\-!~^*?\\/|&=<>,]+/)
    .map((w) => w.toLowerCase())
    .filter((w) => w.length > 0);
  return [...new Set(words)].slice(0, 20);
}

const matchedWords = (words: string[], ...texts: Array<string | undefined>) => {
  const hay = texts.filter(Boolean).join(' ').toLowerCase();
  return words.filter((w) => hay.includes(w));
};

/**
 * Most words matched first (then the given order); unmatched items are dropped unless `all`
 * (metadata keys of matching packages are refinements even when no word names them).
 */
function rank<T extends { matched: string[] }>(items: T[], words: string[], limit: number, all = false): T[] {
  const kept = words.length && !all ? items.filter((i) => i.matched.length > 0) : items;
  return kept
    .map((item, i) => ({ item, i }))
    .sort((a, b) => b.item.matched.length - a.item.matched.length || a.i - b.i)
    .slice(0, limit)
    .map((x) => x.item);
}

function mayList(ctx: RuntimeContext, bucket: string): boolean {
  try {
    ctx.authorize(bucket, 'list');
    return true;
  } catch {
    return false;
  }
}

const FACET_TYPES: Record<FacetShape['__typename'], string> = {
  NumberPackageUserMetaFacet: 'number',
  DatetimePackageUserMetaFacet: 'datetime',
  KeywordPackageUserMetaFacet: 'keyword',
  TextPackageUserMetaFacet: 'text',
  BooleanPackageUserMetaFacet: 'boolean',
};

/** Paths as the catalog shows them ("/a/b"); the key a person types is "a.b". */
const keyOfPath = (path: string) => path.replace(/^\//, '').split('/').join('.');

function queriesFor(s: Omit<Suggestions, 'queries' | 'note'>, catalog: boolean, limit: number): QuerySuggestion[] {
  const out: QuerySuggestion[] = [];
  // In query-string syntax "/" starts a regular expression, so names are quoted; the S3 scan
  // matches words literally, so there they are not.
  const phrase = (t: string) => (catalog ? `"${t.replace(/["\\]/g, ' ')}"` : t);
  for (const b of s.buckets.filter((b) => b.matched.length)) {
    // The S3 scan matches names: there, only words some name in the bucket has are kept.
    const named = (w: string) => catalog || s.packages.some((p) => p.bucket === b.name && p.matched.includes(w));
    const rest = s.words.filter((w) => !b.matched.includes(w) && named(w));
    out.push({ query: rest.join(' ') || '*', scope: 'global', buckets: [b.name], why: `"${b.matched.join('", "')}" names bucket ${b.name}: search inside it.` });
  }
  for (const p of s.packages.slice(0, 3)) {
    out.push({ query: phrase(p.name), scope: 'package', buckets: [p.bucket], why: `Package ${p.name} exists in ${p.bucket}.` });
  }
  // The S3 scan matches names and keys, not metadata: a value would not find its packages there.
  for (const k of catalog ? s.metadata_keys.filter((k) => k.values?.length).slice(0, 3) : []) {
    const v = k.values!.find((x) => s.words.some((w) => x.toLowerCase().includes(w))) ?? k.values![0]!;
    out.push({ query: phrase(v), scope: 'package', why: `Packages have metadata ${k.key} = "${v}".` });
  }
  if (catalog && s.words.length && !s.packages.length && !s.buckets.some((b) => b.matched.length)) {
    out.push({ query: s.words.map((w) => `${w}*`).join(' '), scope: 'global', why: 'Nothing matched the words exactly: a trailing * also finds longer words.' });
  }
  return out.slice(0, limit);
}

// ---------------------------------------------------------------------------------------------
// From the catalog

async function fromCatalog(ctx: RuntimeContext, words: string[], query: string, buckets: string[] | undefined, limit: number, signal: AbortSignal): Promise<Suggestions> {
  const client = ctx.catalog.client();
  const scope = buckets ?? (ctx.allowedBuckets ? [...ctx.allowedBuckets] : null);
  const search = (searchString: string | null) =>
    client.graphql<SearchSuggestData>(SEARCH_SUGGEST, { buckets: scope, searchString, size: Math.min(100, limit * 5) }, signal);
  // Matching packages, and (for metadata keys) everything in scope, side by side.
  const [configs, matching, everything] = await Promise.all([
    client.graphql<BucketConfigsData>(BUCKET_CONFIGS, {}, signal),
    query.trim() && query.trim() !== '*' ? search(query) : undefined,
    search(null),
  ]);
  const unpack = (d: SearchSuggestData | undefined) => {
    const r = d?.searchPackages;
    if (!r || r.__typename === 'EmptySearchResultSet') return { hits: [], facets: [] as FacetShape[], truncated: false };
    if (r.__typename === 'InvalidInput' || r.__typename === 'OperationError') {
      // A partial query often is not valid query syntax yet: fall back to what exists.
      ctx.logger.debug('search_suggest: catalog refused the query', { error: r.__typename });
      return { hits: [], facets: [], truncated: false };
    }
    const page = r.firstPage;
    const hits = page.__typename === 'PackagesSearchResultSetPage' ? page.hits : [];
    return { hits, facets: r.stats.userMeta, truncated: r.stats.userMetaTruncated };
  };
  const m = unpack(matching);
  const all = unpack(everything);

  const bucketList: BucketSuggestion[] = configs.bucketConfigs
    .filter((b) => mayList(ctx, b.name) && (!buckets || buckets.includes(b.name)))
    .map((b) => ({ name: b.name, title: b.title, matched: matchedWords(words, b.name, b.title, b.description ?? undefined) }));

  const seen = new Set<string>();
  const packages: PackageSuggestion[] = [];
  for (const h of [...m.hits, ...all.hits]) {
    const id = `${h.bucket}\n${h.name}`;
    if (seen.has(id) || !mayList(ctx, h.bucket)) continue;
    seen.add(id);
    const matched = matchedWords(words, h.name);
    // Catalog matches count even when the words are in the message or metadata, not the name.
    packages.push({ bucket: h.bucket, name: h.name, quilt_uri: quiltPlusUri(h.bucket, h.name, { hash: h.hash }), matched: matched.length || !m.hits.includes(h) ? matched : words });
  }
  const facets = (m.facets.length ? m.facets : all.facets).map((f) => ({
    key: keyOfPath(f.path),
    type: FACET_TYPES[f.__typename] ?? 'unknown',
    values: f.extents?.values.slice(0, MAX_VALUES),
    range: f.numberExtents,
    matched: matchedWords(words, keyOfPath(f.path), ...(f.extents?.values ?? [])),
  }));
  const s = { source: 'catalog' as const, words, buckets: rank(bucketList, words, limit), packages: rank(packages, words, limit), metadata_keys: rank(facets, words, limit, m.facets.length > 0 || !words.length) };
  const truncated = m.truncated || all.truncated;
  return {
    ...s,
    queries: queriesFor(s, true, limit),
    note: `From the Quilt catalog${ctx.catalog.url ? ` ${ctx.catalog.url}` : ''}: its buckets, a package search (latest revisions) and the metadata keys of the packages in ${scope ? scope.join(', ') : 'all buckets you can see'}.${truncated ? ' The catalog listed only some metadata keys.' : ''}`,
  };
}

// ---------------------------------------------------------------------------------------------
// From S3

/** Top-level and one level nested keys of user metadata, with a few sample values. */
function metaKeys(meta: unknown, into: Map<string, { type: string; values: Set<string> }>, prefix = '', depth = 0): void {
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return;
  for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const type = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    if (type === 'object' && depth < 1) {
      metaKeys(v, into, key, depth + 1);
      continue;
    }
    const slot = into.get(key) ?? { type, values: new Set<string>() };
    if ((type === 'string' || type === 'number' || type === 'boolean') && slot.values.size < MAX_VALUES) slot.values.add(String(v).slice(0, 100));
    into.set(key, slot);
  }
}

async function headerOf(ctx: RuntimeContext, bucket: string, name: string, signal: AbortSignal): Promise<ManifestHeader | undefined> {
  const latest = await readPointer(s3Registry(ctx, bucket), name, 'latest', signal);
  if (!latest) return undefined;
  // The header is the first line: leaving the loop closes the stream, so only it is read.
  for await (const rec of streamManifest(s3Registry(ctx, bucket), latest.hash)) return rec as ManifestHeader;
  return undefined;
}

async function fromS3(ctx: RuntimeContext, words: string[], requested: string[] | undefined, limit: number, signal: AbortSignal, why: string): Promise<Suggestions> {
  const { buckets: visible, from } = await visibleBuckets(ctx, requested, 'Without a Quilt catalog, suggestions come from scanning S3,');
  const allowed = visible.filter((b) => mayList(ctx, b));
  const bucketList = allowed.map((name) => ({ name, matched: matchedWords(words, name) }));
  // Buckets the words name are scanned first, then the rest, up to SCAN_BUCKETS.
  const { scanned } = bucketsToScan(allowed, words);
  const problems: string[] = [];
  const listed = await mapBounded(scanned, SCAN_BUCKETS, async (bucket) => {
    try {
      const r = await listPackages(s3Registry(ctx, bucket), { max: SCAN_POINTER_KEYS, signal });
      return { bucket, ...r };
    } catch (err) {
      problems.push(`${bucket}: ${toToolError(err).message}`);
      return { bucket, packages: [] as ListedPackage[], scanned: 0, truncated: false };
    }
  });
  const newest = (a: ListedPackage, b: ListedPackage) => (b.modified?.getTime() ?? 0) - (a.modified?.getTime() ?? 0);
  const packages: PackageSuggestion[] = listed.flatMap(({ bucket, packages: ps }) =>
    [...ps].sort(newest).map((p) => ({ bucket, name: p.name, quilt_uri: quiltPlusUri(bucket, p.name), matched: matchedWords(words, p.name) })),
  );
  const rankedPackages = rank(packages, words, limit);
  // Metadata keys from the headers of the best-matching (else newest) packages.
  const sample = (rankedPackages.length ? rankedPackages : packages).slice(0, SCAN_MANIFESTS);
  const keys = new Map<string, { type: string; values: Set<string> }>();
  await mapS3(sample, async (p) => {
    try {
      metaKeys(toPlain((await headerOf(ctx, p.bucket, p.name, signal))?.user_meta ?? null), keys);
    } catch (err) {
      problems.push(`${p.bucket}/${p.name}: ${toToolError(err).message}`);
    }
  });
  const metadata = [...keys.entries()]
    .sort(([a], [b]) => compareCodePoints(a, b))
    .map(([key, v]) => ({ key, type: v.type, values: v.values.size ? [...v.values] : undefined, matched: matchedWords(words, key, ...v.values) }));
  const s = { source: 's3_scan' as const, words, buckets: rank(bucketList, words, limit), packages: rankedPackages, metadata_keys: rank(metadata, words, limit, rankedPackages.length > 0) };
  const truncatedIn = listed.filter((l) => l.truncated).map((l) => l.bucket);
  const note = [
    `${why.replace(/\.$/, '')}, so these come from scanning S3: package names in ${scanned.length} of ${allowed.length} bucket(s) (${from})`,
    `and the metadata of ${sample.length} package(s).`,
    allowed.length > scanned.length ? `Buckets not scanned: ${allowed.length - scanned.length} (pass buckets to choose).` : '',
    truncatedIn.length ? `Stopped after ${SCAN_POINTER_KEYS} registry keys in ${truncatedIn.join(', ')}.` : '',
    problems.length ? `Could not read: ${problems.slice(0, 5).join('; ')}.` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return { ...s, queries: queriesFor(s, false, limit), note };
}

export async function suggest(
  ctx: RuntimeContext,
  req: { query: string; buckets: string[] | undefined; limit: number; signal: AbortSignal; noCatalog: ToolError | undefined },
): Promise<Suggestions> {
  const words = queryWords(req.query);
  if (!req.noCatalog) return fromCatalog(ctx, words, req.query, req.buckets, req.limit, req.signal);
  return fromS3(ctx, words, req.buckets, req.limit, req.signal, req.noCatalog.message);
}
