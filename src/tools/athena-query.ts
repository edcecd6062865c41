import type { AthenaClient } from '@aws-sdk/client-athena';
import { z } from 'zod';
import { DEFAULT_CATALOG, defaultWorkgroup, fromAthenaError, withAthena } from '../aws/athena.js';
import { NOT_CANCELLED, type AthenaModule } from '../aws/clients.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { formatBytes } from '../format.js';
import { redact } from '../redact.js';
import { checkReadStatement, convertValue, markdownTable } from './athena-sql.js';
import { defineTool, type ToolExtras } from './define.js';

/** Polling GetQueryExecution: start fast (most small queries finish within a second), back off to 1 s. */
const POLL_START_MS = 100;
const POLL_MAX_MS = 1000;
const POLL_FACTOR = 1.5;
/** Rows shown in the text; all of them are in the structured result. */
const TEXT_ROWS = 20;

type Row = Record<string, string | number | boolean | null>;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Unique keys for the row objects: `SELECT a, a` gives columns a and a_2. */
function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const count = (seen.get(n) ?? 0) + 1;
    seen.set(n, count);
    return count === 1 ? n : `${n}_${count}`;
  });
}

interface Finished {
  state: string;
  reason?: string | undefined;
  userError: boolean;
  statementType?: string | undefined;
  dataScanned?: number | undefined;
  executionMs?: number | undefined;
  outputLocation?: string | undefined;
  workgroup?: string | undefined;
}

/**
 * Polls until the query leaves QUEUED/RUNNING. On timeout or client cancellation the query is
 * stopped (StopQueryExecution), so it does not go on scanning (and billing) unattended.
 */
async function waitForQuery(
  client: AthenaClient,
  sdk: AthenaModule,
  id: string,
  timeoutMs: number,
  extras: ToolExtras,
): Promise<Finished> {
  const deadline = performance.now() + timeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  const stopOn = AbortSignal.any([extras.signal, timeout]);
  let delay = POLL_START_MS;
  for (let polls = 0; ; polls++) {
    if (stopOn.aborted) break;
    let q;
    try {
      q = (await client.send(new sdk.GetQueryExecutionCommand({ QueryExecutionId: id }), { abortSignal: stopOn })).QueryExecution;
    } catch (err) {
      if (stopOn.aborted) break;
      throw err;
    }
    const state = q?.Status?.State ?? 'UNKNOWN';
    if (state !== 'QUEUED' && state !== 'RUNNING') {
      const stats = q?.Statistics;
      return {
        state,
        reason: q?.Status?.StateChangeReason ?? q?.Status?.AthenaError?.ErrorMessage,
        // ErrorCategory 2 is USER: the query itself is wrong (syntax, missing table or column).
        userError: q?.Status?.AthenaError?.ErrorCategory === 2,
        statementType: q?.StatementType,
        dataScanned: stats?.DataScannedInBytes,
        executionMs: stats?.EngineExecutionTimeInMillis ?? stats?.TotalExecutionTimeInMillis,
        outputLocation: q?.ResultConfiguration?.OutputLocation,
        workgroup: q?.WorkGroup,
      };
    }
    if (polls % 5 === 4) await extras.progress(polls + 1, undefined, `Athena query ${id} is ${state}`);
    await sleep(Math.min(delay, Math.max(0, deadline - performance.now())), stopOn);
    delay = Math.min(POLL_MAX_MS, delay * POLL_FACTOR);
  }
  // Timed out or cancelled: stop the query, whatever the outcome of that call (sent even though the
  // call is cancelled: that is when it matters most).
  const stopped = await client
    .send(new sdk.StopQueryExecutionCommand({ QueryExecutionId: id }), NOT_CANCELLED)
    .then(() => true)
    .catch(() => false);
  const how = stopped ? 'it was stopped' : 'stopping it failed, so it may still be running';
  if (extras.signal.aborted) {
    throw new ToolError('timeout', `The Athena query ${id} was cancelled by the client; ${how}.`);
  }
  throw new ToolError(
    'timeout',
    `The Athena query ${id} did not finish within ${Math.round(timeoutMs / 1000)} s; ${how}.`,
    'Raise timeout_seconds (up to 600), or make the query cheaper: filter on partition keys (athena_table_schema lists them) or add a LIMIT.',
  );
}

export const athenaQueryExecute = defineTool({
  name: 'athena_query_execute',
  title: 'Run an Athena query',
  description:
    'Run one read-only SQL statement in Athena (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES; Trino SQL) and return up to ' +
    'max_rows rows as objects, with column types. Writes (INSERT, CREATE, DROP, UNLOAD...) and table functions are ' +
    'refused. In JWT mode what a query can reach is set by the assumed role\'s IAM policy (Athena, Glue and S3 ' +
    'permissions), not by the token\'s buckets claim; the read-only check guards against mistakes and is not a sandbox. ' +
    'Use athena_table_schema first, and filter on partition keys: Athena bills by data scanned.',
  toolset: 'athena',
  kind: 'read',
  // A query re-run scans (and bills) again, and results can change between runs.
  idempotent: false,
  input: {
    query: z.string().min(1).max(262_144).describe('One SQL statement, e.g. SELECT col, COUNT(*) FROM my_table GROUP BY col'),
    database: z.string().min(1).max(255).optional().describe('Database for unqualified table names'),
    catalog: z.string().min(1).max(256).optional().describe('Data catalog (default "AwsDataCatalog")'),
    workgroup: z.string().min(1).max(128).optional().describe('Workgroup to run in (default: see athena_workgroups_list)'),
    max_rows: z.number().int().min(1).max(1000).default(100).describe('Most rows to return (1-1000)'),
    timeout_seconds: z.number().int().min(1).max(600).default(60).describe('Stop the query after this many seconds (1-600)'),
  },
  output: {
    query_execution_id: z.string(),
    workgroup: z.string().optional(),
    columns: z.array(z.object({ name: z.string(), type: z.string() })),
    rows: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))),
    row_count: z.number().describe('Rows returned (at most max_rows)'),
    truncated: z.boolean().describe('More rows exist than were returned'),
    data_scanned_bytes: z.number().optional(),
    execution_ms: z.number().optional(),
    output_location: z.string().optional().describe('Where Athena wrote the full result (CSV)'),
  },
  handler: (args, ctx, extras) => runReadQuery(ctx, extras, args),
});

export interface ReadQuery {
  query: string;
  database?: string | undefined;
  catalog?: string | undefined;
  workgroup?: string | undefined;
  max_rows: number;
  timeout_seconds: number;
}

/**
 * Checks that the statement only reads, runs it, waits and pages the rows: athena_query_execute, and
 * tabulator_query with the tabulator's catalog and the bucket as database.
 */
export async function runReadQuery(ctx: RuntimeContext, extras: ToolExtras, args: ReadQuery) {
  const check = checkReadStatement(args.query);
  if (!check.ok) {
    throw new ToolError(
      check.keyword === undefined ? 'invalid_input' : 'unsupported',
      check.reason,
      check.keyword === undefined
        ? 'Send exactly one statement.'
        : 'This server only reads with Athena; run writes (INSERT, CTAS, UNLOAD, DDL) in the Athena console or your own tools.',
    );
  }
  const { max_rows: maxRows } = args;
  let queryId = '';
  return withAthena(ctx, { action: 'run the query in', resource: 'Athena' }, async (client, sdk, clients) => {
    const workgroup = args.workgroup ?? (await defaultWorkgroup(ctx, clients, client, sdk)).name;
    const outputLocation = clients.athenaDefaults.outputLocation;
    const target = `Athena${workgroup ? ` workgroup "${workgroup}"` : ''}`;
    try {
      const started = await client.send(
        new sdk.StartQueryExecutionCommand({
          QueryString: check.statement,
          QueryExecutionContext:
            args.database || args.catalog ? { Database: args.database, Catalog: args.catalog ?? DEFAULT_CATALOG } : undefined,
          WorkGroup: workgroup,
          ResultConfiguration: outputLocation ? { OutputLocation: outputLocation } : undefined,
        }),
      );
      queryId = started.QueryExecutionId ?? '';
    } catch (err) {
      throw fromAthenaError(err, { action: 'start the query in', resource: target });
    }
    if (!queryId) throw new ToolError('upstream_error', 'Athena started the query but returned no query id.');
    ctx.logger.debug('athena query started', { id: queryId, workgroup: workgroup ?? '(athena default)' });

    const done = await waitForQuery(client, sdk, queryId, args.timeout_seconds * 1000, extras);
    if (done.state !== 'SUCCEEDED') {
      const reason = redact(done.reason ?? 'Athena gave no reason').slice(0, 2000);
      const cancelled = done.state === 'CANCELLED';
      throw new ToolError(
        cancelled ? 'conflict' : done.userError ? 'invalid_input' : 'upstream_error',
        `The Athena query ${cancelled ? 'was cancelled' : 'failed'} (${done.state}, query id ${queryId}): ${reason}`,
        cancelled
          ? 'Someone stopped it (the console, another client, or a workgroup limit); run it again if needed.'
          : done.userError
            ? 'Fix the SQL (Athena uses Trino SQL); athena_table_schema shows the columns and their types.'
            : 'Retry; if it fails again, the reason above says what Athena needs.',
      );
    }

    // Results: at most max_rows (+1 to know whether more exist), pages of at most 1,000 rows.
    let columns: Array<{ name: string; type: string }> = [];
    let keys: string[] = [];
    const rows: Row[] = [];
    let token: string | undefined;
    let first = true;
    do {
      const want = maxRows + 1 - rows.length + (first ? 1 : 0);
      const page = await client.send(
        new sdk.GetQueryResultsCommand({ QueryExecutionId: queryId, MaxResults: Math.min(1000, want), NextToken: token }),
        { abortSignal: extras.signal },
      );
      token = page.NextToken;
      let data = page.ResultSet?.Rows ?? [];
      if (first) {
        const info = page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
        columns = info.map((c) => ({ name: c.Label || c.Name || '', type: c.Type ?? 'varchar' }));
        keys = uniqueNames(columns.map((c) => c.name));
        // SELECT results start with a header row of column names (DDL-like SHOW/DESCRIBE do not).
        const head = data[0]?.Data?.map((d) => d.VarCharValue);
        const isHeader =
          done.statementType !== 'DDL' &&
          head !== undefined &&
          head.length === columns.length &&
          head.every((v, i) => v === columns[i]?.name || v === info[i]?.Name);
        if (isHeader) data = data.slice(1);
        first = false;
      }
      for (const r of data) {
        const row: Row = {};
        (r.Data ?? []).forEach((d, i) => {
          const key = keys[i] ?? `_col${i}`;
          row[key] = convertValue(d.VarCharValue, columns[i]?.type ?? 'varchar');
        });
        rows.push(row);
      }
    } while (token && rows.length <= maxRows);
    const truncated = rows.length > maxRows;
    if (truncated) rows.length = maxRows;

    const data = {
      query_execution_id: queryId,
      workgroup: done.workgroup ?? workgroup,
      columns: columns.map((c, i) => ({ name: keys[i] ?? c.name, type: c.type })),
      rows,
      row_count: rows.length,
      truncated,
      data_scanned_bytes: done.dataScanned,
      execution_ms: done.executionMs,
      output_location: done.outputLocation,
    };
    const scanned = done.dataScanned !== undefined ? `, ${formatBytes(done.dataScanned)} scanned` : '';
    const time = done.executionMs !== undefined ? ` in ${done.executionMs} ms` : '';
    const summary =
      `${rows.length} row(s)${truncated ? ` shown; more exist (max_rows=${maxRows})` : ''}${scanned}${time}. ` +
      `Query id ${queryId}${data.output_location ? `; full result at ${data.output_location}` : ''}.` +
      (rows.length > TEXT_ROWS ? ` The table shows the first ${TEXT_ROWS}; all ${rows.length} are in the structured result.` : '');
    const table = markdownTable(keys, rows, TEXT_ROWS);
    return { data, text: table ? `${table}\n\n${summary}` : summary };
  });
}
