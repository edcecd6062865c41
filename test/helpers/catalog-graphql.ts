/**
 * The test catalog's GraphQL: every incoming document is parsed and validated against the real
 * catalog schema (test/fixtures/quilt-catalog-schema.graphql) and executed by graphql-js against
 * fixtures, so answers have exactly the schema's shape, union members included.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSchema, execute, GraphQLError, parse, validate, type GraphQLSchema } from 'graphql';
import { parse as parseYaml } from 'yaml';
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
  /** user_meta: searchable, and the source of the search's metadata facets. */
  meta?: Record<string, unknown>;
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

export interface TabulatorTableFixture {
  name: string;
  config: string;
}

/** A valid tabulator config (the shape of the Quilt docs' example). */
export const TABULATOR_CONFIG = `schema:
  - name: gene
    type: STRING
  - name: tpm
    type: DOUBLE
source:
  type: quilt-packages
  package_name: "^lab/(?<study>[^/]+)$"
  logical_key: 'quant/(?<sample_id>[^/]+)\\.csv$'
parser:
  format: csv
  header: true
`;

const TABULATOR_TYPES = new Set(['BOOLEAN', 'TINYINT', 'SMALLINT', 'INT', 'BIGINT', 'FLOAT', 'DOUBLE', 'STRING', 'BINARY', 'DATE', 'TIMESTAMP']);

/** What the registry checks in a tabulator config (Quilt docs: schema, source, parser); a list of problems. */
export function tabulatorConfigProblems(text: string): string[] {
  let c: { schema?: unknown; source?: Record<string, unknown>; parser?: Record<string, unknown> };
  try {
    c = (parseYaml(text) ?? {}) as typeof c;
  } catch (err) {
    return [`Invalid YAML: ${(err as Error).message.split('\n')[0]}`];
  }
  const problems: string[] = [];
  if (!Array.isArray(c.schema) || c.schema.length === 0) problems.push('schema: a non-empty list of columns is required');
  else {
    for (const [i, col] of (c.schema as Array<{ name?: unknown; type?: unknown }>).entries()) {
      if (typeof col?.name !== 'string' || !/^[a-z_][a-z0-9_]*$/.test(col.name)) problems.push(`schema[${i}].name: must match ^[a-z_][a-z0-9_]*$`);
      if (typeof col?.type !== 'string' || !TABULATOR_TYPES.has(col.type)) problems.push(`schema[${i}].type: must be one of ${[...TABULATOR_TYPES].join(', ')}`);
    }
  }
  if (c.source?.type !== 'quilt-packages') problems.push('source.type: must be quilt-packages');
  for (const k of ['package_name', 'logical_key'] as const) {
    const re = c.source?.[k];
    if (typeof re !== 'string') problems.push(`source.${k}: a regular expression is required`);
    else {
      try {
        new RegExp(re);
      } catch {
        problems.push(`source.${k}: not a valid regular expression`);
      }
    }
  }
  if (!['csv', 'parquet'].includes(String(c.parser?.format))) problems.push('parser.format: must be csv or parquet');
  return problems;
}

export interface TabulatorState {
  /** Tables per bucket (buckets as in bucketConfigs). */
  tables: Map<string, TabulatorTableFixture[]>;
  openQuery: boolean;
  /** Users the catalog treats as admins (others get "Forbidden" on admin mutations). */
  admins: Set<string>;
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

export function graphqlHandler(fixtures = defaultFixtures()): GraphqlHandler & { calls: GraphqlCall[]; tabulator: TabulatorState } {
  const calls: GraphqlCall[] = [];
  const tabulator: TabulatorState = {
    tables: new Map([
      ['quilt-sandbox', [{ name: 'quant', config: TABULATOR_CONFIG }]],
      ['quilt-demo', []],
    ]),
    openQuery: false,
    admins: new Set(),
  };
  const BUCKETS = [
    { name: 'quilt-sandbox', title: 'Sandbox', description: 'Scratch data for experiments', relevanceScore: 1 },
    { name: 'quilt-demo', title: 'Demo data', description: null, relevanceScore: 2 },
  ];
  const bucketConfig = (b: (typeof BUCKETS)[number]) => ({
    ...b,
    browsable: true,
    lastIndexed: null,
    tabulatorTables: () => (tabulator.tables.get(b.name) ?? []).map((t) => ({ ...t })),
  });
  const invalid = (path: string, message: string, name = 'ValidationError') => ({ __typename: 'InvalidInput', errors: [{ path, message, name, context: null }] });
  const TABLE_NAME = /^[a-z0-9_][a-z0-9_-]*$/;
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
    meta: p.meta ? JSON.stringify(p.meta) : null,
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

  const matchingPackages = (q: string, b: string[] | null) =>
    fixtures.packages.filter((p) => inBuckets(p.bucket, b) && matches(`${p.name} ${p.comment} ${p.meta ? JSON.stringify(p.meta) : ''}`, q));

  /** PackagesSearchStats.userMeta as the catalog computes it: one facet per JSON pointer of the packages' user_meta. */
  const userMetaFacets = (q: string, b: string[] | null) => {
    const facets = new Map<string, { kind: 'keyword' | 'number' | 'boolean'; values: Set<string>; min: number; max: number }>();
    const walk = (v: unknown, path: string) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v)) walk(x, `${path}/${k}`);
        return;
      }
      const kind = typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : typeof v === 'string' ? 'keyword' : undefined;
      if (!kind) return;
      const f = facets.get(path) ?? { kind, values: new Set<string>(), min: Infinity, max: -Infinity };
      if (kind === 'keyword') f.values.add(v as string);
      if (kind === 'number') {
        f.min = Math.min(f.min, v as number);
        f.max = Math.max(f.max, v as number);
      }
      facets.set(path, f);
    };
    for (const p of matchingPackages(q, b)) walk(p.meta ?? {}, '');
    return [...facets].map(([path, f]) =>
      f.kind === 'keyword'
        ? { __typename: 'KeywordPackageUserMetaFacet', path, sortable: true, extents: { values: [...f.values] } }
        : f.kind === 'number'
          ? { __typename: 'NumberPackageUserMetaFacet', path, sortable: true, extents: { min: f.min, max: f.max } }
          : { __typename: 'BooleanPackageUserMetaFacet', path, sortable: false },
    );
  };

  const page = (c: PageCursor, size: number) => {
    const all =
      c.kind === 'p'
        ? matchingPackages(c.q, c.b).map(packageHit)
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
    const stats = kind === 'p' ? { userMeta: userMetaFacets(q, buckets), userMetaTruncated: false } : null;
    return { __typename: typename, total: first.total, stats, firstPage };
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

  /** The registry's checks, in its order: admin, bucket, names, config; then the change. */
  const requireAdmin = (user: string | undefined) => {
    if (!user || !tabulator.admins.has(user)) throw new GraphQLError('Forbidden');
  };
  const tablesOf = (bucketName: string) => tabulator.tables.get(bucketName);
  const setTable = (user: string | undefined) => ({ bucketName, tableName, config }: { bucketName: string; tableName: string; config?: string | null }) => {
    requireAdmin(user);
    const tables = tablesOf(bucketName);
    if (!tables) return invalid('bucketName', `Bucket ${bucketName} not found`, 'BucketNotFound');
    if (!TABLE_NAME.test(tableName)) return invalid('tableName', 'Table name must match ^[a-z0-9_][a-z0-9_-]*$');
    if (tableName === 'explode') return { __typename: 'OperationError', message: 'Glue is unavailable', name: 'GlueError', context: null };
    const i = tables.findIndex((t) => t.name === tableName);
    if (config === null || config === undefined) {
      if (i >= 0) tables.splice(i, 1);
    } else {
      const problems = tabulatorConfigProblems(config);
      if (problems.length) return { __typename: 'InvalidInput', errors: problems.map((message) => ({ path: 'config', message, name: 'ValidationError', context: null })) };
      if (i >= 0) tables[i] = { name: tableName, config };
      else tables.push({ name: tableName, config });
    }
    return { __typename: 'BucketConfig', ...bucketConfig(BUCKETS.find((b) => b.name === bucketName)!) };
  };
  const renameTable = (user: string | undefined) => ({ bucketName, tableName, newTableName }: { bucketName: string; tableName: string; newTableName: string }) => {
    requireAdmin(user);
    const tables = tablesOf(bucketName);
    if (!tables) return invalid('bucketName', `Bucket ${bucketName} not found`, 'BucketNotFound');
    const t = tables.find((x) => x.name === tableName);
    if (!t) return invalid('tableName', `Table ${tableName} not found`, 'TableNotFound');
    if (!TABLE_NAME.test(newTableName)) return invalid('newTableName', 'Table name must match ^[a-z0-9_][a-z0-9_-]*$');
    if (tables.some((x) => x.name === newTableName)) return invalid('newTableName', `Table ${newTableName} already exists`, 'TableExists');
    t.name = newTableName;
    return { __typename: 'BucketConfig', ...bucketConfig(BUCKETS.find((b) => b.name === bucketName)!) };
  };

  const handler = async (body: { query: string; variables?: Record<string, unknown>; operationName?: string }, user: string | undefined) => {
    const document = parse(body.query);
    const errors = validate(catalogSchema(), document);
    if (errors.length) throw new Error(errors.map((e) => e.message).join('; '));
    const op = document.definitions.find((d) => d.kind === 'OperationDefinition');
    calls.push({ operation: op && 'name' in op ? op.name?.value : undefined, variables: body.variables ?? {}, user });
    const rootValue = {
      me: user ? { name: user, email: `${user}@example.com`, isAdmin: tabulator.admins.has(user), role: { name: 'ReadWriteQuiltBucket' }, roles: [] } : null,
      bucketConfigs: BUCKETS.map(bucketConfig),
      bucketConfig: ({ name }: { name: string }) => {
        const b = BUCKETS.find((x) => x.name === name);
        return b ? bucketConfig(b) : null;
      },
      // Mutations share the root value with queries (graphql-js default resolvers).
      bucketSetTabulatorTable: setTable(user),
      bucketRenameTabulatorTable: renameTable(user),
      admin: () => {
        requireAdmin(user);
        return {
          tabulatorOpenQuery: tabulator.openQuery,
          setTabulatorOpenQuery: ({ enabled }: { enabled: boolean }) => {
            tabulator.openQuery = enabled;
            return { tabulatorOpenQuery: enabled };
          },
          bucketSetTabulatorTable: setTable(user),
          bucketRenameTabulatorTable: renameTable(user),
        };
      },
      searchPackages: ({ buckets, searchString }: { buckets?: string[] | null; searchString?: string | null }) => resultSet('p', searchString ?? '', buckets ?? null),
      searchObjects: ({ buckets, searchString }: { buckets?: string[] | null; searchString?: string | null }) => resultSet('o', searchString ?? '', buckets ?? null),
      searchMorePackages: more('p'),
      searchMoreObjects: more('o'),
    };
    return execute({ schema: catalogSchema(), document, rootValue, variableValues: body.variables ?? {} });
  };
  return Object.assign(handler, { calls, tabulator });
}
