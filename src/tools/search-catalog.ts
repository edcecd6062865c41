import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import { mayList, type RuntimeContext } from '../context.js';
import { ToolError, toToolError } from '../core/errors.js';
import { parseSearchCursor, searchCatalog } from '../search/catalog.js';
import { bucketsToScan, visibleBuckets } from '../search/buckets.js';
import { interpret, interpretation, type Interpretation } from '../search/explain.js';
import { searchS3 } from '../search/s3.js';
import { queryWords } from '../search/suggest.js';
import { searchHit, type SearchHit } from '../search/types.js';
import { cursorArg, lines, moreLine } from './args.js';
import { defineTool } from './define.js';

function render(h: SearchHit): string {
  const when = h.modified ? ` ${h.modified}` : '';
  if (h.type === 'package') {
    const what = h.entries !== undefined ? ` (${h.entries} files${h.size !== undefined ? `, ${h.size} B` : ''})` : '';
    return `package ${h.name} in ${h.bucket}${h.hash ? ` @${h.hash}` : ''}${when}${what}${h.comment ? ` ${JSON.stringify(h.comment)}` : ''}${h.catalog_url ? `\n    ${h.catalog_url}` : ''}`;
  }
  return `file ${h.s3_uri}${h.size !== undefined ? ` (${h.size} B)` : ''}${when}${h.catalog_url ? `\n    ${h.catalog_url}` : ''}`;
}

/** Why this caller has no catalog client, as the ToolError its client() throws. */
function catalogUnavailable(ctx: RuntimeContext): ToolError {
  try {
    ctx.catalog.client();
  } catch (err) {
    if (err instanceof ToolError) return err;
  }
  return new ToolError('no_catalog', 'The Quilt catalog is not available.');
}

/** Catalog failures after which an S3 scan can still answer: the catalog is down, not the query wrong. */
const CATALOG_DOWN = new Set(['unreachable', 'timeout', 'upstream_error', 'throttled']);

export const searchCatalogTool = defineTool({
  name: 'search_catalog',
  title: 'Search Quilt',
  description:
    'Search packages and files by words in names, keys, metadata, messages and contents; without a catalog, an S3 scan of keys and package names (it says so).',
  toolset: 'search',
  kind: 'read',
  input: {
    query: z.string().min(1).max(1000).describe('Words, "phrases", AND/OR/NOT, -word (field:value and wildcards: catalog only)'),
    scope: z.enum(['global', 'package', 'file']).default('global').describe('global: both'),
    buckets: z.array(z.string()).max(100).optional().describe('Only these buckets (default: those you can see)'),
    limit: z.number().int().min(1).max(100).default(20).describe('Results per page'),
    cursor: cursorArg,
  },
  output: {
    query: z.string(),
    scope: z.enum(['global', 'package', 'file']),
    source: z.enum(['catalog', 's3_fallback']),
    results: z.array(searchHit),
    total: z.object({ packages: z.number().optional(), files: z.number().optional() }),
    next_cursor: z.string().optional(),
    searched: z.object({ buckets: z.union([z.array(z.string()), z.literal('all')]), as: z.string() }),
    note: z.string().optional().describe('What the search did and did not cover'),
    interpretation: interpretation.describe('How the query was read: backend (and why no catalog), buckets and where they came from, syntax, terms, filters'),
  },
  async handler(args, ctx, extras) {
    const requested = args.buckets?.map(parseBucket);
    // JWT: a search never reaches beyond the token's buckets.
    for (const b of requested ?? []) ctx.authorize(b, 'list');
    const prev = args.cursor ? parseSearchCursor(ctx.cursors.open('search', args.cursor), args.query, args.scope) : undefined;
    // A cursor is sealed for this caller; its buckets are checked again all the same (defence in depth).
    if (prev) {
      if (prev.b === null && ctx.allowedBuckets) throw new ToolError('invalid_input', 'The cursor was refused: it searches beyond this token\'s buckets.');
      for (const b of prev.b ?? []) ctx.authorize(b, 'list');
    }
    const buckets = prev ? (prev.b ?? undefined) : (requested ?? (ctx.allowedBuckets ? [...ctx.allowedBuckets] : undefined));
    let bucketsFrom: Interpretation['buckets_from'] = prev ? 'cursor' : requested ? 'argument' : ctx.allowedBuckets ? 'token' : 'catalog';

    let page;
    let source: 'catalog' | 's3_fallback';
    let fallbackReason: string | undefined;
    let searchedBuckets: string[] | 'all' = buckets ?? 'all';
    const scan = async (why: string, fix: string) => {
      // Without a catalog, the buckets default to what the caller can see, bounded and said.
      const visible = await visibleBuckets(ctx, buckets, `${why.replace(/\.$/, '')}, so search scans S3,`);
      const mine = visible.buckets.filter((b) => mayList(ctx, b));
      // Buckets named by the caller are all scanned; a list the server made up is bounded.
      const { scanned, skipped } = buckets ? { scanned: mine, skipped: 0 } : bucketsToScan(mine, queryWords(args.query));
      if (!buckets) bucketsFrom = ctx.allowedBuckets ? 'token' : 'listed';
      searchedBuckets = scanned;
      const chosen = skipped ? `It searched ${scanned.length} of the ${scanned.length + skipped} buckets of ${visible.from} (those the words name first): pass buckets to choose.` : '';
      const p = await searchS3(ctx, { query: args.query, scope: args.scope, buckets: scanned, limit: args.limit, signal: extras.signal, why, fix });
      return { ...p, note: [p.note, chosen].filter(Boolean).join(' ') };
    };
    if (ctx.catalog.auth === 'none') {
      // No catalog for this caller (none configured, or a token without catalog_token): scan S3
      // where the caller can look, and say why in the result.
      const why = catalogUnavailable(ctx);
      fallbackReason = why.message;
      source = 's3_fallback';
      page = await scan(why.message, why.hint ?? '');
    } else {
      source = 'catalog';
      const client = ctx.catalog.client();
      try {
        page = await searchCatalog(client, ctx.catalog.url, {
          query: args.query,
          scope: args.scope,
          buckets: buckets ?? null,
          limit: args.limit,
          prev,
          fallbackIdentity: client.auth.kind === 'anonymous' ? 'anonymous' : ctx.principal.id,
          signal: extras.signal,
        });
      } catch (err) {
        // The catalog is down (not the query wrong): an S3 scan still answers, labelled as one. A
        // later page of a catalog search has no S3 equivalent, so that still fails.
        if (prev || !(err instanceof ToolError) || !CATALOG_DOWN.has(err.code) || extras.signal.aborted) throw err;
        fallbackReason = `The Quilt catalog ${ctx.catalog.url ?? ''} did not answer (${err.message.replace(/\.$/, '')}).`.replace('  ', ' ');
        source = 's3_fallback';
        ctx.logger.info('search_catalog: catalog down, scanning S3 instead', { error: err.message });
        try {
          page = await scan(fallbackReason, '');
        } catch (scanErr) {
          throw new ToolError(err.code, `${err.message} The S3 scan that stands in for it failed too: ${toToolError(scanErr).message}`, err.hint);
        }
      }
    }
    // Whatever the catalog answers, nothing outside the caller's buckets is shown.
    const shown = page.hits.filter((h) => mayList(ctx, h.bucket));
    const withheld = page.hits.length - shown.length;
    if (withheld) ctx.logger.warning('search hits outside the caller\'s buckets withheld', { withheld, user: ctx.principal.id });
    const next_cursor = page.next ? ctx.cursors.seal('search', { ...page.next }) : undefined;
    const where = Array.isArray(searchedBuckets) ? searchedBuckets.join(', ') : 'all buckets you can see';
    const note =
      [
        page.note ??
          (page.hits.length === 0 && !args.cursor ? `No results for "${args.query}" in ${where}, searching as ${page.as}.` : undefined),
        withheld ? `${withheld} result(s) from buckets outside this token's buckets were withheld.` : undefined,
      ]
        .filter(Boolean)
        .join(' ') || undefined;
    const data = {
      query: args.query,
      scope: args.scope,
      source,
      results: shown,
      total: page.total,
      next_cursor,
      searched: { buckets: searchedBuckets, as: page.as },
      note,
      interpretation: interpret({
        query: args.query,
        scope: args.scope,
        backend: source,
        catalogUrl: ctx.catalog.url,
        fallbackReason,
        buckets: searchedBuckets,
        bucketsFrom,
        withheld,
      }),
    };
    const counts = Object.entries(page.total)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    const text = lines(
      `${shown.length} result(s) for "${args.query}" (${source === 'catalog' ? 'catalog' : 'S3 scan, no catalog'}${counts ? `; total ${counts}` : ''}) in ${where}, as ${page.as}:`,
      shown.map(render),
      note,
      moreLine('results', 'cursor', next_cursor),
      // What the structured interpretation adds that the note does not already say.
      data.interpretation.notes.filter((n) => !note?.includes(n) && !n.startsWith('No bucket filter')),
    );
    return { data, text };
  },
});
