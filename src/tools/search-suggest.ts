import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import { ToolError } from '../core/errors.js';
import { suggest } from '../search/suggest.js';
import { defineTool } from './define.js';

const matched = z.array(z.string()).describe('Words of the query this matches');

export const searchSuggest = defineTool({
  name: 'search_suggest',
  title: 'Suggest search refinements',
  description:
    'Suggest search_catalog queries from what exists: buckets, packages and metadata keys (with values) matching a partial query (empty: all).',
  toolset: 'search',
  kind: 'read',
  input: {
    query: z.string().max(1000).default('').describe('The query so far'),
    buckets: z.array(z.string()).max(100).optional().describe('Only these buckets (default: those you can see)'),
    limit: z.number().int().min(1).max(50).default(10).describe('Suggestions per kind'),
  },
  output: {
    query: z.string(),
    source: z.enum(['catalog', 's3_scan']),
    words: z.array(z.string()).describe('The plain words suggestions were matched against'),
    buckets: z.array(z.object({ name: z.string(), title: z.string().optional(), matched })),
    packages: z.array(z.object({ bucket: z.string(), name: z.string(), quilt_uri: z.string(), matched })),
    metadata_keys: z.array(
      z.object({
        key: z.string().describe('Metadata key ("a.b" for nested)'),
        type: z.string(),
        values: z.array(z.string()).optional().describe('Some values it has'),
        range: z.object({ min: z.number(), max: z.number() }).optional(),
        matched,
      }),
    ),
    queries: z.array(
      z.object({
        query: z.string(),
        scope: z.enum(['global', 'package', 'file']),
        buckets: z.array(z.string()).optional(),
        why: z.string(),
      }),
    ),
    note: z.string(),
  },
  async handler(args, ctx, extras) {
    const buckets = args.buckets?.map(parseBucket);
    // JWT: never beyond the token's buckets.
    for (const b of buckets ?? []) ctx.authorize(b, 'list');
    let noCatalog: ToolError | undefined;
    if (ctx.catalog.auth === 'none') {
      try {
        ctx.catalog.client();
        noCatalog = new ToolError('no_catalog', 'No Quilt catalog is available.');
      } catch (err) {
        noCatalog = err instanceof ToolError ? err : new ToolError('no_catalog', 'No Quilt catalog is available.');
      }
    }
    const s = await suggest(ctx, { query: args.query, buckets, limit: args.limit, signal: extras.signal, noCatalog });
    const data = { query: args.query, ...s };
    const lines = [
      `Suggestions for "${args.query}" (${s.source === 'catalog' ? 'from the catalog' : 'from an S3 scan'}):`,
      ...(s.buckets.length ? [`Buckets: ${s.buckets.map((b) => b.name).join(', ')}`] : []),
      ...(s.packages.length ? [`Packages: ${s.packages.map((p) => `${p.name} (${p.bucket})`).join(', ')}`] : []),
      ...(s.metadata_keys.length
        ? [`Metadata keys: ${s.metadata_keys.map((k) => `${k.key} [${k.type}]${k.values?.length ? ` e.g. ${k.values.slice(0, 3).map((v) => JSON.stringify(v)).join(', ')}` : ''}`).join('; ')}`]
        : []),
      ...(s.queries.length ? ['Queries:', ...s.queries.map((q) => `  search_catalog(query=${JSON.stringify(q.query)}, scope="${q.scope}"${q.buckets ? `, buckets=${JSON.stringify(q.buckets)}` : ''}): ${q.why}`)] : []),
      ...(!s.buckets.length && !s.packages.length && !s.metadata_keys.length ? ['Nothing that exists matches these words.'] : []),
      s.note,
    ];
    return { data, text: lines.join('\n') };
  },
});
