/**
 * The Athena tools end to end: the built server over stdio (real MCP client) against a local
 * Athena (test/helpers/athena.ts) whose queries really run (alasql over fixture tables).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReadStatement, convertValue, markdownCell } from '../src/tools/athena-sql.js';
import { fixtureCatalog, startAthena, type LocalAthena } from './helpers/athena.js';
import { signToken, TEST_SECRET } from './helpers/http.js';
import { call, connectStdio, isolatedEnv, type Harness } from './helpers/mcp.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const SECRET_CANARY = 'athena-secret-key-canary';

let athena: LocalAthena;
let h: Harness;
let traceAtStartup = '';
let traceFile = '';

function athenaEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  return isolatedEnv({
    AWS_ACCESS_KEY_ID: 'AKIDATHENALOCAL',
    AWS_SECRET_ACCESS_KEY: SECRET_CANARY,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_ATHENA: athena.endpoint,
    ...extra,
  });
}

beforeAll(async () => {
  athena = await startAthena();
  // Trace module loading in the main server, to check when the Athena SDK is loaded.
  traceFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'athena-trace-')), 'imports.txt');
  const hook = fileURLToPath(new URL('./helpers/trace-imports.mjs', import.meta.url));
  h = await connectStdio(
    athenaEnv({ TRACE_IMPORTS_FILE: traceFile, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim() }),
  );
  await h.client.listTools();
  traceAtStartup = readFileSync(traceFile, 'utf8');
}, 60_000);

afterAll(async () => {
  await h?.close();
  await athena?.close();
});

const sql = (query: string, more: Record<string, unknown> = {}) => call(h.client, 'athena_query_execute', { query, database: 'analytics', ...more });
const samples = fixtureCatalog().get('AwsDataCatalog')?.get('analytics')?.[0]?.rows ?? [];

describe('startup and tool list', () => {
  it('does not load the Athena SDK to list tools, and loads it on the first Athena call', async () => {
    expect(traceAtStartup).toContain('@modelcontextprotocol/sdk');
    expect(traceAtStartup).not.toContain('@aws-sdk');
    const r = await call(h.client, 'athena_workgroups_list');
    expect(r.isError, r.text).toBe(false);
    expect(readFileSync(traceFile, 'utf8')).toContain('@aws-sdk/client-athena');
  });

  it('declares three read tools in the athena toolset, each with an output schema; the former catalog tools still answer', async () => {
    const { tools } = await h.client.listTools();
    const ours = tools.filter((t) => t.name.startsWith('athena_'));
    expect(ours.map((t) => t.name).sort()).toEqual(['athena_catalog', 'athena_query_execute', 'athena_workgroups_list']);
    // athena_catalog answers each level as the former tool of that level did.
    for (const [args, former, formerArgs] of [
      [{}, 'athena_databases_list', {}],
      [{ database: 'analytics' }, 'athena_tables_list', { database: 'analytics' }],
      [{ database: 'analytics', table: 'samples' }, 'athena_table_schema', { database: 'analytics', table: 'samples' }],
    ] as const) {
      const now = await call(h.client, 'athena_catalog', args);
      const old = await call(h.client, former, formerArgs);
      expect(now.isError, now.text).toBe(false);
      expect(now.text).toBe(old.text);
      const { level, ...rest } = now.data;
      expect(rest).toEqual(old.data);
      expect(level).toBe(former === 'athena_databases_list' ? 'databases' : former === 'athena_tables_list' ? 'tables' : 'table');
    }
    expect((await call(h.client, 'athena_catalog', { table: 'samples' })).text).toContain('give database too');
    for (const t of ours) {
      expect(t.outputSchema?.type, t.name).toBe('object');
      expect(t.annotations?.readOnlyHint, t.name).toBe(true);
    }
    const q = ours.find((t) => t.name === 'athena_query_execute');
    expect(q?.annotations?.idempotentHint).toBe(false);
    expect(q?.inputSchema.properties).toMatchObject({ max_rows: { maximum: 1000, minimum: 1 }, timeout_seconds: { maximum: 600 } });
  });
});

describe('workgroups', () => {
  it('lists every page with details, marks usable ones and picks primary by default', async () => {
    const before = athena.calls.length;
    const r = await call(h.client, 'athena_workgroups_list');
    expect(r.isError, r.text).toBe(false);
    const byName = Object.fromEntries((r.data.workgroups as Array<{ name: string }>).map((w) => [w.name, w]));
    expect(Object.keys(byName).sort()).toEqual(['analysts', 'archived', 'no-output', 'primary']);
    expect(byName.primary).toMatchObject({ state: 'ENABLED', usable: true, output_location: 's3://athena-results/primary/', engine_version: 'Athena engine version 3' });
    expect(byName.analysts).toMatchObject({ usable: true, description: 'Team analytics', enforce_configuration: true });
    expect(byName['no-output']).toMatchObject({ state: 'ENABLED', usable: false });
    expect(byName['no-output']).not.toHaveProperty('output_location');
    expect(byName.archived).toMatchObject({ state: 'DISABLED', usable: false });
    expect(r.data.default_workgroup).toBe('primary');
    const calls = athena.calls.slice(before);
    // Four workgroups at two per page: two ListWorkGroups pages, then one GetWorkGroup each.
    expect(calls.filter((c) => c.operation === 'ListWorkGroups')).toHaveLength(2);
    expect(calls.filter((c) => c.operation === 'GetWorkGroup').map((c) => c.params.WorkGroup).sort()).toEqual(['analysts', 'archived', 'no-output', 'primary']);
    expect(r.text).toContain('the default for queries: primary (');
  });

  it('picks the first usable workgroup when primary is not usable, and queries run there', async () => {
    const primary = athena.workgroups.find((w) => w.name === 'primary');
    if (!primary) throw new Error('fixture');
    const saved = primary.outputLocation;
    delete primary.outputLocation;
    try {
      const r = await call(h.client, 'athena_workgroups_list');
      expect(r.data.default_workgroup).toBe('analysts');
      expect(r.data.workgroups.find((w: { name: string }) => w.name === 'primary').usable).toBe(false);
      const q = await sql('SELECT COUNT(*) AS n FROM samples');
      expect(q.isError, q.text).toBe(false);
      expect(q.data.workgroup).toBe('analysts');
      expect(athena.callsOf('StartQueryExecution').at(-1)?.params.WorkGroup).toBe('analysts');
    } finally {
      primary.outputLocation = saved;
      // Forget the remembered default (the list tool refreshes it).
      expect((await call(h.client, 'athena_workgroups_list')).data.default_workgroup).toBe('primary');
    }
  });

  it('uses ATHENA_WORKGROUP and ATHENA_OUTPUT_LOCATION when configured', async () => {
    const h2 = await connectStdio(athenaEnv({ ATHENA_WORKGROUP: 'no-output', ATHENA_OUTPUT_LOCATION: 's3://my-results/athena/' }));
    try {
      const r = await call(h2.client, 'athena_workgroups_list');
      expect(r.data.default_workgroup).toBe('no-output');
      expect(r.data.default_reason).toContain('ATHENA_WORKGROUP');
      expect(r.data.configured_output_location).toBe('s3://my-results/athena/');
      expect(r.data.workgroups.find((w: { name: string }) => w.name === 'no-output').usable).toBe(true);
      const listsBefore = athena.callsOf('ListWorkGroups').length;
      const q = await call(h2.client, 'athena_query_execute', { query: 'SELECT name FROM species ORDER BY name', database: 'analytics' });
      expect(q.isError, q.text).toBe(false);
      expect(q.data.rows.map((row: { name: string }) => row.name)).toEqual(['setosa', 'versicolor', 'virginica']);
      const start = athena.callsOf('StartQueryExecution').at(-1)?.params;
      expect(start).toMatchObject({
        WorkGroup: 'no-output',
        ResultConfiguration: { OutputLocation: 's3://my-results/athena/' },
        QueryExecutionContext: { Database: 'analytics', Catalog: 'AwsDataCatalog' },
      });
      expect(q.data.output_location).toMatch(/^s3:\/\/my-results\/athena\/[0-9a-f-]+\.csv$/);
      // A configured workgroup needs no listing.
      expect(athena.callsOf('ListWorkGroups').length).toBe(listsBefore);
    } finally {
      await h2.close();
    }
  });
});

describe('catalog metadata', () => {
  it('lists databases (all pages) of the default catalog', async () => {
    const r = await call(h.client, 'athena_databases_list');
    expect(r.isError, r.text).toBe(false);
    expect(r.data.catalog).toBe('AwsDataCatalog');
    expect(r.data.databases.map((d: { name: string }) => d.name)).toEqual(['analytics', 'default']);
    expect(athena.callsOf('ListDatabases').at(-1)?.params).toMatchObject({ CatalogName: 'AwsDataCatalog' });
  });

  it('lists tables with type, column count and partition keys, filtered by expression', async () => {
    const r = await call(h.client, 'athena_tables_list', { database: 'analytics' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.tables).toEqual([
      expect.objectContaining({ name: 'samples', type: 'EXTERNAL_TABLE', column_count: 8, partition_keys: ['dt'] }),
      expect.objectContaining({ name: 'species', column_count: 3, partition_keys: [] }),
    ]);
    expect(r.text).toContain('partitioned by dt');
    const f = await call(h.client, 'athena_tables_list', { database: 'analytics', expression: 'sam*' });
    expect(f.data.tables.map((t: { name: string }) => t.name)).toEqual(['samples']);
    expect(athena.callsOf('ListTableMetadata').at(-1)?.params).toMatchObject({ Expression: 'sam*', DatabaseName: 'analytics' });
  });

  it('shows a table schema: columns with types and comments, partition keys, location', async () => {
    const r = await call(h.client, 'athena_table_schema', { database: 'analytics', table: 'samples' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.columns).toHaveLength(8);
    expect(r.data.columns[0]).toEqual({ name: 'id', type: 'integer', comment: 'sample number' });
    expect(r.data.columns.find((c: { name: string }) => c.name === 'price')).toEqual({ name: 'price', type: 'decimal(10,2)' });
    expect(r.data.partition_keys).toEqual([{ name: 'dt', type: 'varchar', comment: 'collection day' }]);
    expect(r.data).toMatchObject({ location: 's3://lab-data/samples/', format: 'parquet', type: 'EXTERNAL_TABLE' });
    expect(r.text).toContain('- species varchar  -- iris species');
  });

  it('says when a database or table does not exist', async () => {
    const t = await call(h.client, 'athena_table_schema', { database: 'analytics', table: 'nope' });
    expect(t.isError).toBe(true);
    expect(t.text).toContain('Table nope not found');
    expect(t.text).toContain('Fix: athena_databases_list and athena_tables_list');
    const d = await call(h.client, 'athena_tables_list', { database: 'missing_db' });
    expect(d.isError).toBe(true);
    expect(d.text).toContain('Database missing_db not found');
  });
});

describe('queries', () => {
  it('runs a SELECT with WHERE and GROUP BY: right rows and number types, polled to completion', async () => {
    const r = await sql('SELECT species, COUNT(*) AS n, AVG(score) AS avg_score FROM samples WHERE passed = true GROUP BY species ORDER BY species');
    expect(r.isError, r.text).toBe(false);
    const expected = ['setosa', 'versicolor', 'virginica'].map((sp) => {
      const rows = samples.filter((s) => s.passed === true && s.species === sp);
      return { species: sp, n: rows.length, avg_score: rows.reduce((a, s) => a + (s.score as number), 0) / rows.length };
    });
    expect(r.data.rows).toHaveLength(3);
    r.data.rows.forEach((row: { species: string; n: number; avg_score: number }, i: number) => {
      expect(row.species).toBe(expected[i]?.species);
      expect(row.n).toBe(expected[i]?.n);
      expect(row.avg_score).toBeCloseTo(expected[i]?.avg_score ?? NaN, 9);
    });
    expect(r.data.columns).toEqual([
      { name: 'species', type: 'varchar' },
      { name: 'n', type: 'bigint' },
      { name: 'avg_score', type: 'double' },
    ]);
    expect(r.data).toMatchObject({ row_count: 3, truncated: false, workgroup: 'primary' });
    expect(r.data.data_scanned_bytes).toBeGreaterThan(0);
    expect(typeof r.data.execution_ms).toBe('number');
    expect(r.data.output_location).toBe(`s3://athena-results/primary/${r.data.query_execution_id}.csv`);
    // QUEUED -> RUNNING -> SUCCEEDED: polled three times.
    const polls = athena.callsOf('GetQueryExecution').filter((c) => c.params.QueryExecutionId === r.data.query_execution_id);
    expect(polls.length).toBe(3);
    expect(r.text).toMatch(/^\| species \| n \| avg_score \|\n\|---\|---\|---\|\n\| setosa \| \d+ \| /);
    expect(r.text).toContain('Rows 1-3, ');
    expect(r.text).toContain(`Query id ${r.data.query_execution_id}, workgroup primary; full result at ${r.data.output_location}.`);
    expect(r.text).toContain('Column types: species varchar, n bigint, avg_score double.');
  });

  it('converts values by column type: integers, doubles, decimals, booleans, NULL, unsafe bigints stay strings', async () => {
    const r = await sql('SELECT id, name, score, passed, note, big, price FROM samples WHERE id <= 10 ORDER BY id');
    expect(r.isError, r.text).toBe(false);
    expect(r.data.columns.map((c: { type: string }) => c.type)).toEqual(['integer', 'varchar', 'double', 'boolean', 'varchar', 'bigint', 'decimal']);
    expect(r.data.rows[0]).toEqual({ id: 1, name: 'sample-0001', score: 0.25, passed: false, note: 'n1', big: '9007199254740993', price: 1.5 });
    expect(r.data.rows[1]).toMatchObject({ id: 2, passed: true, big: 2000 });
    expect(r.data.rows[9]).toMatchObject({ id: 10, note: null });
  });

  it('pages through results beyond 1,000 rows and caps them at max_rows with truncated=true', async () => {
    const before = athena.callsOf('GetQueryResults').length;
    const r = await sql('SELECT id, name FROM samples ORDER BY id', { max_rows: 1000 });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.row_count).toBe(1000);
    expect(r.data.truncated).toBe(true);
    expect(r.data.rows[0]).toEqual({ id: 1, name: 'sample-0001' });
    expect(r.data.rows[999]).toEqual({ id: 1000, name: 'sample-1000' });
    const pages = athena.callsOf('GetQueryResults').slice(before);
    expect(pages.length).toBe(2);
    expect(pages.every((p) => (p.params.MaxResults as number) <= 1000)).toBe(true);
    expect(pages[1]?.params.NextToken).toBeTruthy();
    // The text carries every row returned (header + 1,000), and the way to the rest.
    expect(r.text.split('\n').filter((l) => l.startsWith('| ')).length).toBe(1001);
    expect(r.text).toContain('| 1000 | sample-1000 |');
    expect(r.text).toContain(`Rows 1-1000, `);
    expect(r.text).toContain(`More rows: call again with cursor="${r.data.next_cursor}" and the same query`);
    // The cursor reads on from row 1,001 without running the query again.
    const starts = athena.callsOf('StartQueryExecution').length;
    const more = await sql('SELECT id, name FROM samples ORDER BY id', { max_rows: 1000, cursor: r.data.next_cursor });
    expect(more.isError, more.text).toBe(false);
    expect(athena.callsOf('StartQueryExecution').length).toBe(starts);
    expect(more.data).toMatchObject({ query_execution_id: r.data.query_execution_id, first_row: 1001, row_count: 500, truncated: false });
    expect(more.data.rows[0]).toEqual({ id: 1001, name: 'sample-1001' });
    expect(more.data.rows[499]).toEqual({ id: 1500, name: 'sample-1500' });
    expect(more.text).toContain('Rows 1001-1500 (continued)');
    // Another query's text with this cursor is refused.
    const other = await sql('SELECT id FROM samples', { cursor: r.data.next_cursor });
    expect(other.isError).toBe(true);
    expect(other.text).toContain('The cursor belongs to another query.');
  });

  it('returns exactly max_rows without truncation when that is all there is, and a small default page', async () => {
    const exact = await sql('SELECT id FROM samples WHERE id <= 1000', { max_rows: 1000 });
    expect(exact.data).toMatchObject({ row_count: 1000, truncated: false });
    const before = athena.callsOf('GetQueryResults').length;
    const small = await sql('SELECT id FROM samples');
    expect(small.data).toMatchObject({ row_count: 100, truncated: true });
    expect(athena.callsOf('GetQueryResults').slice(before)).toHaveLength(1);
  });

  it('accepts leading comments and SHOW statements (no header row)', async () => {
    const r = await sql('-- how many?\n/* all of them */\n  SELECT COUNT(*) AS n FROM samples;');
    expect(r.isError, r.text).toBe(false);
    expect(r.data.rows).toEqual([{ n: 1500 }]);
    expect(athena.callsOf('StartQueryExecution').at(-1)?.params.QueryString).toBe('-- how many?\n/* all of them */\n  SELECT COUNT(*) AS n FROM samples');
    const show = await sql('SHOW TABLES');
    expect(show.isError, show.text).toBe(false);
    expect(show.data.rows.map((row: Record<string, string>) => Object.values(row)[0])).toEqual(['samples', 'species']);
  });

  it('reports a SQL error as isError with Athena\'s reason and the query id', async () => {
    const r = await sql('SELECT id FROM samples WHERE');
    expect(r.isError).toBe(true);
    const id = athena.callsOf('StartQueryExecution').length && [...athena.queries.values()].at(-1)?.id;
    expect(r.text).toContain(`query id ${id}`);
    expect(r.text).toContain('FAILED');
    expect(r.text).toContain('SYNTAX_ERROR: Parse error');
    expect(r.text).toContain('Fix: Fix the SQL');
    expect(r.text).not.toMatch(/\n\s+at /);
    const missing = await sql('SELECT * FROM nope');
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain('Table does not exist: nope');
  });

  it('refuses write statements before calling Athena', async () => {
    const refused = [
      "INSERT INTO samples (id) VALUES (1)",
      '/* tidy up */ -- now\n DROP TABLE samples',
      'CREATE TABLE copy AS SELECT * FROM samples',
      "UNLOAD (SELECT * FROM samples) TO 's3://out/' WITH (format = 'PARQUET')",
      'SELECT 1; DROP TABLE samples',
      'EXPLAIN ANALYZE INSERT INTO samples (id) VALUES (1)',
      'MSCK REPAIR TABLE samples',
      '   ',
    ];
    const before = athena.calls.length;
    for (const query of refused) {
      const r = await sql(query);
      expect(r.isError, query).toBe(true);
    }
    expect(athena.calls.length).toBe(before);
    const insert = await sql('insert into samples (id) values (1)');
    expect(insert.text).toContain('read-only statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES)');
    expect(insert.text).toContain('starts with "INSERT"');
    expect((await sql('SELECT 1; DROP TABLE samples')).text).toContain('one statement');
    expect(athena.calls.length).toBe(before);
  });

  it('names a typo in the first keyword as a syntax error, not as a write (nothing is sent)', async () => {
    const before = athena.calls.length;
    const typo = await sql('SELEC * FROM samples');
    expect(typo.isError).toBe(true);
    expect(typo.text).toContain('Syntax error: "SELEC" is not a SQL statement (did you mean SELECT?); the query was not sent to Athena.');
    expect(typo.text).toContain('Fix: Fix the SQL (Trino SQL): a statement starts with SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES.');
    expect(typo.text).not.toContain('writes');
    expect((await sql('EXPLAIN SELCT 1')).text).toContain('"SELCT" is not a SQL statement (did you mean SELECT?)');
    expect((await sql('frobnicate the table')).text).toMatch(/Syntax error: "FROBNICATE" is not a SQL statement; /);
    // A real write keyword is still refused as a write.
    expect((await sql('DELETE FROM samples')).text).toContain('starts with "DELETE"');
    expect(athena.calls.length).toBe(before);
  });

  it('stops a query that runs past timeout_seconds and says so', async () => {
    athena.hangWhen = /hang_me/;
    try {
      const started = performance.now();
      const r = await sql('SELECT id AS hang_me FROM samples', { timeout_seconds: 1 });
      const ms = performance.now() - started;
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/did not finish within 1 s; it was stopped/);
      expect(r.text).toContain('Fix: Raise timeout_seconds');
      const q = [...athena.queries.values()].find((x) => x.sql.includes('hang_me'));
      expect(q?.state).toBe('CANCELLED');
      expect(athena.callsOf('StopQueryExecution').map((c) => c.params.QueryExecutionId)).toContain(q?.id);
      expect(ms).toBeLessThan(4000);
      // Backoff: about 100 ms growing to 1 s, so a handful of polls in one second, not hundreds.
      const polls = athena.callsOf('GetQueryExecution').filter((c) => c.params.QueryExecutionId === q?.id).length;
      expect(polls).toBeGreaterThanOrEqual(3);
      expect(polls).toBeLessThanOrEqual(10);
    } finally {
      athena.hangWhen = undefined;
    }
  });

  it('stops the query when the client cancels the call', async () => {
    athena.hangWhen = /cancel_me/;
    try {
      const controller = new AbortController();
      const pending = h.client.callTool({ name: 'athena_query_execute', arguments: { query: 'SELECT id AS cancel_me FROM samples', database: 'analytics' } }, undefined, {
        signal: controller.signal,
      });
      pending.catch(() => {});
      const deadline = Date.now() + 5000;
      while (![...athena.queries.values()].some((x) => x.sql.includes('cancel_me')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      controller.abort();
      await expect(pending).rejects.toThrow();
      const q = [...athena.queries.values()].find((x) => x.sql.includes('cancel_me'));
      while (q?.state !== 'CANCELLED' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(q?.state).toBe('CANCELLED');
      expect(athena.callsOf('StopQueryExecution').map((c) => c.params.QueryExecutionId)).toContain(q?.id);
    } finally {
      athena.hangWhen = undefined;
    }
  });
});

describe('errors', () => {
  it('names an unknown workgroup, a disabled one and one without a result location', async () => {
    const unknown = await sql('SELECT 1 AS x FROM species', { workgroup: 'nope' });
    expect(unknown.isError).toBe(true);
    expect(unknown.text).toContain('WorkGroup nope is not found');
    expect(unknown.text).toContain('Fix: athena_workgroups_list');
    const disabled = await sql('SELECT 1 AS x FROM species', { workgroup: 'archived' });
    expect(disabled.text).toContain('WorkGroup archived is disabled');
    const noOutput = await sql('SELECT 1 AS x FROM species', { workgroup: 'no-output' });
    expect(noOutput.text).toContain('nowhere to write query results');
    expect(noOutput.text).toContain('ATHENA_OUTPUT_LOCATION');
  });

  it('turns AccessDeniedException into a clear message without secrets', async () => {
    athena.fail = (c) =>
      c.operation === 'ListDatabases'
        ? { type: 'AccessDeniedException', message: 'User: arn:aws:iam::123456789012:user/x is not authorized to perform: athena:ListDatabases' }
        : undefined;
    try {
      const r = await call(h.client, 'athena_databases_list');
      expect(r.isError).toBe(true);
      expect(r.text).toContain('Access denied: your AWS credentials may not list the databases of catalog "AwsDataCatalog"');
      expect(r.text).toContain('Fix:');
      expect(r.text).not.toContain(SECRET_CANARY);
      expect(h.stderr()).not.toContain(SECRET_CANARY);
    } finally {
      athena.fail = undefined;
    }
  });

  it('says when the Athena endpoint is unreachable or there are no credentials', async () => {
    const down = await connectStdio(athenaEnv({ AWS_ENDPOINT_URL_ATHENA: 'http://127.0.0.1:9' }));
    const none = await connectStdio(isolatedEnv({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_ATHENA: athena.endpoint }));
    try {
      const r = await call(down.client, 'athena_workgroups_list');
      expect(r.isError).toBe(true);
      expect(r.text).toContain('Could not reach');
      expect(r.text).toContain('ECONNREFUSED');
      expect(r.text).toContain('AWS_ENDPOINT_URL_');
      const before = athena.calls.length;
      const n = await call(none.client, 'athena_query_execute', { query: 'SELECT 1 AS x FROM species' });
      expect(n.isError).toBe(true);
      expect(n.text).toContain('No AWS credentials were found');
      expect(athena.calls.length).toBe(before);
    } finally {
      await down.close();
      await none.close();
    }
  });
});

describe('JWT mode', () => {
  let sts: LocalSts;
  beforeAll(async () => {
    sts = await startSts();
    sts.accessKeyFor = () => 'ASIAATHENAROLE';
  });
  afterAll(async () => sts?.close());

  const jwtEnv = (token: string) =>
    athenaEnv({
      MCP_REQUIRE_JWT: 'true',
      MCP_JWT_SECRET: TEST_SECRET,
      MCP_JWT_TOKEN: token,
      AWS_ACCESS_KEY_ID: 'ENVKEYCANARY',
      AWS_ENDPOINT_URL_STS: sts.endpoint,
    });

  it('a token without AWS access is told so and nothing is called; a role token queries as that role', async () => {
    const noAws = await connectStdio(jwtEnv(await signToken({ sub: 'alice', buckets: ['lab-data'] })));
    const withRole = await connectStdio(jwtEnv(await signToken({ sub: 'bob', role_arn: 'arn:aws:iam::123456789012:role/Analyst' })));
    try {
      const before = athena.calls.length;
      const r = await call(noAws.client, 'athena_query_execute', { query: 'SELECT COUNT(*) AS n FROM samples', database: 'analytics' });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('This token grants no AWS access');
      const w = await call(noAws.client, 'athena_workgroups_list');
      expect(w.text).toContain('This token grants no AWS access');
      expect(athena.calls.length).toBe(before);

      const q = await call(withRole.client, 'athena_query_execute', { query: 'SELECT COUNT(*) AS n FROM samples', database: 'analytics' });
      expect(q.isError, q.text).toBe(false);
      expect(q.data.rows).toEqual([{ n: 1500 }]);
      const used = new Set(athena.calls.slice(before).map((c) => c.accessKeyId));
      expect([...used]).toEqual(['ASIAATHENAROLE']);
      expect(sts.assumeRoleCalls.at(-1)).toMatchObject({ roleArn: 'arn:aws:iam::123456789012:role/Analyst', sourceIdentity: 'bob' });
    } finally {
      await noAws.close();
      await withRole.close();
    }
  });
});

describe('statement check and value conversion (pure)', () => {
  it('accepts read statements and refuses the rest', () => {
    for (const q of ['SELECT 1', 'with t as (select 1) select * from t', '(SELECT 1) UNION (SELECT 2)', 'SHOW DATABASES', 'DESCRIBE t', 'EXPLAIN SELECT 1', 'EXPLAIN (FORMAT JSON) SELECT 1', 'EXPLAIN ANALYZE SELECT 1', 'VALUES 1, 2', "SELECT ';' AS semi", "SELECT 'it''s; fine'", 'SELECT 1 -- trailing; comment']) {
      expect(checkReadStatement(q).ok, q).toBe(true);
    }
    for (const q of ['INSERT INTO t VALUES (1)', 'DELETE FROM t', 'UPDATE t SET a = 1', 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', 'ALTER TABLE t ADD COLUMNS (x int)', 'EXPLAIN ANALYZE DELETE FROM t', 'SELECT 1; SELECT 2', '', '-- only a comment', 'OPTIMIZE t REWRITE DATA USING BIN_PACK', 'VACUUM t']) {
      expect(checkReadStatement(q).ok, q).toBe(false);
    }
    expect(checkReadStatement('SELECT 1;  -- done').ok).toBe(true);
  });

  it('judges the statement behind WITH and EXPLAIN, and refuses table functions', () => {
    const reads = [
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'with a as (select 1 as n), b as (select n + 1 as n from a) select * from b',
      'WITH a AS (SELECT 1), b AS (SELECT 2), c AS (SELECT 3) SELECT * FROM a, b, c',
      'WITH x(a, b) AS (SELECT 1, 2) SELECT a + b FROM x',
      'WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT sum(n) FROM t',
      'WITH recursive AS (SELECT 1) SELECT * FROM recursive',
      'WITH function AS (SELECT 1) SELECT * FROM function',
      'WITH "odd name" AS (SELECT 1) SELECT * FROM "odd name"',
      "WITH x AS (SELECT ')' AS p, '(' AS q, 'it''s ) INSERT' AS r) SELECT * FROM x",
      'WITH x AS (SELECT "a)b" FROM (SELECT 1 AS "a)b")) SELECT * FROM x',
      'WITH x AS (SELECT 1 -- ) INSERT INTO t\n) SELECT * FROM x',
      'WITH x AS (SELECT 1 /* ) DELETE FROM t ( */) SELECT * FROM x',
      'WITH x AS (SELECT (((1))) AS n, array[(2), (3)] AS m) SELECT * FROM x',
      'WITH x AS (WITH y AS (SELECT 1) SELECT * FROM y) SELECT * FROM x',
      'WITH x AS (SELECT 1) (SELECT * FROM x) UNION (SELECT 2)',
      'WITH x AS (SELECT 1) VALUES 1',
      'WITH x AS (SELECT 1) TABLE x',
      '/* lead */ -- in\n WITH x AS (SELECT 1) SELECT * FROM x;',
      '(SELECT 1) UNION (SELECT 2)',
      '((SELECT 1)) UNION ALL (SELECT 2)',
      'VALUES (1)',
      'SHOW TABLES',
      'SHOW CREATE TABLE t',
      'DESCRIBE t',
      "SELECT 'INSERT INTO t VALUES (1)' AS s",
      'SELECT 1 -- DELETE FROM t',
      'SELECT /* DROP TABLE t */ 1',
      'SELECT table_name, table_schema FROM information_schema.tables',
      'SELECT my_table(x), "table"(1) FROM t',
      "SELECT 'TABLE(' AS s, 'system.query' AS q",
      'SELECT "TABLE (x" FROM t',
      'SELECT t.query FROM t',
      'EXPLAIN WITH x AS (SELECT 1) SELECT * FROM x',
      'EXPLAIN ANALYZE WITH x AS (SELECT 1) SELECT * FROM x',
      'EXPLAIN (TYPE DISTRIBUTED) SELECT 1',
      'EXPLAIN (TYPE DISTRIBUTED, FORMAT TEXT) WITH x AS (SELECT 1) SELECT * FROM x',
      'EXPLAIN ANALYZE VERBOSE SELECT 1',
      'EXPLAIN ANALYZE VERBOSE WITH x AS (SELECT 1) SELECT * FROM x',
      'EXPLAIN (SELECT 1) UNION (SELECT 2)',
    ];
    for (const q of reads) {
      const r = checkReadStatement(q);
      expect(r.ok, `${q}: ${r.ok ? '' : r.reason}`).toBe(true);
    }
    expect(checkReadStatement('WITH x AS (SELECT 1) SELECT * FROM x')).toMatchObject({ ok: true, keyword: 'WITH' });

    const writes = [
      'WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x',
      'with x as (select 1) delete from t',
      'WITH x AS (SELECT 1) UPDATE t SET a = 1',
      'WITH x AS (SELECT 1) MERGE INTO t USING x ON true WHEN MATCHED THEN DELETE',
      "WITH x AS (SELECT 1) UNLOAD (SELECT * FROM x) TO 's3://out/' WITH (format = 'PARQUET')",
      'WITH x AS (SELECT 1) CREATE TABLE t AS SELECT * FROM x',
      'WITH x AS (SELECT 1) DROP TABLE t',
      'WITH RECURSIVE x(n) AS (SELECT 1) INSERT INTO t SELECT n FROM x',
      'WITH a AS (SELECT 1), b AS (SELECT 2), c AS (SELECT 3) INSERT INTO t SELECT * FROM a',
      'WITH x(a, b) AS (SELECT 1, 2) INSERT INTO t SELECT * FROM x',
      'WITH x AS (SELECT (1 + (2 * (3))) AS n) INSERT INTO t SELECT * FROM x',
      "WITH x AS (SELECT ')' AS p, 'it''s (' AS q) INSERT INTO t SELECT * FROM x",
      "WITH x AS (SELECT '' AS e, 'SELECT' AS s) DELETE FROM t",
      'WITH x AS (SELECT "a)b" FROM (SELECT 1 AS "a)b")) INSERT INTO t SELECT * FROM x',
      'WITH x AS (SELECT 1 -- )\n) INSERT INTO t SELECT * FROM x',
      'WITH x AS (SELECT 1 /* ) SELECT ( */) INSERT INTO t SELECT * FROM x',
      'WITH x AS (SELECT 1) /* SELECT */ -- SELECT\n INSERT INTO t SELECT * FROM x',
      'WITH x AS (SELECT 1) (INSERT INTO t SELECT * FROM x)',
      'WITH x AS (SELECT 1) SHOW TABLES',
      'WITH x AS (SELECT 1)',
      'WITH x AS (SELECT 1',
      'WITH x AS SELECT 1',
      'WITH x (SELECT 1) SELECT 1',
      'WITH',
      'WITH FUNCTION f(x bigint) RETURNS bigint RETURN x * 2 SELECT f(1)',
      'with function f() returns varchar return \'x\' select f()',
      'EXPLAIN ANALYZE WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x',
      'EXPLAIN ANALYZE VERBOSE WITH x AS (SELECT 1) DELETE FROM t',
      'EXPLAIN (TYPE DISTRIBUTED) WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x',
      'EXPLAIN (TYPE DISTRIBUTED) DELETE FROM t',
      'EXPLAIN ANALYZE VERBOSE INSERT INTO t VALUES (1)',
      'EXPLAIN EXPLAIN ANALYZE DELETE FROM t',
      'EXPLAIN',
      '(INSERT INTO t VALUES (1))',
      "SELECT * FROM TABLE(system.query(query => 'DELETE FROM t'))",
      "select * from table (mysql.system.query(query => 'DROP TABLE t'))",
      "SELECT * FROM TaBlE/* hi */(system.query(query => 'DELETE FROM t'))",
      "SELECT * FROM TABLE -- hi\n (system.query(query => 'DELETE FROM t'))",
      'SELECT * FROM TABLE(exclude_columns(input => TABLE(t), columns => DESCRIPTOR(a)))',
      "WITH x AS (SELECT * FROM TABLE(system.query(query => 'DELETE FROM t'))) SELECT * FROM x",
      "SELECT * FROM t WHERE id IN (SELECT id FROM TABLE(pg.system.query(query => 'UPDATE u SET a = 1')))",
      "EXPLAIN ANALYZE SELECT * FROM TABLE(system.query(query => 'DELETE FROM t'))",
      "WITH x AS (SELECT 1) TABLE(system.query(query => 'DELETE FROM t'))",
      "SELECT * FROM 1.5table(system.query(query => 'x'))",
      'SELECT system.query FROM t',
      'SELECT * FROM "system"."query"',
      'SELECT * FROM System . /* c */ Query',
      // Trino ends a -- comment at a carriage return too: the rest is SQL, not comment.
      "SELECT * FROM t --\r, TABLE(system.query(query => 'DELETE FROM t'))",
      'SELECT 1 --\r; DELETE FROM t',
    ];
    for (const q of writes) {
      const r = checkReadStatement(q);
      expect(r.ok, q).toBe(false);
      if (!r.ok) expect(r.reason.length, q).toBeGreaterThan(20);
    }

    const cte = checkReadStatement('WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x');
    expect(cte).toMatchObject({ ok: false, keyword: 'WITH ... INSERT' });
    expect(!cte.ok && cte.reason).toContain('followed by "INSERT"');
    const explain = checkReadStatement('EXPLAIN ANALYZE WITH x AS (SELECT 1) DELETE FROM t');
    expect(explain).toMatchObject({ ok: false, keyword: 'EXPLAIN WITH ... DELETE' });
    const fn = checkReadStatement('WITH FUNCTION f() RETURNS int RETURN 1 SELECT f()');
    expect(fn).toMatchObject({ ok: false, keyword: 'WITH FUNCTION' });
    expect(!fn.ok && fn.reason).toContain('Inline function definitions');
    const tf = checkReadStatement("SELECT * FROM TABLE(system.query(query => 'DELETE FROM t'))");
    expect(tf).toMatchObject({ ok: false, keyword: 'TABLE' });
    expect(!tf.ok && tf.reason).toContain('pass SQL through to another engine');
    expect(checkReadStatement('SELECT * FROM system.query')).toMatchObject({ ok: false, keyword: 'system.query' });
    expect(checkReadStatement('WITH x AS (SELECT 1')).toMatchObject({ ok: false, keyword: 'WITH' });
    // The top-level message is unchanged.
    expect(checkReadStatement('DELETE FROM t')).toMatchObject({ ok: false, keyword: 'DELETE' });
    expect(checkReadStatement('EXPLAIN ANALYZE DELETE FROM t')).toMatchObject({ ok: false, keyword: 'EXPLAIN DELETE' });
  });

  it('classifies hostile 1 MB inputs in linear time', () => {
    const mb = 1_000_000;
    const hostile = [
      '('.repeat(mb),
      `SELECT ${'('.repeat(mb)}`,
      `WITH a AS (${'('.repeat(mb)}`,
      'WITH a AS ('.repeat(mb / 11),
      `${'WITH a AS (SELECT 1) '.repeat(mb / 21)}SELECT 1`,
      `WITH ${'a AS (SELECT 1), '.repeat(mb / 18)}b AS (SELECT 1) INSERT INTO t SELECT 1`,
      `SELECT 1 /*${' '.repeat(mb)}`,
      `SELECT 1 --${'-'.repeat(mb)}`,
      `SELECT '${"''".repeat(mb / 2)}`,
      `SELECT "${'x'.repeat(mb)}`,
      `SELECT ${'table '.repeat(mb / 6)}`,
      `SELECT ${'x'.repeat(mb)}`,
      `SELECT ${'1.'.repeat(mb / 2)}`,
      `EXPLAIN ${'EXPLAIN ('.repeat(mb / 9)}`,
      `SELECT 1 FROM t WHERE ${'a = 1 AND '.repeat(mb / 10)} true`,
    ];
    for (const q of hostile) {
      const started = performance.now();
      const r = checkReadStatement(q);
      const ms = performance.now() - started;
      expect(ms, `${q.slice(0, 30)}... took ${ms.toFixed(1)} ms`).toBeLessThan(1000);
      expect(typeof r.ok).toBe('boolean');
    }
    expect(checkReadStatement('('.repeat(mb)).ok).toBe(false);
    expect(checkReadStatement('WITH a AS ('.repeat(mb / 11)).ok).toBe(false);
    expect(checkReadStatement(`${'WITH a AS (SELECT 1) '.repeat(mb / 21)}SELECT 1`).ok).toBe(true);
  });

  it('converts by type and renders a Markdown table', () => {
    expect(convertValue('42', 'integer')).toBe(42);
    expect(convertValue('9007199254740993', 'bigint')).toBe('9007199254740993');
    expect(convertValue('-12', 'bigint')).toBe(-12);
    expect(convertValue('1.5E3', 'double')).toBe(1500);
    expect(convertValue('NaN', 'double')).toBe('NaN');
    expect(convertValue('12.30', 'decimal(10,2)')).toBe(12.3);
    expect(convertValue('12345678901234567.89', 'decimal(38,2)')).toBe('12345678901234567.89');
    expect(convertValue('true', 'boolean')).toBe(true);
    expect(convertValue(undefined, 'varchar')).toBe(null);
    expect(convertValue('', 'varchar')).toBe('');
    expect(convertValue('2024-01-02', 'date')).toBe('2024-01-02');
    // Cells are whole (the text carries every row it returns), one line each.
    expect(['x|y', null, 'line\nbreak', 2, 'a\\b'].map(markdownCell)).toEqual(['x\\|y', 'null', 'line\\nbreak', '2', 'a\\\\b']);
  });
});
