/**
 * The test catalog's GraphQL: every incoming document is parsed and validated against the real
 * catalog schema (test/fixtures/quilt-catalog-schema.graphql) and executed by graphql-js against
 * fixtures, so answers have exactly the schema's shape, union members included.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSchema, execute, parse, validate, type GraphQLSchema } from 'graphql';
import type { GraphqlHandler } from './catalog.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../fixtures/quilt-catalog-schema.graphql', import.meta.url));
let schema: GraphQLSchema | undefined;
export function catalogSchema(): GraphQLSchema {
  return (schema ??= buildSchema(readFileSync(SCHEMA_FILE, 'utf8')));
}

export interface PackageFixture {
  bucket: string;
  name: string;
  hash: string;
  comment: string;
  size: number;
  entries: number;
  modified: string;
}
export interface ObjectFixture {
  bucket: string;
  key: string;
  version: string;
  size: number;
  modified: string;
}

const hex = (n: number) => n.toString(16).padStart(8, '0').repeat(8);

/** 30 "cells" packages and 12 others across two buckets; 40 "cells" files and 10 others. */
export function defaultFixtures(): { packages: PackageFixture[]; objects: ObjectFixture[] } {
  const packages: PackageFixture[] = [];
  for (let i = 0; i < 42; i++) {
    const cells = i < 30;
    packages.push({
      bucket: i % 2 ? 'quilt-demo' : 'quilt-sandbox',
      name: cells ? `lab/cells-${String(i).padStart(3, '0')}` : `lab/other-${i}`,
      hash: hex(i + 1),
      comment: cells ? `cell images batch ${i}` : `misc ${i}`,
      size: 1000 + i,
      entries: 3 + i,
      modified: new Date(Date.UTC(2026, 0, 1 + i)).toISOString(),
    });
  }
  const objects: ObjectFixture[] = [];
  for (let i = 0; i < 50; i++) {
    objects.push({
      bucket: i % 2 ? 'quilt-demo' : 'quilt-sandbox',
      key: i < 40 ? `images/cells/img-${String(i).padStart(3, '0')}.png` : `docs/readme-${i}.md`,
      version: `v${i}`,
      size: 2000 + i,
      modified: new Date(Date.UTC(2026, 1, 1 + (i % 28))).toISOString(),
    });
  }
  return { packages, objects };
}

export interface GraphqlCall {
  operation: string | undefined;
  variables: Record<string, unknown>;
  user: string | undefined;
}

interface PageCursor {
  kind: 'p' | 'o';
  q: string;
  b: string[] | null;
  offset: number;
}

export function graphqlHandler(fixtures = defaultFixtures()): GraphqlHandler & { calls: GraphqlCall[] } {
  const calls: GraphqlCall[] = [];
  const matches = (text: string, q: string) =>
    q
      .toLowerCase()
      .split(/\s+/)
      .filter((w) => w && w !== '*')
      .every((w) => text.toLowerCase().includes(w));
  const inBuckets = (b: string, buckets: string[] | null | undefined) => !buckets || buckets.includes(b);

  const packageHit = (p: PackageFixture, i: number) => ({
    id: `${p.bucket}/${p.name}/${p.hash}`,
    score: 100 - i,
    bucket: p.bucket,
    name: p.name,
    pointer: 'latest',
    hash: p.hash,
    size: p.size,
    modified: p.modified,
    totalEntriesCount: p.entries,
    comment: p.comment,
    meta: null,
    workflow: null,
    matchLocations: { name: true, comment: false, meta: false, workflow: false },
    matchingEntries: [],
  });
  const objectHit = (o: ObjectFixture, i: number) => ({
    id: `${o.bucket}/${o.key}`,
    score: 50 - i / 10,
    bucket: o.bucket,
    key: o.key,
    version: o.version,
    size: o.size,
    modified: o.modified,
    deleted: false,
    indexedContent: null,
  });

  const page = (c: PageCursor, size: number) => {
    const all =
      c.kind === 'p'
        ? fixtures.packages.filter((p) => inBuckets(p.bucket, c.b) && matches(`${p.name} ${p.comment}`, c.q)).map(packageHit)
        : fixtures.objects.filter((o) => inBuckets(o.bucket, c.b) && matches(o.key, c.q)).map(objectHit);
    const hits = all.slice(c.offset, c.offset + size);
    const next = c.offset + size < all.length ? Buffer.from(JSON.stringify({ ...c, offset: c.offset + size })).toString('base64') : null;
    return { hits, cursor: next, total: all.length };
  };

  /** Special queries play the catalog's failure modes. */
  const failure = (q: string) => {
    if (q.includes('invalid:(')) {
      return { __typename: 'InvalidInput', errors: [{ path: 'searchString', message: 'Cannot parse query: unbalanced parenthesis', name: 'QuerySyntaxError', context: null }] };
    }
    if (q.includes('explode')) return { __typename: 'OperationError', message: 'Search backend timed out', name: 'Timeout', context: null };
    return undefined;
  };

  const resultSet = (kind: 'p' | 'o', q: string, buckets: string[] | null) => {
    const f = failure(q);
    if (f) return f;
    const first = page({ kind, q, b: buckets, offset: 0 }, 0);
    if (first.total === 0) return { __typename: 'EmptySearchResultSet', _: null };
    const typename = kind === 'p' ? 'PackagesSearchResultSet' : 'ObjectsSearchResultSet';
    const firstPage = ({ size = 30 }: { size?: number }) => {
      const pg = page({ kind, q, b: buckets, offset: 0 }, size);
      return { __typename: kind === 'p' ? 'PackagesSearchResultSetPage' : 'ObjectsSearchResultSetPage', hits: pg.hits, cursor: pg.cursor };
    };
    return { __typename: typename, total: first.total, stats: null, firstPage };
  };

  const more = (kind: 'p' | 'o') => ({ after, size = 30 }: { after: string; size?: number }) => {
    let c: PageCursor;
    try {
      c = JSON.parse(Buffer.from(after, 'base64').toString()) as PageCursor;
    } catch {
      return { __typename: 'InvalidInput', errors: [{ path: 'after', message: 'Invalid cursor', name: 'InvalidCursor', context: null }] };
    }
    const pg = page({ ...c, kind }, size);
    return { __typename: kind === 'p' ? 'PackagesSearchResultSetPage' : 'ObjectsSearchResultSetPage', hits: pg.hits, cursor: pg.cursor };
  };

  const handler = async (body: { query: string; variables?: Record<string, unknown>; operationName?: string }, user: string | undefined) => {
    const document = parse(body.query);
    const errors = validate(catalogSchema(), document);
    if (errors.length) throw new Error(errors.map((e) => e.message).join('; '));
    const op = document.definitions.find((d) => d.kind === 'OperationDefinition');
    calls.push({ operation: op && 'name' in op ? op.name?.value : undefined, variables: body.variables ?? {}, user });
    const rootValue = {
      me: user ? { name: user, email: `${user}@example.com`, isAdmin: false, role: { name: 'ReadWriteQuiltBucket' }, roles: [] } : null,
      bucketConfigs: [
        { name: 'quilt-sandbox', title: 'Sandbox', description: 'Scratch data for experiments', relevanceScore: 1, browsable: true, lastIndexed: null, tabulatorTables: [] },
        { name: 'quilt-demo', title: 'Demo data', description: null, relevanceScore: 2, browsable: true, lastIndexed: null, tabulatorTables: [] },
      ],
      searchPackages: ({ buckets, searchString }: { buckets?: string[] | null; searchString?: string | null }) => resultSet('p', searchString ?? '', buckets ?? null),
      searchObjects: ({ buckets, searchString }: { buckets?: string[] | null; searchString?: string | null }) => resultSet('o', searchString ?? '', buckets ?? null),
      searchMorePackages: more('p'),
      searchMoreObjects: more('o'),
    };
    return execute({ schema: catalogSchema(), document, rootValue, variableValues: body.variables ?? {} });
  };
  return Object.assign(handler, { calls });
}
