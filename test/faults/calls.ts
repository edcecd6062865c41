/**
 * The calls of a fault campaign: every tool, with arguments that work on the campaign's data, and
 * the package writes at several sizes. Reads are judged against their fault-free answer; writes by
 * the state they leave (the registry, the objects, the catalog's tables), and by whether a retry
 * once the fault is gone completes them.
 */
import { TABULATOR_CONFIG } from '../helpers/catalog-graphql.js';
import { BUCKET, TABULATOR_BUCKET } from './world.js';
import type { CallResult, World } from './world.js';

export type CallKind = 'read' | 'write';

export interface Call {
  /** Unique within a round (a tool may appear at several sizes). */
  id: string;
  tool: string;
  kind: CallKind;
  args(round: string, env: CallEnv): Record<string, unknown>;
  /**
   * A read that may answer in part when a service fails, saying which part it could not tell and
   * that retrying may help: leaves of the answer this accepts in place of the fault-free ones.
   */
  partial?(path: string, value: unknown, answer: CallResult): boolean;
  /** For package writes: the package written (its registry is BUCKET). */
  pkg?(round: string): string;
  /** State a write needs before it runs (made without faults). */
  prepare?(w: World, round: string, setup: (tool: string, args: Record<string, unknown>) => Promise<unknown>): Promise<void>;
}

/** What the campaign's setup made that calls refer to. */
export interface CallEnv {
  /** The two revisions of BASE_PACKAGE, oldest first. */
  base: [string, string];
}

/** What an error or a note says when retrying may help. */
export const RETRY = /\bretry|\btry again\b|retrying/i;

export const SOURCE_PREFIX = 'sources/';
export const SOURCE_COUNT = 12;
export const BASE_PACKAGE = 'base/pkg';

const texts = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ logical_key: `part-${String(i).padStart(3, '0')}.txt`, text: `${tag} ${i}\n` }));
/** Round ids become package names and table names: letters, digits, "-" and "_". */
const pkgName = (round: string, what: string) => `r-${round}/${what}`;
const table = (round: string, what: string) => `r_${round.replace(/-/g, '_')}_${what}`;

export const CALLS: readonly Call[] = [
  {
    id: 'auth_status',
    tool: 'auth_status',
    kind: 'read',
    args: () => ({}),
    // A status report: a half that could not be checked says so, and why.
    partial: (path, _v, answer) => {
      const half = /^(aws|catalog)\./.exec(path)?.[1] as 'aws' | 'catalog' | undefined;
      return half !== undefined && answer.data?.[half]?.available === false && RETRY.test(String(answer.data?.[half]?.error));
    },
  },
  {
    id: 'bucket_list',
    tool: 'bucket_list',
    kind: 'read',
    args: () => ({}),
    // Without the catalog's list, the buckets S3 lists, said so.
    partial: (_p, _v, answer) => /could not be read .*retrying may help/.test(String(answer.data?.note)),
  },
  { id: 'bucket_objects_list', tool: 'bucket_objects_list', kind: 'read', args: () => ({ bucket: BUCKET, prefix: SOURCE_PREFIX }) },
  { id: 'bucket_object_info', tool: 'bucket_object_info', kind: 'read', args: () => ({ uri: `s3://${BUCKET}/README.md` }) },
  { id: 'bucket_object_text', tool: 'bucket_object_text', kind: 'read', args: () => ({ uri: `s3://${BUCKET}/big.csv` }) },
  { id: 'bucket_object_fetch', tool: 'bucket_object_fetch', kind: 'read', args: () => ({ uri: `s3://${BUCKET}/pixel.bin` }) },
  { id: 'bucket_object_link', tool: 'bucket_object_link', kind: 'read', args: () => ({ uri: `s3://${BUCKET}/README.md` }) },
  {
    id: 'discover_permissions',
    tool: 'discover_permissions',
    kind: 'read',
    args: () => ({ buckets: [BUCKET] }),
    // A probe that failed leaves its answer "unknown", with why in `detail`.
    partial: (path, value, answer) => (/^buckets\[0\]\.(list|read|write)$/.test(path) && value === 'unknown') || (path === 'buckets[0].detail' && /retrying may help/.test(String(value)) && /retrying may help/.test(answer.text)),
  },
  { id: 'package_list', tool: 'package_list', kind: 'read', args: () => ({ bucket: BUCKET, prefix: 'base/' }) },
  { id: 'package_revisions', tool: 'package_revisions', kind: 'read', args: () => ({ bucket: BUCKET, name: BASE_PACKAGE }) },
  { id: 'package_browse', tool: 'package_browse', kind: 'read', args: () => ({ bucket: BUCKET, name: BASE_PACKAGE, recursive: true }) },
  { id: 'package_diff', tool: 'package_diff', kind: 'read', args: (_r, env) => ({ bucket: BUCKET, name: BASE_PACKAGE, from: env.base[0], to: env.base[1] }) },
  {
    id: 'search_catalog',
    tool: 'search_catalog',
    kind: 'read',
    args: () => ({ query: 'cells', limit: 5 }),
    // Without the catalog, a scan of S3, labelled as one with why.
    partial: (_p, _v, answer) => answer.data?.source === 's3_fallback' && /did not answer/.test(String(answer.data?.interpretation?.fallback_reason)),
  },
  { id: 'search_suggest', tool: 'search_suggest', kind: 'read', args: () => ({ query: 'cell' }) },
  { id: 'catalog_uri', tool: 'catalog_uri', kind: 'read', args: () => ({ bucket: BUCKET, package: BASE_PACKAGE, path: 'a.txt' }) },
  { id: 'athena_workgroups_list', tool: 'athena_workgroups_list', kind: 'read', args: () => ({}) },
  { id: 'athena_catalog', tool: 'athena_catalog', kind: 'read', args: () => ({ database: 'analytics', table: 'samples' }) },
  { id: 'athena_databases_list', tool: 'athena_databases_list', kind: 'read', args: () => ({}) },
  { id: 'athena_tables_list', tool: 'athena_tables_list', kind: 'read', args: () => ({ database: 'analytics' }) },
  { id: 'athena_table_schema', tool: 'athena_table_schema', kind: 'read', args: () => ({ database: 'analytics', table: 'samples' }) },
  { id: 'athena_query_execute', tool: 'athena_query_execute', kind: 'read', args: () => ({ database: 'analytics', query: 'SELECT id, name FROM samples ORDER BY id', max_rows: 5 }) },
  { id: 'tabulator_tables_list', tool: 'tabulator_tables_list', kind: 'read', args: () => ({ bucket: 'quilt-sandbox' }) },
  { id: 'tabulator_query', tool: 'tabulator_query', kind: 'read', args: () => ({ bucket: 'quilt-sandbox', query: 'SELECT gene FROM quant' }) },
  { id: 'jwt_diagnostics', tool: 'jwt_diagnostics', kind: 'read', args: () => ({}) },
  { id: 'session_diagnostics', tool: 'session_diagnostics', kind: 'read', args: () => ({}) },
  { id: 'validate_jwt_token', tool: 'validate_jwt_token', kind: 'read', args: () => ({ token: 'not-a-token' }) },

  { id: 'bucket_objects_put', tool: 'bucket_objects_put', kind: 'write', args: (r) => ({ bucket: BUCKET, items: [1, 2, 3].map((i) => ({ key: `put/${r}/${i}.txt`, text: `object ${i}` })) }) },
  ...[3, 40, 200].map(
    (n): Call => ({
      id: `package_create_${n}`,
      tool: 'package_create',
      kind: 'write',
      pkg: (r) => pkgName(r, `create-${n}`),
      args: (r) => ({ bucket: BUCKET, name: pkgName(r, `create-${n}`), entries: texts(n, 'entry'), message: `${n} entries` }),
    }),
  ),
  {
    id: 'package_create_copy',
    tool: 'package_create',
    kind: 'write',
    pkg: (r) => pkgName(r, 'copy'),
    args: (r) => ({
      bucket: BUCKET,
      name: pkgName(r, 'copy'),
      copy: true,
      entries: [0, 1, 2, 3].map((i) => ({ logical_key: `s${i}.csv`, s3_uri: `s3://${BUCKET}/${SOURCE_PREFIX}s${String(i).padStart(2, '0')}.csv` })),
    }),
  },
  {
    id: 'package_create_from_s3',
    tool: 'package_create_from_s3',
    kind: 'write',
    pkg: (r) => pkgName(r, 'prefix'),
    args: (r) => ({ bucket: BUCKET, name: pkgName(r, 'prefix'), source_uri_prefix: `s3://${BUCKET}/${SOURCE_PREFIX}` }),
  },
  {
    id: 'package_update',
    tool: 'package_update',
    kind: 'write',
    pkg: (r) => pkgName(r, 'update'),
    args: (r) => ({ bucket: BUCKET, name: pkgName(r, 'update'), message: 'second', add: [{ logical_key: 'added.txt', text: 'added\n' }], meta: { round: 'any' } }),
    prepare: async (_w, r, setup) => void (await setup('package_create', { bucket: BUCKET, name: pkgName(r, 'update'), entries: texts(3, 'base'), message: 'first' })),
  },
  {
    id: 'package_delete',
    tool: 'package_delete',
    kind: 'write',
    pkg: (r) => pkgName(r, 'delete'),
    args: (r) => ({ bucket: BUCKET, name: pkgName(r, 'delete') }),
    prepare: async (_w, r, setup) => void (await setup('package_create', { bucket: BUCKET, name: pkgName(r, 'delete'), entries: texts(2, 'doomed'), message: 'doomed' })),
  },
  {
    id: 'package_push',
    tool: 'package_push',
    kind: 'write',
    pkg: (r) => pkgName(r, 'push'),
    args: (r) => ({ bucket: BUCKET, name: BASE_PACKAGE, to_bucket: BUCKET, to_name: pkgName(r, 'push') }),
  },
  { id: 'tabulator_table_set', tool: 'tabulator_table_set', kind: 'write', args: (r) => ({ bucket: TABULATOR_BUCKET, table: table(r, 'set'), config: TABULATOR_TABLE }) },
  {
    id: 'tabulator_table_rename',
    tool: 'tabulator_table_rename',
    kind: 'write',
    args: (r) => ({ bucket: TABULATOR_BUCKET, table: table(r, 'old'), new_name: table(r, 'new') }),
    prepare: async (w, r) => void w.gql.tabulator.tables.get(TABULATOR_BUCKET)!.push({ name: table(r, 'old'), config: TABULATOR_TABLE }),
  },
  {
    id: 'tabulator_table_delete',
    tool: 'tabulator_table_delete',
    kind: 'write',
    args: (r) => ({ bucket: TABULATOR_BUCKET, table: table(r, 'gone') }),
    prepare: async (w, r) => void w.gql.tabulator.tables.get(TABULATOR_BUCKET)!.push({ name: table(r, 'gone'), config: TABULATOR_TABLE }),
  },
  { id: 'tabulator_open_query_set', tool: 'tabulator_open_query_set', kind: 'write', args: () => ({ enabled: true }) },
];

const TABULATOR_TABLE = TABULATOR_CONFIG;

/** The state a write's success promises: a list of problems (empty: it holds). */
export function tableNames(w: World): Set<string> {
  return new Set((w.gql.tabulator.tables.get(TABULATOR_BUCKET) ?? []).map((t) => t.name));
}
export { table as tableName, pkgName };
