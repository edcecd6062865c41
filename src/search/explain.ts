/**
 * How search_catalog read a query: which backend ran (and why not the catalog), where it looked,
 * and what the query's syntax means to that backend. Built from what the call actually did, so it
 * cannot disagree with the results it accompanies.
 */
import { z } from 'zod';
import type { Scope } from './types.js';

export const interpretation = z.object({
  backend: z.enum(['catalog', 's3_fallback']),
  catalog: z.string().nullable().describe('Catalog URL searched, null when none was used'),
  fallback_reason: z.string().optional().describe('Why the catalog was not used'),
  kinds: z.array(z.enum(['packages', 'files'])).describe('What was searched (from scope)'),
  buckets: z.union([z.array(z.string()), z.literal('all')]),
  buckets_from: z.enum(['argument', 'token', 'cursor', 'catalog', 'listed']).describe('Where the bucket list came from (listed: the buckets S3 lists for these credentials)'),
  syntax: z.string().describe('How the query text is matched'),
  terms: z.array(z.string()),
  phrases: z.array(z.string()),
  fields: z.array(z.object({ field: z.string(), value: z.string() })),
  operators: z.array(z.string()),
  wildcards: z.boolean(),
  revisions: z.string().optional().describe('Which package revisions are matched'),
  notes: z.array(z.string()),
});
export type Interpretation = z.infer<typeof interpretation>;

interface Parsed {
  terms: string[];
  phrases: string[];
  fields: Array<{ field: string; value: string }>;
  operators: string[];
  wildcards: boolean;
}

/** A light reading of Elasticsearch query-string syntax: enough to say what a query asks for. */
export function parseQuery(query: string): Parsed {
  const out: Parsed = { terms: [], phrases: [], fields: [], operators: [], wildcards: false };
  const op = (o: string) => {
    if (!out.operators.includes(o)) out.operators.push(o);
  };
  const re = /(?:([\w.]+):)?("([^"]*)"?|\S+)/g;
  for (const m of query.matchAll(re)) {
    const [, field, token = '', quoted] = m;
    if (!field && /^(AND|OR|NOT|&&|\|\||!)$/.test(token)) {
      op(token === '&&' ? 'AND' : token === '||' ? 'OR' : token === '!' ? 'NOT' : token);
      continue;
    }
    let value = quoted ?? token;
    if (quoted === undefined) {
      if (/^[+-]/.test(value)) {
        op(value[0] === '+' ? '+ (must)' : '- (must not)');
        value = value.slice(1);
      }
      value = value.replace(/^\(+|\)+$/g, '');
      if (/[*?]/.test(value)) out.wildcards = true;
    }
    if (!value) continue;
    if (field) out.fields.push({ field, value });
    else if (quoted !== undefined) out.phrases.push(value);
    else out.terms.push(value);
  }
  return out;
}

export function interpret(req: {
  query: string;
  scope: Scope;
  backend: 'catalog' | 's3_fallback';
  catalogUrl: string | undefined;
  fallbackReason: string | undefined;
  buckets: string[] | 'all';
  bucketsFrom: Interpretation['buckets_from'];
  withheld: number;
}): Interpretation {
  const parsed = parseQuery(req.query);
  const kinds: Interpretation['kinds'] = req.scope === 'package' ? ['packages'] : req.scope === 'file' ? ['files'] : ['packages', 'files'];
  const notes: string[] = [];
  let syntax: string;
  if (req.backend === 'catalog') {
    syntax =
      'Elasticsearch query-string syntax, run by the catalog: words match package names, messages and metadata, and file keys ' +
      '(and indexed contents); AND/OR/NOT, "phrases", field:value and * ? wildcards apply.';
    if (req.buckets === 'all') notes.push('No bucket filter: the catalog searched every bucket it shows you.');
  } else {
    syntax =
      'S3 scan without a catalog: words must appear (case-insensitive) in an object key or package name, "phrases" as adjacent words; ' +
      'AND, OR, NOT, -word and parentheses apply; leading/trailing * are dropped; contents, metadata and messages are not searched; no ranking.';
  }
  if (req.withheld) notes.push(`${req.withheld} result(s) from buckets outside this token's buckets were withheld.`);
  return {
    backend: req.backend,
    catalog: req.backend === 'catalog' ? (req.catalogUrl ?? null) : null,
    ...(req.fallbackReason ? { fallback_reason: req.fallbackReason } : {}),
    kinds,
    buckets: req.buckets,
    buckets_from: req.bucketsFrom,
    syntax,
    ...parsed,
    ...(kinds.includes('packages') ? { revisions: req.backend === 'catalog' ? 'Every revision of a package (not only latest).' : 'Package names only (their latest revision is shown).' } : {}),
    notes,
  };
}
