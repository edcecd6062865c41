/**
 * Search through the catalog's GraphQL API. Every member of every result union is handled:
 * InvalidInput and OperationError become errors with the catalog's own message, and only
 * EmptySearchResultSet means "no results". A failure never turns into an empty list.
 */
import type { CatalogClient } from '../catalog/client.js';
import {
  SEARCH_MORE_OBJECTS,
  SEARCH_MORE_PACKAGES,
  SEARCH_OBJECTS,
  SEARCH_PACKAGES,
  type ErrorArms,
  type Me,
  type ObjectHit,
  type PackageHit,
  type SearchMoreObjectsData,
  type SearchMorePackagesData,
  type SearchObjectsData,
  type SearchPackagesData,
} from '../catalog/documents.js';
import { objectCatalogUrl, packageCatalogUrl, quiltPlusUri } from '../catalog/urls.js';
import { ToolError } from '../core/errors.js';
import type { Scope, SearchCursor, SearchHit, SearchPage } from './types.js';

const nullableString = (x: unknown) => x === null || typeof x === 'string';

/** A sealed cursor's content, checked to be a search cursor for this query and scope. */
export function parseSearchCursor(c: Record<string, unknown>, query: string, scope: Scope): SearchCursor {
  const ok =
    c.v === 1 &&
    typeof c.q === 'string' &&
    typeof c.s === 'string' &&
    (c.b === null || (Array.isArray(c.b) && c.b.every((x) => typeof x === 'string'))) &&
    nullableString(c.p) &&
    nullableString(c.o);
  if (!ok) throw new ToolError('invalid_input', 'The cursor is not one this tool returned.', 'Pass next_cursor from the previous result unchanged.');
  if (c.q !== query || c.s !== scope) {
    throw new ToolError('invalid_input', 'The cursor belongs to another search (different query or scope).', 'Repeat the same query and scope with the cursor, or start again without it.');
  }
  return c as unknown as SearchCursor;
}

function fail(arm: ErrorArms, what: string): never {
  if (arm.__typename === 'InvalidInput') {
    const detail = arm.errors.map((e) => `${e.path ? `${e.path}: ` : ''}${e.message}`).join('; ');
    throw new ToolError('invalid_input', `The catalog rejected the ${what}: ${detail}`, 'Rephrase the query (Elasticsearch query-string syntax) and try again.');
  }
  throw new ToolError('catalog_error', `The catalog's ${what} failed: ${arm.message}`, 'This is a problem on the catalog side; retry in a moment.');
}

function isErrorArm(x: { __typename?: string }): x is ErrorArms {
  return x.__typename === 'InvalidInput' || x.__typename === 'OperationError';
}

function packageHit(catalog: string | undefined, h: PackageHit): SearchHit {
  return {
    type: 'package',
    bucket: h.bucket,
    name: h.name,
    hash: h.hash,
    size: h.size,
    modified: h.modified,
    score: h.score,
    comment: h.comment ?? undefined,
    entries: h.totalEntriesCount,
    quilt_uri: quiltPlusUri(h.bucket, h.name, { hash: h.hash }),
    catalog_url: catalog ? packageCatalogUrl(catalog, h.bucket, h.name, h.hash) : undefined,
  };
}

function objectHit(catalog: string | undefined, h: ObjectHit): SearchHit {
  const version = h.version && h.version !== 'null' ? h.version : undefined;
  return {
    type: 'file',
    bucket: h.bucket,
    key: h.key,
    version_id: version,
    size: h.size,
    modified: h.modified,
    score: h.score,
    s3_uri: `s3://${h.bucket}/${h.key}${version ? `?versionId=${encodeURIComponent(version)}` : ''}`,
    catalog_url: catalog ? objectCatalogUrl(catalog, h.bucket, h.key, version) : undefined,
  };
}

interface KindPage {
  hits: SearchHit[];
  total: number | undefined;
  cursor: string | null;
  me: Me | null | undefined;
}

async function packages(client: CatalogClient, link: string | undefined, buckets: string[] | null, query: string, size: number, after: string | undefined, signal: AbortSignal): Promise<KindPage> {
  if (after) {
    const data = await client.graphql<SearchMorePackagesData>(SEARCH_MORE_PACKAGES, { after, size }, signal);
    const page = data.searchMorePackages;
    if (isErrorArm(page)) fail(page, 'package search');
    return { hits: page.hits.map((h) => packageHit(link, h)), total: undefined, cursor: page.cursor, me: undefined };
  }
  const data = await client.graphql<SearchPackagesData>(
    SEARCH_PACKAGES,
    { buckets, searchString: query, size, latestOnly: false },
    signal,
  );
  const r = data.searchPackages;
  if (r.__typename === 'EmptySearchResultSet') return { hits: [], total: 0, cursor: null, me: data.me };
  if (isErrorArm(r)) fail(r, 'package search');
  if (isErrorArm(r.firstPage)) fail(r.firstPage, 'package search');
  const page = r.firstPage;
  return { hits: page.hits.map((h) => packageHit(link, h)), total: r.total, cursor: page.cursor, me: data.me };
}

async function objects(client: CatalogClient, link: string | undefined, buckets: string[] | null, query: string, size: number, after: string | undefined, signal: AbortSignal): Promise<KindPage> {
  if (after) {
    const data = await client.graphql<SearchMoreObjectsData>(SEARCH_MORE_OBJECTS, { after, size }, signal);
    const page = data.searchMoreObjects;
    if (isErrorArm(page)) fail(page, 'file search');
    return { hits: page.hits.map((h) => objectHit(link, h)), total: undefined, cursor: page.cursor, me: undefined };
  }
  const data = await client.graphql<SearchObjectsData>(SEARCH_OBJECTS, { buckets, searchString: query, size }, signal);
  const r = data.searchObjects;
  if (r.__typename === 'EmptySearchResultSet') return { hits: [], total: 0, cursor: null, me: data.me };
  if (isErrorArm(r)) fail(r, 'file search');
  return { hits: r.firstPage.hits.map((h) => objectHit(link, h)), total: r.total, cursor: r.firstPage.cursor, me: data.me };
}

export interface CatalogSearchRequest {
  query: string;
  scope: Scope;
  buckets: string[] | null;
  limit: number;
  /** Where the previous page stopped (its buckets replace `buckets`). */
  prev: SearchCursor | undefined;
  /** Who is searching, when the catalog does not say (anonymous, or a page after the first). */
  fallbackIdentity: string;
  signal: AbortSignal;
}

export async function searchCatalog(client: CatalogClient, link: string | undefined, req: CatalogSearchRequest): Promise<SearchPage> {
  const { prev } = req;
  const buckets = prev ? prev.b : req.buckets;
  const wantPackages = req.scope !== 'file' && (!prev || prev.p !== null);
  const wantObjects = req.scope !== 'package' && (!prev || prev.o !== null);
  // Global search splits the page between the two kinds; a kind already exhausted gives its share away.
  const share = wantPackages && wantObjects ? Math.ceil(req.limit / 2) : req.limit;
  const [p, o] = await Promise.all([
    wantPackages ? packages(client, link, buckets, req.query, share, prev?.p ?? undefined, req.signal) : undefined,
    wantObjects ? objects(client, link, buckets, req.query, share, prev?.o ?? undefined, req.signal) : undefined,
  ]);
  const me = p?.me ?? o?.me;
  const next: SearchCursor = { v: 1, q: req.query, s: req.scope, b: buckets, p: p ? p.cursor : null, o: o ? o.cursor : null };
  const hits = [...(p?.hits ?? []), ...(o?.hits ?? [])].sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
  return {
    hits,
    total: {
      ...(p?.total !== undefined ? { packages: p.total } : {}),
      ...(o?.total !== undefined ? { files: o.total } : {}),
    },
    next: next.p || next.o ? next : undefined,
    as: me ? `${me.name} <${me.email}>` : req.fallbackIdentity,
    note: undefined,
  };
}
