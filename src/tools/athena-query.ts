import { createHash } from 'node:crypto';
import type { AthenaClient } from '@aws-sdk/client-athena';
import { z } from 'zod';
import { DEFAULT_CATALOG, defaultWorkgroup, fromAthenaError, withAthena } from '../aws/athena.js';
import type { AthenaModule } from '../aws/clients.js';
import { uncancelled } from '../call-scope.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { formatBytes } from '../format.js';
import { redact } from '../redact.js';
import { checkReadStatement, convertValue, markdownCell as cell, READ_KEYWORDS } from './athena-sql.js';
import { moreLine } from './args.js';
import { defineTool, type ToolExtras } from './define.js';

/** Polling GetQueryExecution: start fast (most small queries finish within a second), back off to 1 s. */
const POLL_START_MS = 100;
const POLL_MAX_MS = 1000;
const POLL_FACTOR = 1.5;

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
  const stopped = await uncancelled(() => client.send(new sdk.StopQueryExecutionCommand({ QueryExecutionId: id })))
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

/** The query arguments athena_query_execute and tabulator_query share. */
export const queryArgs = {
  max_rows: z.number().int().min(1).max(1000).default(100).describe('Rows to return'),
  timeout_seconds: z.number().int().min(1).max(600).default(60).describe('Seconds before the query is stopped'),
  cursor: z.string().optional().describe('next_cursor of the same query (reads on)'),
};

export const queryOutput = {
  query_execution_id: z.string(),
  workgroup: z.string().optional(),
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
  rows: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))),
  first_row: z.number().describe('Position of the first row in the whole result (1 = its first row)'),
  row_count: z.number().describe('Rows returned'),
  truncated: z.boolean().describe('More rows exist than were returned'),
  next_cursor: z.string().optional().describe('Pass back as cursor, with the same query, for the next rows'),
  data_scanned_bytes: z.number().optional(),
  execution_ms: z.number().optional(),
  output_location: z.string().optional().describe('Where Athena wrote the full result (CSV)'),
};

export const athenaQueryExecute = defineTool({
  name: 'athena_query_execute',
  title: 'Run an Athena query',
  description:
    'Run one read-only Trino SQL statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES) in Athena. ' +
    "IAM (in JWT mode the role's), not bucket claims, bounds what it reads. Athena bills by data scanned: filter on partition keys.",
  toolset: 'athena',
  kind: 'read',
  // A query re-run scans (and bills) again, and results can change between runs.
  idempotent: false,
  input: {
    query: z.string().max(262_144).describe('One SQL statement'),
    database: z.string().min(1).max(255).optional().describe('Database of unqualified tables'),
    catalog: z.string().min(1).max(256).optional().describe('Data catalog (default AwsDataCatalog)'),
    workgroup: z.string().min(1).max(128).optional().describe('Default: see athena_workgroups_list'),
    ...queryArgs,
  },
  output: queryOutput,
  handler: (args, ctx, extras) => runReadQuery(ctx, extras, args),
});

export interface ReadQuery {
  query: string;
  database?: string | undefined;
  catalog?: string | undefined;
  workgroup?: string | undefined;
  max_rows: number;
  timeout_seconds: number;
  cursor?: string | undefined;
}

/**
 * Where the next row of a result is: the NextToken of the GetQueryResults page holding it (none:
 * the first page) and how many of that page's rows (Athena's header row included) come before it.
 */
interface Position {
  token?: string | undefined;
  skip: number;
  /** Rows of the result before it. */
  row: number;
}

/**
 * The text carries every row it returns, so the rows of one answer are bounded by the text they
 * make (about 15,000 tokens); the rest is a cursor away, in both halves alike.
 */
const TEXT_CHARS = 60_000;

const queryDigest = (sql: string) => createHash('sha256').update(sql).digest('base64url').slice(0, 22);

/**
 * Checks that the statement only reads, runs it (or, with a cursor, goes back to the result it
 * already has), waits, and reads rows from where the cursor says: athena_query_execute, and
 * tabulator_query with the tabulator's catalog and the bucket as database.
 */
export async function runReadQuery(ctx: RuntimeContext, extras: ToolExtras, args: ReadQuery) {
  const check = checkReadStatement(args.query);
  if (!check.ok) {
    throw new ToolError(
      check.keyword === undefined || check.syntax ? 'invalid_input' : 'unsupported',
      check.reason,
      check.syntax
        ? `Fix the SQL (Trino SQL): a statement starts with ${READ_KEYWORDS.join(', ')}.`
        : check.keyword === undefined
          ? 'Send exactly one statement.'
          : 'This server only reads with Athena; run writes (INSERT, CTAS, UNLOAD, DDL) in the Athena console or your own tools.',
    );
  }
  const digest = queryDigest(check.statement);
  let resume: { id: string; at: Position } | undefined;
  if (args.cursor) {
    const c = ctx.cursors.open('athena_results', args.cursor);
    if (typeof c.id !== 'string' || typeof c.skip !== 'number' || typeof c.row !== 'number' || (c.token !== undefined && typeof c.token !== 'string')) {
      throw new ToolError('invalid_input', 'The cursor is not one this tool returned.', 'Pass next_cursor from the previous result unchanged.');
    }
    if (c.q !== digest) {
      throw new ToolError('invalid_input', 'The cursor belongs to another query.', 'Send the same query text with the cursor, or run the query again without it.');
    }
    resume = { id: c.id, at: { token: c.token as string | undefined, skip: c.skip, row: c.row } };
  }
  const { max_rows: maxRows } = args;
  let queryId = resume?.id ?? '';
  return withAthena(ctx, { action: 'run the query in', resource: 'Athena' }, async (client, sdk, clients) => {
    let workgroup = args.workgroup;
    if (!resume) {
      workgroup ??= (await defaultWorkgroup(ctx, clients, client, sdk)).name;
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
    }

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

    // Rows from the cursor's position (or the start), up to max_rows and the text's budget; one row
    // more is looked at to know whether more exist, and the cursor points at it.
    const start: Position = resume?.at ?? { skip: 0, row: 0 };
    let columns: Array<{ name: string; type: string }> = [];
    let keys: string[] = [];
    const rows: Row[] = [];
    const lines: string[] = [];
    let chars = 0;
    let token = start.token;
    let skip = start.skip;
    let next: Position | undefined;
    for (let first = true; ; first = false) {
      const want = maxRows - rows.length + skip + 2;
      const page = await client.send(
        new sdk.GetQueryResultsCommand({ QueryExecutionId: queryId, MaxResults: Math.min(1000, want), NextToken: token }),
        { abortSignal: extras.signal },
      );
      const raw = page.ResultSet?.Rows ?? [];
      if (first) {
        const info = page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
        columns = info.map((c) => ({ name: c.Label || c.Name || '', type: c.Type ?? 'varchar' }));
        keys = uniqueNames(columns.map((c) => c.name));
      }
      // SELECT results start with a header row of column names (DDL-like SHOW/DESCRIBE do not).
      const head = token === undefined ? raw[0]?.Data?.map((d) => d.VarCharValue) : undefined;
      const isHeader =
        done.statementType !== 'DDL' && head !== undefined && head.length === columns.length && head.every((v, i) => v === columns[i]?.name);
      for (let i = Math.max(skip, isHeader ? 1 : 0); i < raw.length; i++) {
        const row: Row = {};
        (raw[i]!.Data ?? []).forEach((d, j) => {
          row[keys[j] ?? `_col${j}`] = convertValue(d.VarCharValue, columns[j]?.type ?? 'varchar');
        });
        const line = `| ${keys.map((k) => cell(row[k])).join(' | ')} |`;
        if (rows.length >= maxRows || (rows.length > 0 && chars + line.length > TEXT_CHARS)) {
          next = { token, skip: i, row: start.row + rows.length };
          break;
        }
        rows.push(row);
        lines.push(line);
        chars += line.length + 1;
      }
      if (next || !page.NextToken) break;
      token = page.NextToken;
      skip = 0;
    }

    const next_cursor = next ? ctx.cursors.seal('athena_results', { id: queryId, q: digest, ...(next.token ? { token: next.token } : {}), skip: next.skip, row: next.row }) : undefined;
    const first_row = start.row + 1;
    const last = start.row + rows.length;
    const data = {
      query_execution_id: queryId,
      workgroup: done.workgroup ?? workgroup,
      columns: columns.map((c, i) => ({ name: keys[i] ?? c.name, type: c.type })),
      rows,
      first_row,
      row_count: rows.length,
      truncated: next_cursor !== undefined,
      next_cursor,
      data_scanned_bytes: done.dataScanned,
      execution_ms: done.executionMs,
      output_location: done.outputLocation,
    };
    const scanned = done.dataScanned !== undefined ? `, ${formatBytes(done.dataScanned)} scanned` : '';
    const time = done.executionMs !== undefined ? ` in ${done.executionMs} ms` : '';
    const summary =
      `${rows.length ? `Rows ${first_row}-${last}` : 'No rows'}${first_row > 1 ? ' (continued)' : ''}${scanned}${time}. ` +
      `Query id ${queryId}${data.workgroup ? `, workgroup ${data.workgroup}` : ''}${data.output_location ? `; full result at ${data.output_location}` : ''}.`;
    const table = keys.length ? [`| ${keys.map(cell).join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`, ...lines].join('\n') : '';
    const types = data.columns.length ? `Column types: ${data.columns.map((c) => `${c.name} ${c.type}`).join(', ')}.` : undefined;
    const more = moreLine('rows', 'cursor', next_cursor, ' and the same query (it reads on from there without running the query again)');
    return { data, text: [table, summary, types, more].filter(Boolean).join('\n') };
  });
}
