/**
 * Quilt tabulator: per-bucket tables (YAML configs kept by the catalog, `bucketConfig.tabulatorTables`)
 * that Athena serves through the stack's federated data catalog `<stack name>-tabulator`, with the
 * bucket as the database (quilt-formats.md). Reads and the admin mutations, with every union arm of
 * the result handled; the tools above only shape arguments and text.
 */
import { ToolError } from '../core/errors.js';
import { lazy } from '../core/lazy.js';
import type { CatalogClient } from './client.js';
import {
  TABULATOR_RENAME_TABLE,
  TABULATOR_SET_OPEN_QUERY,
  TABULATOR_SET_TABLE,
  TABULATOR_TABLES,
  type TabulatorRenameTableData,
  type TabulatorResult,
  type TabulatorSetOpenQueryData,
  type TabulatorSetTableData,
  type TabulatorTableShape,
  type TabulatorTablesData,
} from './documents.js';
import { catalogConfig } from './resolve.js';

const loadYaml = lazy(() => import('yaml'));

export interface TabulatorColumn {
  name: string;
  type: string;
}

export interface TabulatorTable {
  name: string;
  /** The YAML as the catalog stores it. */
  config_yaml: string;
  /** The parsed YAML, or undefined when it does not parse (then `config_error` says why). */
  config?: unknown;
  config_error?: string;
  /** Declared columns (`schema:`), then the named capture groups of the source regexes. */
  columns: TabulatorColumn[];
  /** Columns the regexes' named groups add (`(?<name>...)` in package_name / logical_key). */
  capture_columns: string[];
  /** How Athena names the table, fully qualified and quoted: "<catalog>"."<bucket>"."<table>". */
  athena_name?: string;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

export function athenaTableName(dataCatalog: string, bucket: string, table: string): string {
  return [dataCatalog, bucket, table].map(quoteIdent).join('.');
}

/** Named groups of a regex source (`(?<name>` or Python's `(?P<name>`). */
function captureGroups(re: unknown): string[] {
  if (typeof re !== 'string') return [];
  return [...re.matchAll(/\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1] ?? '').filter(Boolean);
}

export async function describeTable(t: TabulatorTableShape, athena: { dataCatalog?: string | undefined; bucket: string }): Promise<TabulatorTable> {
  const out: TabulatorTable = { name: t.name, config_yaml: t.config, columns: [], capture_columns: [] };
  if (athena.dataCatalog) out.athena_name = athenaTableName(athena.dataCatalog, athena.bucket, t.name);
  try {
    const { parse } = await loadYaml();
    const config = parse(t.config, { maxAliasCount: 100 }) as unknown;
    out.config = config;
    const c = (config ?? {}) as { schema?: unknown; source?: { package_name?: unknown; logical_key?: unknown } };
    if (Array.isArray(c.schema)) {
      for (const col of c.schema as Array<{ name?: unknown; type?: unknown }>) {
        if (typeof col?.name === 'string') out.columns.push({ name: col.name, type: typeof col.type === 'string' ? col.type : 'STRING' });
      }
    }
    out.capture_columns = [...new Set([...captureGroups(c.source?.package_name), ...captureGroups(c.source?.logical_key)])];
  } catch (err) {
    out.config_error = `The table's YAML does not parse: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
  return out;
}

/**
 * The Athena data catalog of the stack's tabulator. A stack names it `<stack name>-tabulator`; the
 * catalog's config.json does not state the stack name, but CloudFormation names the stack's buckets
 * `<stack name>-<logical id>-<suffix>` (lower case), so analyticsBucket / serviceBucket tell it.
 * An explicit `tabulatorDataCatalog` or `stackName` in config.json wins where a stack publishes one.
 */
export function tabulatorCatalogFromConfig(raw: Record<string, unknown>): string | undefined {
  const str = (k: string) => (typeof raw[k] === 'string' && raw[k] ? (raw[k] as string) : undefined);
  const explicit = str('tabulatorDataCatalog');
  if (explicit) return explicit;
  const stack = str('stackName');
  if (stack) return `${stack}-tabulator`;
  for (const [key, logical] of [
    ['analyticsBucket', 'analyticsbucket'],
    ['serviceBucket', 'servicebucket'],
  ] as const) {
    const bucket = str(key);
    const at = bucket?.toLowerCase().lastIndexOf(`-${logical}`) ?? -1;
    if (bucket && at > 0) return `${bucket.slice(0, at)}-tabulator`;
  }
  return undefined;
}

/** The tabulator data catalog: the caller's choice, else what the catalog's config.json tells. */
export async function tabulatorDataCatalog(client: CatalogClient, explicit: string | undefined): Promise<string> {
  if (explicit) return explicit;
  const config = await catalogConfig(client.catalogUrl);
  const name = tabulatorCatalogFromConfig(config.raw);
  if (name) return name;
  throw new ToolError(
    'not_found',
    `Could not tell the Athena data catalog of ${client.catalogUrl}'s tabulator: its config.json names no stack (no analyticsBucket or serviceBucket of the form <stack>-analyticsbucket-...).`,
    'Pass data_catalog="<stack name>-tabulator" (athena_databases_list with that catalog shows the buckets as databases).',
  );
}

export async function listTables(client: CatalogClient, bucket: string, signal?: AbortSignal): Promise<TabulatorTableShape[]> {
  const { bucketConfig } = await client.graphql<TabulatorTablesData>(TABULATOR_TABLES, { bucket }, signal);
  if (!bucketConfig) {
    throw new ToolError(
      'not_found',
      `The Quilt catalog ${client.catalogUrl} does not know the bucket ${bucket} (or you may not see it).`,
      'bucket_list shows the buckets the catalog knows; tabulator tables live on those.',
    );
  }
  return bucketConfig.tabulatorTables;
}

function tablesOrFail(result: TabulatorResult, what: string): TabulatorTableShape[] {
  if (result.__typename === 'BucketConfig') return result.tabulatorTables;
  if (result.__typename === 'InvalidInput') {
    const detail = result.errors.map((e) => `${e.path ? `${e.path}: ` : ''}${e.message}`).join('; ');
    throw new ToolError('invalid_input', `The catalog refused to ${what}: ${detail}`, 'Fix what the message names and retry; tabulator_tables_list shows the current tables.');
  }
  throw new ToolError('catalog_error', `The catalog could not ${what}: ${result.message} (${result.name})`, 'Retry in a moment; if it persists, check the catalog\'s tabulator setup.');
}

/**
 * Runs an admin mutation. The catalog refuses non-admins with a GraphQL error (data null), which the
 * client reports as a rejected query; say what it means instead.
 */
async function asAdmin<T>(client: CatalogClient, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ToolError && (err.code === 'access_denied' || (err.code === 'catalog_error' && /forbidden|not authori[sz]ed|admin/i.test(err.message)))) {
      throw new ToolError(
        'access_denied',
        `The Quilt catalog ${client.catalogUrl} refused to ${what}: tabulator tables are changed by catalog admins only.`,
        'Ask a Quilt admin, or log in (quilt3 login / catalog_token) as a user with the admin flag.',
      );
    }
    throw err;
  }
}

/** Creates or replaces a table (config YAML), or deletes it (config null). Returns the bucket's tables after. */
export async function setTable(client: CatalogClient, bucket: string, table: string, config: string | null): Promise<TabulatorTableShape[]> {
  const what = config === null ? `delete table ${table} of ${bucket}` : `set table ${table} of ${bucket}`;
  const data = await asAdmin(client, what, () => client.graphql<TabulatorSetTableData>(TABULATOR_SET_TABLE, { bucket, table, config }));
  return tablesOrFail(data.bucketSetTabulatorTable, what);
}

/**
 * Renames a table; `done: 'already'` when the catalog said the old table is missing but the new one
 * is there and the old one is not. That is how a rename whose answer was lost looks: the catalog
 * client sends a request again after a reset connection, and the catalog had done the first one.
 */
export async function renameTable(client: CatalogClient, bucket: string, table: string, newName: string): Promise<{ tables: TabulatorTableShape[]; done: 'now' | 'already' }> {
  const what = `rename table ${table} of ${bucket} to ${newName}`;
  const data = await asAdmin(client, what, () => client.graphql<TabulatorRenameTableData>(TABULATOR_RENAME_TABLE, { bucket, table, newName }));
  try {
    return { tables: tablesOrFail(data.bucketRenameTabulatorTable, what), done: 'now' };
  } catch (err) {
    if (!(err instanceof ToolError && err.code === 'invalid_input')) throw err;
    const tables = await listTables(client, bucket).catch(() => undefined);
    if (tables?.some((t) => t.name === newName) && !tables.some((t) => t.name === table)) return { tables, done: 'already' };
    throw err;
  }
}

export async function setOpenQuery(client: CatalogClient, enabled: boolean): Promise<boolean> {
  const what = `${enabled ? 'enable' : 'disable'} tabulator open query`;
  const data = await asAdmin(client, what, () => client.graphql<TabulatorSetOpenQueryData>(TABULATOR_SET_OPEN_QUERY, { enabled }));
  return data.admin.setTabulatorOpenQuery.tabulatorOpenQuery;
}
