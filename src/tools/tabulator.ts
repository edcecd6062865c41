/**
 * Quilt tabulator tools: a bucket's tables and queries on them through Athena (read-only, as
 * athena_query_execute) in one tool, and, in the opt-in `admin` toolset, create/replace, rename and delete
 * tables and switch open query. The domain is in catalog/tabulator.ts.
 */
import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../core/errors.js';
import { describeTable, listTables, renameTable, setOpenQuery, setTable, tabulatorDataCatalog } from '../catalog/tabulator.js';
import { count } from '../core/format.js';
import { bucketArg } from './args.js';
import { queryArgs, queryOutput, runReadQuery } from './athena-query.js';
import { defineTool } from './define.js';

const dataCatalogArg = z
  .string()
  .min(1)
  .max(127)
  .regex(/^[A-Za-z0-9_@-]+$/, 'an Athena data catalog name (letters, digits, _ @ -)')
  .optional()
  .describe('"<stack>-tabulator" (default: from the catalog)');

// Tabulator table names become Athena identifiers; keep them to what a quoted name carries safely.
const tableNameArg = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9_][a-z0-9_-]*$/, 'lower-case letters, digits, "_" and "-", not starting with "-"')
  .describe('Tabulator table name, e.g. "ccle_tsv"');

const columnShape = z.object({ name: z.string(), type: z.string() });
const tableShape = z.object({
  name: z.string(),
  athena_name: z.string().optional().describe('The table as Athena names it: "<data catalog>"."<bucket>"."<table>"'),
  columns: z.array(columnShape).describe('Declared columns (schema:)'),
  capture_columns: z.array(z.string()).describe('Columns added by named groups of the package_name / logical_key regexes'),
  config: z.unknown().optional().describe('The parsed YAML config'),
  config_yaml: z.string(),
  config_error: z.string().optional(),
});

async function catalogFor(ctx: RuntimeContext) {
  return ctx.catalog.client();
}

const tablesOutput = {
  bucket: z.string(),
  data_catalog: z.string().optional().describe('Athena data catalog serving the tables'),
  database: z.string().describe('Athena database of the tables (the bucket)'),
  tables: z.array(tableShape),
  data_catalog_error: z.string().optional().describe('Why the data catalog could not be told (pass data_catalog)'),
};

/** A bucket's tabulator tables: tabulator_query without a query (and its former name, tabulator_tables_list). */
async function tablesOf(args: { bucket: string; data_catalog?: string | undefined }, ctx: RuntimeContext, extras: { signal: AbortSignal }) {
  const bucket = parseBucket(args.bucket);
  ctx.authorize(bucket, 'read');
  const client = await catalogFor(ctx);
  const shapes = await listTables(client, bucket, extras.signal);
  // The list is still useful when the data catalog cannot be told; say why next to it.
  let dataCatalog: string | undefined;
  let dataCatalogError: string | undefined;
  try {
    dataCatalog = await tabulatorDataCatalog(client, args.data_catalog);
  } catch (err) {
    if (!(err instanceof ToolError)) throw err;
    dataCatalogError = `${err.message}${err.hint ? ` ${err.hint}` : ''}`;
  }
  const tables = await Promise.all(shapes.map((t) => describeTable(t, { dataCatalog, bucket })));
  const lines = tables.map(
    (t) =>
      `- ${t.athena_name ?? t.name}: ${t.config_error ?? [...t.columns.map((c) => `${c.name} ${c.type}`), ...t.capture_columns.map((c) => `${c} (from regex)`)].join(', ')}`,
  );
  const head = `${count(tables.length, 'tabulator table', 'tabulator tables')} in ${bucket}${dataCatalog ? ` (Athena catalog "${dataCatalog}", database "${bucket}")` : ''}.`;
  return {
    data: { bucket, data_catalog: dataCatalog, database: bucket, tables, data_catalog_error: dataCatalogError },
    text: [head, ...lines, ...(dataCatalogError ? [dataCatalogError] : [])].join('\n'),
  };
}

export const tabulatorTablesList = defineTool({
  name: 'tabulator_tables_list',
  title: 'List tabulator tables',
  description:
    "A bucket's tabulator tables (Athena tables over its packages' files, for tabulator_query): columns (plus $pkg_name, $logical_key, $physical_key, $top_hash), config (tabulator_query without query).",
  toolset: 'athena',
  kind: 'read',
  listed: false,
  input: {
    bucket: bucketArg,
    data_catalog: dataCatalogArg,
  },
  output: tablesOutput,
  handler: (args, ctx, extras) => tablesOf(args, ctx, extras),
});

export const tabulatorQuery = defineTool({
  name: 'tabulator_query',
  title: 'Query tabulator tables',
  description:
    "A bucket's tabulator tables (Athena tables over its packages' files). Without query: the tables, their columns (plus $pkg_name, $logical_key, " +
    '$physical_key, $top_hash) and config. With query: one read-only Trino SQL statement, the bucket as database (`SELECT * FROM "my_table" LIMIT 10`); ' +
    "writes and table functions are refused. A token is checked for reading `bucket` only; other tables the SQL names are its role's IAM's to allow.",
  toolset: 'athena',
  kind: 'read',
  idempotent: false,
  input: {
    bucket: bucketArg,
    query: z.string().max(262_144).optional().describe('One SQL statement'),
    data_catalog: dataCatalogArg,
    workgroup: z.string().min(1).max(128).optional().describe('Default: see athena_workgroups_list'),
    ...queryArgs,
  },
  output: {
    ...(Object.fromEntries(Object.entries(queryOutput).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof queryOutput]: z.ZodOptional<(typeof queryOutput)[K]> }),
    ...tablesOutput,
    tables: tablesOutput.tables.optional().describe('Without query: the tables'),
    bucket: z.string().optional(),
  },
  async handler(args, ctx, extras) {
    if (args.query === undefined) return tablesOf(args, ctx, extras);
    const bucket = parseBucket(args.bucket);
    ctx.authorize(bucket, 'read');
    const catalog = await tabulatorDataCatalog(await catalogFor(ctx), args.data_catalog);
    const out = await runReadQuery(ctx, extras, { ...args, query: args.query, catalog, database: bucket });
    return { data: { ...out.data, data_catalog: catalog, database: bucket }, text: `${out.text}\nRan in Athena data catalog "${catalog}", database "${bucket}".` };
  },
});

const tablesResult = {
  bucket: z.string(),
  tables: z.array(z.object({ name: z.string() })).describe("The bucket's tables after the change"),
};

export const tabulatorTableSet = defineTool({
  name: 'tabulator_table_set',
  title: 'Create or replace a tabulator table',
  description:
    "Create a tabulator table on a bucket, or replace an existing table's config (catalog admins only). config is the table's YAML: " +
    'schema (columns: name, type), source (type quilt-packages, package_name and logical_key regexes) and parser (format csv or parquet).',
  toolset: 'admin',
  kind: 'write',
  idempotent: true,
  input: {
    bucket: bucketArg,
    table: tableNameArg,
    config: z.string().min(1).max(100_000).describe('The table config as YAML'),
  },
  output: { ...tablesResult, replaced: z.boolean().describe('A table of that name existed and its config was replaced') },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    ctx.authorize(bucket, 'write');
    const client = await catalogFor(ctx);
    const before = await listTables(client, bucket);
    const replaced = before.some((t) => t.name === args.table);
    const after = await setTable(client, bucket, args.table, args.config);
    return {
      data: { bucket, tables: after.map((t) => ({ name: t.name })), replaced },
      text: `${replaced ? 'Replaced the config of' : 'Created'} tabulator table ${args.table} in ${bucket}.`,
    };
  },
});

export const tabulatorTableRename = defineTool({
  name: 'tabulator_table_rename',
  title: 'Rename a tabulator table',
  description: 'Rename a tabulator table of a bucket (catalog admins only). Queries that name the old table stop working.',
  toolset: 'admin',
  kind: 'write',
  input: { bucket: bucketArg, table: tableNameArg, new_name: tableNameArg.describe('New table name') },
  output: tablesResult,
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    ctx.authorize(bucket, 'write');
    const { tables, done } = await renameTable(await catalogFor(ctx), bucket, args.table, args.new_name);
    return {
      data: { bucket, tables: tables.map((t) => ({ name: t.name })) },
      text:
        done === 'now'
          ? `Renamed tabulator table ${args.table} to ${args.new_name} in ${bucket}.`
          : `Tabulator table ${args.new_name} exists in ${bucket} and ${args.table} does not: the rename is done (an earlier answer to it was lost).`,
    };
  },
});

export const tabulatorTableDelete = defineTool({
  name: 'tabulator_table_delete',
  title: 'Delete a tabulator table',
  description: "Delete a tabulator table of a bucket (catalog admins only): its config is removed; the packages' data is untouched.",
  toolset: 'admin',
  kind: 'destructive',
  input: { bucket: bucketArg, table: tableNameArg },
  output: tablesResult,
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    ctx.authorize(bucket, 'delete');
    const client = await catalogFor(ctx);
    // The catalog treats deleting a missing table as done; a person asking for it more likely mistyped.
    const before = await listTables(client, bucket);
    if (!before.some((t) => t.name === args.table)) {
      throw new ToolError(
        'not_found',
        `${bucket} has no tabulator table ${args.table}.`,
        before.length ? `Its tables: ${before.map((t) => t.name).join(', ')}.` : 'It has no tabulator tables.',
      );
    }
    const after = await setTable(client, bucket, args.table, null);
    return { data: { bucket, tables: after.map((t) => ({ name: t.name })) }, text: `Deleted tabulator table ${args.table} from ${bucket}.` };
  },
});

export const tabulatorOpenQuerySet = defineTool({
  name: 'tabulator_open_query_set',
  title: 'Switch tabulator open query',
  description:
    "Turn tabulator open query on or off for the whole stack (catalog admins only): when on, tabulator tables can be queried from Athena " +
    'directly (any workgroup, with the caller\'s own permissions), not only through the Quilt catalog.',
  toolset: 'admin',
  kind: 'write',
  idempotent: true,
  input: { enabled: z.boolean().describe('true to allow open query, false to restrict it') },
  output: { open_query: z.boolean().describe('The setting after the change') },
  async handler(args, ctx) {
    const now = await setOpenQuery(await catalogFor(ctx), args.enabled);
    return { data: { open_query: now }, text: `Tabulator open query is ${now ? 'on' : 'off'}.` };
  },
});
