/**
 * A local Athena on 127.0.0.1 speaking Athena's JSON 1.1 protocol (POST /, `x-amz-target:
 * AmazonAthena.<Operation>`), with workgroups, a Glue-like catalog and queries that really run:
 * alasql executes the SQL over in-memory fixture tables. Queries go QUEUED -> RUNNING -> SUCCEEDED
 * over a few polls (or FAILED with the engine's message), results come paginated with the header
 * row first like Athena's, and a test can make a query hang until StopQueryExecution.
 * Every call is recorded (operation, params, signing access key).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import alasql from 'alasql';

export interface AthenaColumn {
  name: string;
  /** Athena type: varchar, integer, bigint, double, boolean, date, decimal(10,2)... */
  type: string;
  comment?: string;
}

export interface AthenaTable {
  name: string;
  columns: AthenaColumn[];
  partitionKeys?: AthenaColumn[];
  location?: string;
  /** Rows keyed by column name (partition keys included). */
  rows: Array<Record<string, unknown>>;
}

export interface AthenaWorkgroup {
  name: string;
  state: 'ENABLED' | 'DISABLED';
  description?: string;
  outputLocation?: string;
  enforce?: boolean;
  engineVersion?: string;
}

export interface AthenaCall {
  operation: string;
  params: Record<string, unknown>;
  accessKeyId: string | undefined;
}

export interface AthenaQuery {
  id: string;
  sql: string;
  database: string | undefined;
  catalog: string;
  workgroup: string;
  outputLocation: string;
  state: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  reason?: string;
  polls: number;
  hang: boolean;
  statementType: 'DML' | 'DDL' | 'UTILITY';
  columns: Array<{ name: string; type: string }>;
  /** Values as Athena returns them: strings, undefined for NULL. */
  rows: Array<Array<string | undefined>>;
  scannedBytes: number;
  submittedAt: number;
  finishedAt?: number;
}

export interface LocalAthena {
  endpoint: string;
  calls: AthenaCall[];
  workgroups: AthenaWorkgroup[];
  /** catalog -> database -> tables; queries run in any of them. */
  catalogs: Map<string, Map<string, AthenaTable[]>>;
  queries: Map<string, AthenaQuery>;
  /** Queries whose SQL matches never finish (until StopQueryExecution). */
  hangWhen: RegExp | undefined;
  /** Answer a call with an error instead (e.g. AccessDeniedException). */
  fail: ((call: AthenaCall) => { type: string; message: string; status?: number } | undefined) | undefined;
  /** Polls a query spends QUEUED, then RUNNING, before it finishes. */
  pollsQueued: number;
  pollsRunning: number;
  /** Page size of ListWorkGroups / ListDatabases / ListTableMetadata when the caller asks for more. */
  listPageSize: number;
  /** Calls of one operation. */
  callsOf(operation: string): AthenaCall[];
  close(): Promise<void>;
}

class AthenaError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const SQL_TYPES: Record<string, string> = {
  varchar: 'STRING',
  string: 'STRING',
  char: 'STRING',
  date: 'STRING',
  timestamp: 'STRING',
  integer: 'INT',
  int: 'INT',
  tinyint: 'INT',
  smallint: 'INT',
  bigint: 'INT',
  double: 'NUMBER',
  float: 'NUMBER',
  real: 'NUMBER',
  decimal: 'NUMBER',
  boolean: 'BOOLEAN',
};
const baseType = (t: string) => t.toLowerCase().replace(/\(.*$/, '');

/** The fixture: a `samples` table of 1,500 rows (pagination), a small `species` table, workgroups. */
export function fixtureCatalog(): Map<string, Map<string, AthenaTable[]>> {
  const species = ['setosa', 'versicolor', 'virginica'];
  const samples: AthenaTable = {
    name: 'samples',
    columns: [
      { name: 'id', type: 'integer', comment: 'sample number' },
      { name: 'name', type: 'varchar' },
      { name: 'species', type: 'varchar', comment: 'iris species' },
      { name: 'score', type: 'double' },
      { name: 'passed', type: 'boolean' },
      { name: 'note', type: 'varchar', comment: 'null for every 10th sample' },
      { name: 'big', type: 'bigint' },
      { name: 'price', type: 'decimal(10,2)' },
    ],
    partitionKeys: [{ name: 'dt', type: 'varchar', comment: 'collection day' }],
    location: 's3://lab-data/samples/',
    rows: Array.from({ length: 1500 }, (_, i) => {
      const id = i + 1;
      return {
        id,
        name: `sample-${String(id).padStart(4, '0')}`,
        species: species[id % 3],
        score: (id % 100) / 4,
        passed: id % 2 === 0,
        note: id % 10 === 0 ? null : `n${id}`,
        // Beyond 2^53 for the first sample: must not come back as a (rounded) JSON number.
        big: id === 1 ? '9007199254740993' : id * 1000,
        price: `${id}.50`,
        dt: `2024-01-${String((id % 28) + 1).padStart(2, '0')}`,
      };
    }),
  };
  const speciesTable: AthenaTable = {
    name: 'species',
    columns: [
      { name: 'name', type: 'varchar' },
      { name: 'family', type: 'varchar' },
      { name: 'discovered', type: 'integer', comment: 'year' },
    ],
    location: 's3://lab-data/species/',
    rows: [
      { name: 'setosa', family: 'Iridaceae', discovered: 1753 },
      { name: 'versicolor', family: 'Iridaceae', discovered: 1753 },
      { name: 'virginica', family: 'Iridaceae', discovered: 1830 },
    ],
  };
  const events: AthenaTable = { name: 'events', columns: [{ name: 'at', type: 'timestamp' }, { name: 'kind', type: 'varchar' }], rows: [] };
  return new Map([
    [
      'AwsDataCatalog',
      new Map([
        ['analytics', [samples, speciesTable]],
        ['default', [events]],
      ]),
    ],
  ]);
}

export function fixtureWorkgroups(): AthenaWorkgroup[] {
  return [
    { name: 'primary', state: 'ENABLED', outputLocation: 's3://athena-results/primary/', engineVersion: 'Athena engine version 3' },
    { name: 'analysts', state: 'ENABLED', description: 'Team analytics', outputLocation: 's3://athena-results/analysts/', enforce: true, engineVersion: 'Athena engine version 3' },
    { name: 'no-output', state: 'ENABLED', description: 'No result location' },
    { name: 'archived', state: 'DISABLED', outputLocation: 's3://athena-results/archived/' },
  ];
}

function page<T>(items: T[], params: Record<string, unknown>, pageSize: number, limit: number): { items: T[]; next: string | undefined } {
  const max = params.MaxResults === undefined ? pageSize : Number(params.MaxResults);
  if (!Number.isInteger(max) || max < 1 || max > limit) {
    throw new AthenaError('InvalidRequestException', `MaxResults must be between 1 and ${limit}.`);
  }
  const start = params.NextToken ? Number(Buffer.from(String(params.NextToken), 'base64url').toString()) : 0;
  const end = start + Math.min(max, pageSize);
  return { items: items.slice(start, end), next: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

const epoch = (ms: number) => ms / 1000;

/** Athena's wire form of a JS value: a string, or undefined for NULL. */
function wire(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number' && !Number.isInteger(v)) return String(v);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function inferType(values: unknown[]): string {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return 'varchar';
  if (present.every((v) => typeof v === 'boolean')) return 'boolean';
  if (present.every((v) => typeof v === 'number')) return present.every((v) => Number.isInteger(v)) ? 'bigint' : 'double';
  return 'varchar';
}

export async function startAthena(options: { pageSize?: number } = {}): Promise<LocalAthena> {
  const athena: LocalAthena = {
    endpoint: '',
    calls: [],
    workgroups: fixtureWorkgroups(),
    catalogs: fixtureCatalog(),
    queries: new Map(),
    hangWhen: undefined,
    fail: undefined,
    pollsQueued: 1,
    pollsRunning: 1,
    listPageSize: options.pageSize ?? 2,
    callsOf: (op) => athena.calls.filter((c) => c.operation === op),
    close: async () => {},
  };

  // One alasql database per Athena database, built from the fixtures at the first query.
  const engines = new Map<string, InstanceType<typeof alasql.Database>>();
  const catalogTables = (catalog: string) => [...athena.catalogs.entries()].find(([name]) => name.toLowerCase() === catalog.toLowerCase())?.[1];
  const engine = (catalog: string, database: string): InstanceType<typeof alasql.Database> => {
    let db = engines.get(`${catalog.toLowerCase()}/${database}`);
    if (!db) {
      const tables = catalogTables(catalog)?.get(database);
      if (!tables) throw new AthenaError('MetadataException', `Database ${database} not found.`);
      db = new alasql.Database(`athena_${database}_${randomUUID().slice(0, 8)}`);
      for (const t of tables) {
        const cols = [...t.columns, ...(t.partitionKeys ?? [])];
        db.exec(`CREATE TABLE ${t.name} (${cols.map((c) => `${c.name} ${SQL_TYPES[baseType(c.type)] ?? 'STRING'}`).join(', ')})`);
        (db.tables as Record<string, { data: unknown[] }>)[t.name]!.data = t.rows.map((r) => ({ ...r }));
      }
      engines.set(`${catalog.toLowerCase()}/${database}`, db);
    }
    return db;
  };

  const tablesOf = (catalog: string, database: string): AthenaTable[] => {
    const cat = [...athena.catalogs.entries()].find(([name]) => name.toLowerCase() === catalog.toLowerCase())?.[1];
    if (!cat) throw new AthenaError('MetadataException', `Catalog ${catalog} not found.`);
    const tables = cat.get(database.toLowerCase());
    if (!tables) throw new AthenaError('MetadataException', `Database ${database} not found.`);
    return tables;
  };

  const tableMeta = (t: AthenaTable) => ({
    Name: t.name,
    CreateTime: epoch(Date.UTC(2024, 0, 1)),
    TableType: 'EXTERNAL_TABLE',
    Columns: t.columns.map((c) => ({ Name: c.name, Type: c.type, ...(c.comment ? { Comment: c.comment } : {}) })),
    PartitionKeys: (t.partitionKeys ?? []).map((c) => ({ Name: c.name, Type: c.type, ...(c.comment ? { Comment: c.comment } : {}) })),
    Parameters: {
      ...(t.location ? { location: t.location } : {}),
      classification: 'parquet',
      inputformat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
    },
  });

  const workgroup = (name: string): AthenaWorkgroup => {
    const wg = athena.workgroups.find((w) => w.name === name);
    if (!wg) throw new AthenaError('InvalidRequestException', `WorkGroup ${name} is not found.`);
    return wg;
  };

  /** Runs the SQL with alasql; a failure becomes FAILED with the engine's message. */
  const execute = (q: AthenaQuery) => {
    const started = performance.now();
    try {
      // Any catalog of the fixture runs queries (a tabulator catalog stands for the federated one).
      if (!catalogTables(q.catalog)) throw new Error(`CATALOG_NOT_FOUND: Catalog '${q.catalog}' does not exist`);
      const db = engine(q.catalog, q.database ?? 'default');
      const previous = alasql.options.modifier;
      alasql.options.modifier = 'RECORDSET';
      let out: { columns?: Array<{ columnid: string; dbtypeid?: string }>; data?: Array<Record<string, unknown>> } | number;
      try {
        out = db.exec(q.sql) as typeof out;
      } finally {
        alasql.options.modifier = previous;
      }
      const data = typeof out === 'object' && Array.isArray(out.data) ? out.data : Array.isArray(out) ? (out as Array<Record<string, unknown>>) : [];
      let names = typeof out === 'object' && out.columns?.length ? out.columns.map((c) => c.columnid) : Object.keys(data[0] ?? {});
      if (names.length === 0) {
        // Empty result: take the names from the parsed SELECT list.
        const stmt = (alasql.parse(q.sql) as unknown as { statements: Array<{ columns?: Array<{ as?: string; columnid?: string }> }> }).statements[0];
        names = (stmt?.columns ?? []).map((c, i) => c.as ?? c.columnid ?? `_col${i}`);
      }
      const declared = new Map<string, string>();
      for (const t of catalogTables(q.catalog)?.get(q.database ?? 'default') ?? []) {
        if (new RegExp(`\\b${t.name}\\b`, 'i').test(q.sql)) {
          for (const c of [...t.columns, ...(t.partitionKeys ?? [])]) declared.set(c.name, c.type);
          q.scannedBytes += Buffer.byteLength(JSON.stringify(t.rows));
        }
      }
      q.columns = names.map((n) => ({ name: n, type: declared.get(n) ?? inferType(data.map((r) => r[n])) }));
      q.rows = data.map((r) => names.map((n) => wire(r[n])));
      q.statementType = /^\s*(show|describe)\b/i.test(q.sql) ? 'DDL' : /^\s*explain\b/i.test(q.sql) ? 'UTILITY' : 'DML';
      q.state = 'SUCCEEDED';
    } catch (err) {
      q.state = 'FAILED';
      const msg = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
      q.reason = /^[A-Z_]+:/.test(msg) ? msg : /parse error/i.test(msg) ? `SYNTAX_ERROR: ${msg}` : `USER_ERROR: ${msg}`;
    }
    q.finishedAt = Date.now() + Math.round(performance.now() - started);
  };

  const queryOf = (params: Record<string, unknown>): AthenaQuery => {
    const q = athena.queries.get(String(params.QueryExecutionId));
    if (!q) throw new AthenaError('InvalidRequestException', `QueryExecution ${String(params.QueryExecutionId)} was not found`);
    return q;
  };

  /** StartQueryExecution ClientRequestToken -> the query it started. */
  const byToken = new Map<string, string>();
  const handlers: Record<string, (p: Record<string, unknown>) => unknown> = {
    ListWorkGroups: (p) => {
      const { items, next } = page(athena.workgroups, p, athena.listPageSize, 50);
      return {
        WorkGroups: items.map((w) => ({
          Name: w.name,
          State: w.state,
          ...(w.description ? { Description: w.description } : {}),
          CreationTime: epoch(Date.UTC(2024, 0, 1)),
          EngineVersion: { SelectedEngineVersion: 'AUTO', EffectiveEngineVersion: w.engineVersion ?? 'Athena engine version 3' },
        })),
        ...(next ? { NextToken: next } : {}),
      };
    },
    GetWorkGroup: (p) => {
      const w = workgroup(String(p.WorkGroup));
      return {
        WorkGroup: {
          Name: w.name,
          State: w.state,
          ...(w.description ? { Description: w.description } : {}),
          CreationTime: epoch(Date.UTC(2024, 0, 1)),
          Configuration: {
            ...(w.outputLocation ? { ResultConfiguration: { OutputLocation: w.outputLocation } } : {}),
            EnforceWorkGroupConfiguration: w.enforce ?? false,
            PublishCloudWatchMetricsEnabled: false,
            EngineVersion: { SelectedEngineVersion: 'AUTO', EffectiveEngineVersion: w.engineVersion ?? 'Athena engine version 3' },
          },
        },
      };
    },
    ListDatabases: (p) => {
      const catalog = String(p.CatalogName);
      const cat = [...athena.catalogs.entries()].find(([name]) => name.toLowerCase() === catalog.toLowerCase())?.[1];
      if (!cat) throw new AthenaError('MetadataException', `Catalog ${catalog} not found.`);
      const { items, next } = page([...cat.keys()], p, athena.listPageSize, 50);
      return { DatabaseList: items.map((d) => ({ Name: d, Description: `${d} database` })), ...(next ? { NextToken: next } : {}) };
    },
    ListTableMetadata: (p) => {
      let tables = tablesOf(String(p.CatalogName), String(p.DatabaseName));
      if (p.Expression) {
        const re = new RegExp(`^${String(p.Expression).replace(/(?<!\.)\*/g, '.*')}$`, 'i');
        tables = tables.filter((t) => re.test(t.name));
      }
      const { items, next } = page(tables, p, athena.listPageSize, 50);
      return { TableMetadataList: items.map(tableMeta), ...(next ? { NextToken: next } : {}) };
    },
    GetTableMetadata: (p) => {
      const t = tablesOf(String(p.CatalogName), String(p.DatabaseName)).find((x) => x.name === String(p.TableName).toLowerCase());
      if (!t) throw new AthenaError('MetadataException', `Table ${String(p.TableName)} not found in database ${String(p.DatabaseName)}.`);
      return { TableMetadata: tableMeta(t) };
    },
    StartQueryExecution: (p) => {
      const wg = workgroup(String(p.WorkGroup ?? 'primary'));
      if (wg.state !== 'ENABLED') throw new AthenaError('InvalidRequestException', `WorkGroup ${wg.name} is disabled.`);
      const asked = (p.ResultConfiguration as { OutputLocation?: string } | undefined)?.OutputLocation;
      const output = wg.enforce ? wg.outputLocation : (asked ?? wg.outputLocation);
      if (!output) {
        throw new AthenaError(
          'InvalidRequestException',
          'No output location provided. An output location is required either through the Workgroup result configuration setting or as an API input.',
        );
      }
      const ctx = (p.QueryExecutionContext ?? {}) as { Database?: string; Catalog?: string };
      // As Athena: a request sent again with the same ClientRequestToken (an SDK retry) is the same query.
      const token = typeof p.ClientRequestToken === 'string' ? p.ClientRequestToken : undefined;
      const started = token === undefined ? undefined : byToken.get(token);
      if (started) return { QueryExecutionId: started };
      const id = randomUUID();
      if (token !== undefined) byToken.set(token, id);
      const sql = String(p.QueryString);
      athena.queries.set(id, {
        id,
        sql,
        database: ctx.Database,
        catalog: ctx.Catalog ?? 'AwsDataCatalog',
        workgroup: wg.name,
        outputLocation: `${output.replace(/\/?$/, '/')}${id}.csv`,
        state: 'QUEUED',
        polls: 0,
        hang: athena.hangWhen?.test(sql) ?? false,
        statementType: 'DML',
        columns: [],
        rows: [],
        scannedBytes: 0,
        submittedAt: Date.now(),
      });
      return { QueryExecutionId: id };
    },
    GetQueryExecution: (p) => {
      const q = queryOf(p);
      if (q.state === 'QUEUED' || q.state === 'RUNNING') {
        q.polls++;
        if (q.polls > athena.pollsQueued) q.state = 'RUNNING';
        if (!q.hang && q.polls > athena.pollsQueued + athena.pollsRunning) execute(q);
      }
      const failed = q.state === 'FAILED';
      return {
        QueryExecution: {
          QueryExecutionId: q.id,
          Query: q.sql,
          StatementType: q.statementType,
          ResultConfiguration: { OutputLocation: q.outputLocation },
          QueryExecutionContext: { ...(q.database ? { Database: q.database } : {}), Catalog: q.catalog },
          Status: {
            State: q.state,
            ...(q.reason ? { StateChangeReason: q.reason } : {}),
            SubmissionDateTime: epoch(q.submittedAt),
            ...(q.finishedAt ? { CompletionDateTime: epoch(q.finishedAt) } : {}),
            ...(failed ? { AthenaError: { ErrorCategory: 2, ErrorType: 1006, Retryable: false, ErrorMessage: q.reason } } : {}),
          },
          Statistics: {
            ...(q.finishedAt ? { EngineExecutionTimeInMillis: Math.max(1, q.finishedAt - q.submittedAt), TotalExecutionTimeInMillis: q.finishedAt - q.submittedAt } : {}),
            DataScannedInBytes: q.scannedBytes,
          },
          WorkGroup: q.workgroup,
          EngineVersion: { SelectedEngineVersion: 'AUTO', EffectiveEngineVersion: 'Athena engine version 3' },
        },
      };
    },
    GetQueryResults: (p) => {
      const q = queryOf(p);
      if (q.state !== 'SUCCEEDED') {
        throw new AthenaError(
          'InvalidRequestException',
          q.state === 'QUEUED' || q.state === 'RUNNING'
            ? `Query has not yet finished. Current state: ${q.state}`
            : `Query did not finish successfully. Final query state: ${q.state}`,
        );
      }
      // Athena puts a header row of column names first for DML (SELECT) results.
      const all = q.statementType === 'DML' ? [q.columns.map((c) => c.name), ...q.rows] : q.rows;
      const { items, next } = page(all, p, 1000, 1000);
      return {
        UpdateCount: 0,
        ResultSet: {
          Rows: items.map((r) => ({ Data: r.map((v) => (v === undefined ? {} : { VarCharValue: v })) })),
          ResultSetMetadata: {
            ColumnInfo: q.columns.map((c) => ({
              CatalogName: 'hive',
              SchemaName: '',
              TableName: '',
              Name: c.name,
              Label: c.name,
              Type: baseType(c.type),
              Precision: 0,
              Scale: 0,
              Nullable: 'UNKNOWN',
              CaseSensitive: baseType(c.type) === 'varchar',
            })),
          },
        },
        ...(next ? { NextToken: next } : {}),
      };
    },
    StopQueryExecution: (p) => {
      const q = queryOf(p);
      if (q.state === 'QUEUED' || q.state === 'RUNNING') {
        q.state = 'CANCELLED';
        q.reason = 'Query cancelled by user';
        q.finishedAt = Date.now();
      }
      return {};
    },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        res.end(text);
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('AmazonAthena.') ? target.slice('AmazonAthena.'.length) : '';
      let params: Record<string, unknown> = {};
      try {
        params = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        return send(400, { __type: 'SerializationException', message: 'Body is not JSON' });
      }
      const call: AthenaCall = { operation, params, accessKeyId: /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1] };
      athena.calls.push(call);
      if (req.method !== 'POST' || !handlers[operation]) {
        return send(400, { __type: 'UnknownOperationException', message: `Unknown operation ${target}` });
      }
      const failure = athena.fail?.(call);
      if (failure) return send(failure.status ?? 400, { __type: failure.type, message: failure.message });
      try {
        send(200, handlers[operation](params));
      } catch (err) {
        if (err instanceof AthenaError) return send(err.status, { __type: err.type, message: err.message });
        send(500, { __type: 'InternalServerException', message: err instanceof Error ? err.message : String(err) });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  athena.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  athena.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return athena;
}
