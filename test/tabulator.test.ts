/**
 * Tabulator tools end to end: the built server over stdio with a quilt3 session at the local
 * catalog (GraphQL validated against the real schema, tables per bucket, admin mutations with the
 * schema's result unions) and queries through the local Athena, where the stack's
 * `<stack>-tabulator` data catalog holds the bucket as a database.
 */
import { parse, validate } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCUMENTS } from '../src/catalog/documents.js';
import { tabulatorCatalogFromConfig } from '../src/catalog/tabulator.js';
import { startAthena, type LocalAthena } from './helpers/athena.js';
import { startCatalog, writeQuilt3Login, type LocalCatalog } from './helpers/catalog.js';
import { catalogSchema, graphqlHandler, TABULATOR_CONFIG } from './helpers/catalog-graphql.js';
import { call, connectStdio, isolatedEnv, type Harness } from './helpers/mcp.js';

const DATA_CATALOG = 'quilt-staging-tabulator';
const ALL_WITH_ADMIN = 'buckets,packages,search,catalog,athena,admin';

let catalog: LocalCatalog;
let gql: ReturnType<typeof graphqlHandler>;
let athena: LocalAthena;
let admin: Harness; // alice, a catalog admin, admin toolset on
let user: Harness; // bob, not an admin, admin toolset on
let plain: Harness; // alice, default toolsets

async function desktopWithSession(name: string, extra: Record<string, string> = {}): Promise<Harness> {
  const env = isolatedEnv({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_ATHENA: athena.endpoint, AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9', ...extra });
  const session = catalog.login(name);
  writeQuilt3Login(env, catalog.url, session);
  return connectStdio(env);
}

beforeAll(async () => {
  catalog = await startCatalog();
  gql = graphqlHandler();
  gql.tabulator.admins.add('alice');
  catalog.graphql = gql;
  // As a real stack's config.json: CloudFormation names the analytics bucket after the stack.
  catalog.config = { analyticsBucket: 'quilt-staging-analyticsbucket-1x2y3z', serviceBucket: 'quilt-staging-servicebucket-9q8w' };
  athena = await startAthena();
  athena.catalogs.set(
    DATA_CATALOG,
    new Map([
      [
        'quilt-sandbox',
        [
          {
            name: 'quant',
            columns: [
              { name: 'gene', type: 'varchar' },
              { name: 'tpm', type: 'double' },
              { name: 'study', type: 'varchar' },
              { name: 'sample_id', type: 'varchar' },
            ],
            rows: [
              { gene: 'TP53', tpm: 12.5, study: 'ccle', sample_id: 's1' },
              { gene: 'BRCA1', tpm: 3.25, study: 'ccle', sample_id: 's1' },
              { gene: 'TP53', tpm: 7, study: 'ccle', sample_id: 's2' },
            ],
          },
        ],
      ],
    ]),
  );
  [admin, user, plain] = await Promise.all([
    desktopWithSession('alice', { MCP_TOOLSETS: ALL_WITH_ADMIN }),
    desktopWithSession('bob', { MCP_TOOLSETS: ALL_WITH_ADMIN }),
    desktopWithSession('alice'),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([admin?.close(), user?.close(), plain?.close()]);
  await athena?.close();
  await catalog?.close();
});

describe('documents and naming', () => {
  it('the tabulator documents are valid against the catalog schema', () => {
    for (const name of ['TABULATOR_TABLES', 'TABULATOR_SET_TABLE', 'TABULATOR_RENAME_TABLE', 'TABULATOR_SET_OPEN_QUERY']) {
      const doc = DOCUMENTS[name];
      expect(doc, name).toBeDefined();
      expect(validate(catalogSchema(), parse(doc ?? '')).map((e) => e.message), name).toEqual([]);
    }
  });

  it('tells the tabulator data catalog from config.json as the stack names it', () => {
    expect(tabulatorCatalogFromConfig({ analyticsBucket: 'quilt-staging-analyticsbucket-1x2y3z' })).toBe('quilt-staging-tabulator');
    expect(tabulatorCatalogFromConfig({ serviceBucket: 'Prod-Stack-ServiceBucket-abc' })).toBe('Prod-Stack-tabulator');
    expect(tabulatorCatalogFromConfig({ stackName: 'quilt-tf-dev-federator', analyticsBucket: 'x-analyticsbucket-1' })).toBe('quilt-tf-dev-federator-tabulator');
    expect(tabulatorCatalogFromConfig({ tabulatorDataCatalog: 'custom-cat' })).toBe('custom-cat');
    expect(tabulatorCatalogFromConfig({ analyticsBucket: 'no-logical-id-here' })).toBeUndefined();
  });
});

describe('tools offered', () => {
  it('admin tools are absent unless MCP_TOOLSETS names admin; the read tools are always there', async () => {
    const adminTools = ['tabulator_table_set', 'tabulator_table_rename', 'tabulator_table_delete', 'tabulator_open_query_set'];
    const plainNames = (await plain.client.listTools()).tools.map((t) => t.name);
    // tabulator_query lists the tables without a query; tabulator_tables_list still answers, unlisted.
    expect(plainNames).toContain('tabulator_query');
    expect(plainNames).not.toContain('tabulator_tables_list');
    for (const t of adminTools) expect(plainNames).not.toContain(t);
    const adminList = (await admin.client.listTools()).tools;
    expect(adminList.map((t) => t.name)).toEqual(expect.arrayContaining(adminTools));
    expect(adminList.find((t) => t.name === 'tabulator_table_delete')?.annotations?.destructiveHint).toBe(true);
    expect(adminList.find((t) => t.name === 'tabulator_query')?.annotations?.readOnlyHint).toBe(true);
    // Calling an admin tool that is not offered is an error, not a silent change.
    const r = await call(plain.client, 'tabulator_table_delete', { bucket: 'quilt-sandbox', table: 'quant' });
    expect(r.isError).toBe(true);
    expect(gql.tabulator.tables.get('quilt-sandbox')?.map((t) => t.name)).toContain('quant');
  });
});

describe('tabulator_tables_list', () => {
  it("lists a bucket's tables from the catalog's bucket config, parsed, with the Athena names", async () => {
    const r = await call(plain.client, 'tabulator_tables_list', { bucket: 'quilt-sandbox' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.data_catalog).toBe(DATA_CATALOG);
    expect(r.data.database).toBe('quilt-sandbox');
    expect(r.data.tables).toHaveLength(1);
    const t = r.data.tables[0];
    expect(t.name).toBe('quant');
    expect(t.athena_name).toBe('"quilt-staging-tabulator"."quilt-sandbox"."quant"');
    expect(t.columns).toEqual([
      { name: 'gene', type: 'STRING' },
      { name: 'tpm', type: 'DOUBLE' },
    ]);
    expect(t.capture_columns).toEqual(['study', 'sample_id']);
    expect(t.config.parser).toEqual({ format: 'csv', header: true });
    expect(t.config.source.logical_key).toBe('quant/(?<sample_id>[^/]+)\\.csv$');
    expect(t.config_yaml).toBe(TABULATOR_CONFIG);
    expect(r.text).toContain('"quilt-staging-tabulator"."quilt-sandbox"."quant"');
    const call0 = gql.calls.filter((c) => c.operation === 'TabulatorTables').at(-1);
    expect(call0?.variables).toEqual({ bucket: 'quilt-sandbox' });
    expect(call0?.user).toBe('alice');
  });

  it('an explicit data_catalog wins; a bucket the catalog does not know is a clear error', async () => {
    const r = await call(plain.client, 'tabulator_tables_list', { bucket: 'quilt-demo', data_catalog: 'other-tabulator' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data).toMatchObject({ data_catalog: 'other-tabulator', tables: [] });
    const missing = await call(plain.client, 'tabulator_tables_list', { bucket: 'no-such-bucket' });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('does not know the bucket no-such-bucket');
    expect(missing.text).toContain('bucket_list');
  });
});

describe('tabulator_query', () => {
  it('runs a read query in the tabulator catalog with the bucket as database', async () => {
    const r = await call(plain.client, 'tabulator_query', { bucket: 'quilt-sandbox', query: 'SELECT gene, tpm FROM quant WHERE sample_id = \'s1\' ORDER BY tpm DESC' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.rows).toEqual([
      { gene: 'TP53', tpm: 12.5 },
      { gene: 'BRCA1', tpm: 3.25 },
    ]);
    expect(r.data).toMatchObject({ data_catalog: DATA_CATALOG, database: 'quilt-sandbox', row_count: 2 });
    const start = athena.callsOf('StartQueryExecution').at(-1);
    expect(start?.params.QueryExecutionContext).toEqual({ Catalog: DATA_CATALOG, Database: 'quilt-sandbox' });
  });

  it('refuses writes before any Athena call, with the read-only guard of athena_query_execute', async () => {
    const before = athena.calls.length;
    for (const query of ['DROP TABLE quant', 'SELECT 1; DELETE FROM quant', 'WITH x AS (SELECT 1) INSERT INTO quant SELECT * FROM x']) {
      const r = await call(plain.client, 'tabulator_query', { bucket: 'quilt-sandbox', query });
      expect(r.isError, query).toBe(true);
      expect(r.text).toMatch(/read-only|one statement|not sent/);
    }
    expect(athena.calls.length).toBe(before);
  });
});

describe('admin mutations', () => {
  it('creates, replaces, renames and deletes a table in the catalog', async () => {
    const created = await call(admin.client, 'tabulator_table_set', { bucket: 'quilt-demo', table: 'counts', config: TABULATOR_CONFIG });
    expect(created.isError, created.text).toBe(false);
    expect(created.data).toMatchObject({ bucket: 'quilt-demo', replaced: false, tables: [{ name: 'counts' }] });
    expect(gql.tabulator.tables.get('quilt-demo')).toEqual([{ name: 'counts', config: TABULATOR_CONFIG }]);

    const changed = TABULATOR_CONFIG.replace('format: csv', 'format: parquet');
    const replaced = await call(admin.client, 'tabulator_table_set', { bucket: 'quilt-demo', table: 'counts', config: changed });
    expect(replaced.isError, replaced.text).toBe(false);
    expect(replaced.data.replaced).toBe(true);
    expect(gql.tabulator.tables.get('quilt-demo')?.[0]?.config).toBe(changed);

    const renamed = await call(admin.client, 'tabulator_table_rename', { bucket: 'quilt-demo', table: 'counts', new_name: 'counts_v2' });
    expect(renamed.isError, renamed.text).toBe(false);
    expect(gql.tabulator.tables.get('quilt-demo')?.map((t) => t.name)).toEqual(['counts_v2']);
    const listed = await call(admin.client, 'tabulator_tables_list', { bucket: 'quilt-demo' });
    expect(listed.data.tables.map((t: { name: string }) => t.name)).toEqual(['counts_v2']);

    const deleted = await call(admin.client, 'tabulator_table_delete', { bucket: 'quilt-demo', table: 'counts_v2' });
    expect(deleted.isError, deleted.text).toBe(false);
    expect(gql.tabulator.tables.get('quilt-demo')).toEqual([]);
    const setCall = gql.calls.filter((c) => c.operation === 'TabulatorSetTable').at(-1);
    expect(setCall?.variables).toEqual({ bucket: 'quilt-demo', table: 'counts_v2', config: null });
  });

  it('switches open query', async () => {
    const on = await call(admin.client, 'tabulator_open_query_set', { enabled: true });
    expect(on.isError, on.text).toBe(false);
    expect(on.data).toEqual({ open_query: true });
    expect(gql.tabulator.openQuery).toBe(true);
    const off = await call(admin.client, 'tabulator_open_query_set', { enabled: false });
    expect(off.data).toEqual({ open_query: false });
    expect(gql.tabulator.openQuery).toBe(false);
  });

  it("reports the catalog's InvalidInput and OperationError arms as clear errors, changing nothing", async () => {
    const before = JSON.stringify([...gql.tabulator.tables]);
    const bad = await call(admin.client, 'tabulator_table_set', { bucket: 'quilt-sandbox', table: 'broken', config: 'schema:\n  - name: Bad-Name\n    type: TEXT\nsource:\n  type: s3\nparser:\n  format: xlsx\n' });
    expect(bad.isError).toBe(true);
    expect(bad.text).toContain('The catalog refused to set table broken of quilt-sandbox');
    expect(bad.text).toContain('config: schema[0].name: must match');
    expect(bad.text).toContain('parser.format: must be csv or parquet');

    const taken = await call(admin.client, 'tabulator_table_set', { bucket: 'quilt-sandbox', table: 'quant2', config: TABULATOR_CONFIG });
    expect(taken.isError, taken.text).toBe(false);
    const clash = await call(admin.client, 'tabulator_table_rename', { bucket: 'quilt-sandbox', table: 'quant2', new_name: 'quant' });
    expect(clash.isError).toBe(true);
    expect(clash.text).toContain('newTableName: Table quant already exists');
    const gone = await call(admin.client, 'tabulator_table_rename', { bucket: 'quilt-sandbox', table: 'nope', new_name: 'nope2' });
    expect(gone.text).toContain('tableName: Table nope not found');
    const unknownBucket = await call(admin.client, 'tabulator_table_set', { bucket: 'no-such-bucket', table: 't', config: TABULATOR_CONFIG });
    expect(unknownBucket.isError).toBe(true);
    expect(unknownBucket.text).toContain('does not know the bucket no-such-bucket');
    const opError = await call(admin.client, 'tabulator_table_set', { bucket: 'quilt-sandbox', table: 'explode', config: TABULATOR_CONFIG });
    expect(opError.isError).toBe(true);
    expect(opError.text).toContain('The catalog could not set table explode of quilt-sandbox: Glue is unavailable');
    const missing = await call(admin.client, 'tabulator_table_delete', { bucket: 'quilt-sandbox', table: 'nope' });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('quilt-sandbox has no tabulator table nope');
    expect(missing.text).toContain('quant');
    // Names the tool refuses before asking the catalog.
    const badName = await call(admin.client, 'tabulator_table_set', { bucket: 'quilt-sandbox', table: 'Bad Name', config: TABULATOR_CONFIG });
    expect(badName.isError).toBe(true);

    await call(admin.client, 'tabulator_table_delete', { bucket: 'quilt-sandbox', table: 'quant2' });
    expect(JSON.stringify([...gql.tabulator.tables])).toBe(before);
  });

  it('a non-admin is refused by the catalog with an error that says admins only', async () => {
    const before = JSON.stringify([...gql.tabulator.tables]);
    for (const [tool, args] of [
      ['tabulator_table_set', { bucket: 'quilt-sandbox', table: 'mine', config: TABULATOR_CONFIG }],
      ['tabulator_table_rename', { bucket: 'quilt-sandbox', table: 'quant', new_name: 'theirs' }],
      ['tabulator_table_delete', { bucket: 'quilt-sandbox', table: 'quant' }],
      ['tabulator_open_query_set', { enabled: true }],
    ] as const) {
      const r = await call(user.client, tool, args);
      expect(r.isError, tool).toBe(true);
      expect(r.text, tool).toContain('catalog admins only');
    }
    expect(JSON.stringify([...gql.tabulator.tables])).toBe(before);
    expect(gql.tabulator.openQuery).toBe(false);
  });
});
