import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { parseSearchCursor, searchCatalog } from '../search/catalog.js';
import { interpret, interpretation } from '../search/explain.js';
import { searchS3 } from '../search/s3.js';
import { searchHit, type SearchHit } from '../search/types.js';
import { defineTool } from './define.js';

function render(h: SearchHit): string {
  const when = h.modified ? ` ${h.modified.slice(0, 10)}` : '';
  if (h.type === 'package') {
    return `package ${h.name} in ${h.bucket}${h.hash ? ` @${h.hash.slice(0, 10)}` : ''}${when}${h.comment ? ` "${h.comment}"` : ''}\n    ${h.catalog_url ?? h.quilt_uri ?? ''}`;
  }
  return `file ${h.s3_uri}${h.size !== undefined ? ` (${h.size} B)` : ''}${when}${h.catalog_url ? `\n    ${h.catalog_url}` : ''}`;
}

function mayList(ctx: RuntimeContext, bucket: string): boolean {
  try {
    ctx.authorize(bucket, 'list');
    return true;
  } catch {
    return false;
  }
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

export const searchCatalogTool = defineTool({
  name: 'search_catalog',
  title: 'Search Quilt',
  description:
    'Search the Quilt catalog for packages and files by words in names, keys, metadata, messages and (where indexed) contents. ' +
    'scope: "package", "file" or "global" (both). Pass next_cursor back as cursor for more. Without a configured catalog it ' +
    'falls back to scanning S3 object keys and package names in the given buckets, and says so.',
  toolset: 'search',
  kind: 'read',
  input: {
    query: z.string().min(1).max(1000).describe('Words to find; the catalog accepts Elasticsearch query-string syntax'),
    scope: z.enum(['global', 'package', 'file']).default('global').describe('What to search'),
    buckets: z.array(z.string()).max(100).optional().describe('Only these buckets (default: all you can see)'),
    limit: z.number().int().min(1).max(100).default(20).describe('Results per page (1-100)'),
    cursor: z.string().optional().describe('next_cursor from the previous page'),
  },
  output: {
    query: z.string(),
    scope: z.enum(['global', 'package', 'file']),
    source: z.enum(['catalog', 's3_fallback']),
    results: z.array(searchHit),
    total: z.object({ packages: z.number().optional(), files: z.number().optional() }),
    next_cursor: z.string().optional(),
    searched: z.object({ buckets: z.union([z.array(z.string()), z.literal('all')]), as: z.string() }),
    note: z.string().optional(),
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

    const bucketsFrom = prev ? 'cursor' : requested ? 'argument' : ctx.allowedBuckets ? 'token' : 'catalog';

    let page;
    let source: 'catalog' | 's3_fallback';
    let fallbackReason: string | undefined;
    if (ctx.catalog.auth === 'none') {
      // No catalog for this caller (none configured, or a token without catalog_token): scan S3
      // where we know which buckets, and say why in the result.
      const why = catalogUnavailable(ctx);
      fallbackReason = why.message;
      if (!buckets?.length) {
        throw new ToolError(
          'invalid_input',
          `${why.message} Without it, search has to scan S3 directly, and it needs to know which buckets.`,
          `Pass buckets: ["my-bucket"] (bucket_list shows them). ${why.hint ?? ''}`.trim(),
        );
      }
      source = 's3_fallback';
      page = await searchS3(ctx, {
        query: args.query,
        scope: args.scope,
        buckets,
        limit: args.limit,
        signal: extras.signal,
        why: why.message,
        fix: why.hint ?? '',
      });
    } else {
      source = 'catalog';
      const client = ctx.catalog.client();
      page = await searchCatalog(client, ctx.catalog.url, {
        query: args.query,
        scope: args.scope,
        buckets: buckets ?? null,
        limit: args.limit,
        prev,
        fallbackIdentity: client.auth.kind === 'anonymous' ? 'anonymous' : ctx.principal.id,
        signal: extras.signal,
      });
    }
    // Whatever the catalog answers, nothing outside the caller's buckets is shown.
    const shown = page.hits.filter((h) => mayList(ctx, h.bucket));
    const withheld = page.hits.length - shown.length;
    if (withheld) ctx.logger.warning('search hits outside the caller\'s buckets withheld', { withheld, user: ctx.principal.id });
    const next_cursor = page.next ? ctx.cursors.seal('search', { ...page.next }) : undefined;
    const searchedBuckets = buckets ?? ('all' as const);
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
    const text = [
      `${shown.length} result(s) for "${args.query}" (${source === 'catalog' ? 'catalog' : 'S3 scan, no catalog'}${counts ? `; total ${counts}` : ''}) in ${where}, as ${page.as}:`,
      ...shown.map(render),
      ...(next_cursor ? [`More: call again with cursor="${next_cursor}".`] : []),
      ...(note ? [note] : []),
      // What the structured interpretation adds that the note does not already say.
      ...data.interpretation.notes.filter((n) => !note?.includes(n) && !n.startsWith('No bucket filter')),
    ].join('\n');
    return { data, text };
  },
});
