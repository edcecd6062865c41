/** The Athena data catalog: databases, tables and one table's schema (metadata only, no query). */
import { z } from 'zod';
import { DEFAULT_CATALOG, withAthena } from '../aws/athena.js';
import { ToolError } from '../core/errors.js';
import { defineTool } from './define.js';

const catalogArg = z
  .string()
  .min(1)
  .max(256)
  .default(DEFAULT_CATALOG)
  .describe('Data catalog (AwsDataCatalog is Glue)');
const databaseArg = z.string().min(1).max(255).describe('Database');

const databaseList = z.array(z.object({ name: z.string(), description: z.string().optional() }));
const tableList = z.array(
  z.object({
    name: z.string(),
    type: z.string().optional(),
    column_count: z.number(),
    partition_keys: z.array(z.string()),
    created: z.string().optional(),
  }),
);

/** More would flood the model's context; a filter (`expression`) is the way to the rest. */
const MAX_DATABASES = 1000;
const MAX_TABLES = 500;

// The three tools below answer under their own names (not listed: athena_catalog offers all three).

export const athenaDatabasesList = defineTool({
  name: 'athena_databases_list',
  title: 'List Athena databases',
  description: 'List the databases of an Athena data catalog, with their descriptions.',
  toolset: 'athena',
  kind: 'read',
  listed: false,
  input: { catalog: catalogArg },
  output: {
    catalog: z.string(),
    databases: databaseList,
    truncated: z.boolean(),
  },
  async handler(args, ctx) {
    const catalog = args.catalog;
    const databases = await withAthena(ctx, { action: 'list the databases of', resource: `catalog "${catalog}"` }, async (client, sdk) => {
      const out: Array<{ name: string; description?: string | undefined }> = [];
      let token: string | undefined;
      do {
        const page = await client.send(new sdk.ListDatabasesCommand({ CatalogName: catalog, MaxResults: 50, NextToken: token }));
        for (const d of page.DatabaseList ?? []) if (d.Name) out.push({ name: d.Name, description: d.Description || undefined });
        token = page.NextToken;
      } while (token && out.length < MAX_DATABASES);
      return { out, more: Boolean(token) };
    });
    const data = { catalog, databases: databases.out, truncated: databases.more };
    const text =
      data.databases.length === 0
        ? `Catalog "${catalog}" has no databases you can see.`
        : `${data.databases.length} database(s) in "${catalog}"${data.truncated ? ' (more exist)' : ''}:\n` +
          data.databases.map((d) => `- ${d.name}${d.description ? `: ${d.description}` : ''}`).join('\n');
    return { data, text };
  },
});

export const athenaTablesList = defineTool({
  name: 'athena_tables_list',
  title: 'List Athena tables',
  description: 'List the tables of an Athena database: type, number of columns, partition keys.',
  toolset: 'athena',
  kind: 'read',
  listed: false,
  input: {
    database: databaseArg,
    catalog: catalogArg,
    expression: z.string().min(1).max(256).optional().describe('Name pattern, e.g. "sales*"'),
  },
  output: {
    catalog: z.string(),
    database: z.string(),
    tables: tableList,
    truncated: z.boolean(),
  },
  async handler(args, ctx) {
    const catalog = args.catalog;
    const { database } = args;
    const res = await withAthena(
      ctx,
      { action: 'list the tables of', resource: `database "${database}" (catalog "${catalog}")` },
      async (client, sdk) => {
        const out: Array<{ name: string; type?: string | undefined; column_count: number; partition_keys: string[]; created?: string | undefined }> = [];
        let token: string | undefined;
        do {
          const page = await client.send(
            new sdk.ListTableMetadataCommand({ CatalogName: catalog, DatabaseName: database, Expression: args.expression, MaxResults: 50, NextToken: token }),
          );
          for (const t of page.TableMetadataList ?? []) {
            if (!t.Name) continue;
            out.push({
              name: t.Name,
              type: t.TableType || undefined,
              column_count: t.Columns?.length ?? 0,
              partition_keys: (t.PartitionKeys ?? []).map((p) => p.Name ?? '').filter(Boolean),
              created: t.CreateTime?.toISOString(),
            });
          }
          token = page.NextToken;
        } while (token && out.length < MAX_TABLES);
        return { out, more: Boolean(token) };
      },
    );
    const data = { catalog, database, tables: res.out, truncated: res.more };
    const text =
      data.tables.length === 0
        ? `No tables in ${catalog}.${database}${args.expression ? ` match "${args.expression}"` : ''}.`
        : `${data.tables.length} table(s) in ${catalog}.${database}${data.truncated ? ' (more exist: narrow with expression)' : ''}:\n` +
          data.tables
            .map(
              (t) =>
                `- ${t.name}${t.type ? ` (${t.type})` : ''}: ${t.column_count} column(s)` +
                (t.partition_keys.length ? `, partitioned by ${t.partition_keys.join(', ')}` : ''),
            )
            .join('\n');
    return { data, text };
  },
});

const columnShape = z.object({ name: z.string(), type: z.string(), comment: z.string().optional() });

export const athenaTableSchema = defineTool({
  name: 'athena_table_schema',
  title: 'Athena table schema',
  description: "An Athena table's columns (types, comments), partition keys, location and format: read it before querying.",
  toolset: 'athena',
  kind: 'read',
  listed: false,
  input: {
    database: databaseArg,
    table: z.string().min(1).max(255).describe('Table'),
    catalog: catalogArg,
  },
  output: {
    catalog: z.string(),
    database: z.string(),
    table: z.string(),
    type: z.string().optional(),
    columns: z.array(columnShape),
    partition_keys: z.array(columnShape),
    location: z.string().optional(),
    format: z.string().optional(),
    created: z.string().optional(),
  },
  async handler(args, ctx) {
    const catalog = args.catalog;
    const { database, table } = args;
    const meta = await withAthena(
      ctx,
      { action: 'read the schema of', resource: `table ${catalog}.${database}.${table}` },
      async (client, sdk) =>
        (await client.send(new sdk.GetTableMetadataCommand({ CatalogName: catalog, DatabaseName: database, TableName: table }))).TableMetadata,
    );
    const cols = (list: Array<{ Name?: string | undefined; Type?: string | undefined; Comment?: string | undefined }> | undefined) =>
      (list ?? []).map((c) => ({ name: c.Name ?? '', type: c.Type ?? 'unknown', comment: c.Comment || undefined }));
    const params = meta?.Parameters ?? {};
    const data = {
      catalog,
      database,
      table: meta?.Name ?? table,
      type: meta?.TableType || undefined,
      columns: cols(meta?.Columns),
      partition_keys: cols(meta?.PartitionKeys),
      location: params.location || undefined,
      format: params.classification || params.table_type || params.inputformat || undefined,
      created: meta?.CreateTime?.toISOString(),
    };
    const line = (c: { name: string; type: string; comment?: string | undefined }) => `- ${c.name} ${c.type}${c.comment ? `  -- ${c.comment}` : ''}`;
    const text = [
      `${catalog}.${database}.${data.table}${data.type ? ` (${data.type})` : ''}${data.format ? `, ${data.format}` : ''}${data.location ? ` at ${data.location}` : ''}`,
      `${data.columns.length} column(s):`,
      ...data.columns.map(line),
      ...(data.partition_keys.length ? ['Partition keys (filter on them to scan less):', ...data.partition_keys.map(line)] : []),
    ].join('\n');
    return { data, text };
  },
});

/**
 * The data catalog in one tool, level by level: databases; a database's tables; one table's
 * schema. One listed tool instead of three keeps the model's tool list short; each level answers
 * exactly as the tool of that level above.
 */
export const athenaCatalog = defineTool({
  name: 'athena_catalog',
  title: 'Browse the Athena data catalog',
  description:
    'Browse an Athena data catalog: databases; with database, its tables; with table too, its columns, partition keys, location and format.',
  toolset: 'athena',
  kind: 'read',
  input: {
    catalog: catalogArg,
    database: databaseArg.optional(),
    table: z.string().min(1).max(255).optional().describe('Table (with database)'),
    expression: z.string().min(1).max(256).optional().describe('Table name pattern, e.g. "sales*"'),
  },
  output: {
    level: z.enum(['databases', 'tables', 'table']).describe('What this answer lists'),
    catalog: z.string(),
    databases: databaseList.optional(),
    truncated: z.boolean().optional(),
    database: z.string().optional(),
    tables: tableList.optional(),
    table: z.string().optional(),
    type: z.string().optional(),
    columns: z.array(columnShape).optional(),
    partition_keys: z.array(columnShape).optional(),
    location: z.string().optional(),
    format: z.string().optional(),
    created: z.string().optional(),
  },
  async handler(args, ctx, extras) {
    const { catalog, database, table, expression } = args;
    if (table !== undefined) {
      if (database === undefined) throw new ToolError('invalid_input', 'A table is named within a database: give database too.');
      const r = await athenaTableSchema.handler({ catalog, database, table }, ctx, extras);
      return { data: { level: 'table' as const, ...r.data }, text: r.text };
    }
    if (database !== undefined) {
      const r = await athenaTablesList.handler({ catalog, database, expression }, ctx, extras);
      return { data: { level: 'tables' as const, ...r.data }, text: r.text };
    }
    const r = await athenaDatabasesList.handler({ catalog }, ctx, extras);
    return { data: { level: 'databases' as const, ...r.data }, text: r.text };
  },
});
