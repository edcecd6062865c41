/**
 * Every tool's answer is complete in each half, for clients that hand the model only one of them
 * (issue 25): each identifier-like value of the structured content (URIs, hashes, cursors, keys,
 * names, ids, locations) appears in the text, and each line of guidance in the text (a next step,
 * a warning, what was left out) has its field in the structured content: either it carries a
 * next_* value (the cursor it names) or its sentences are in a string field (a note). What a text
 * leaves out on purpose is listed below per tool, with why. Tools whose answer is an object's
 * bytes have no structured half: the bytes reach a client once.
 *
 * Every tool is called at least once, on the demo data (local S3, Athena, catalog), through the
 * built server over stdio.
 */
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allTools } from '../src/tools/index.js';
import { startAthena, type LocalAthena } from './helpers/athena.js';
import { startCatalog, writeQuilt3Login, type LocalCatalog } from './helpers/catalog.js';
import { graphqlHandler, TABULATOR_CONFIG } from './helpers/catalog-graphql.js';
import { DEMO_BUCKET, putDemoObjects } from './helpers/demo-data.js';
import { jwtEnv, signToken } from './helpers/http.js';
import { call, connectStdio, isolatedEnv, s3Env, type Harness, type ToolCall } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

/** Keys whose string values a next call may need: they must be in the text. */
const IDENTIFIERS = new Set([
  'uri', 's3_uri', 'url', 'catalog_url', 'quilt_uri', 'top_hash', 'hash', 'latest', 'next_cursor', 'next_continuation_token',
  'version_id', 'key', 'logical_key', 'physical_key', 'name', 'bucket', 'query_execution_id', 'output_location', 'location',
  'workgroup', 'default_workgroup', 'tag', 'etag', 'arn', 'account', 'user_id', 'email', 'database', 'catalog', 'table',
  'data_catalog', 'athena_name', 'removed', 'prefix', 'common_prefixes', 'new_name',
]);

/** Text lines that give guidance: a next step, a warning, what was left out. */
const GUIDANCE = /\b(call again|more|pass|use|try|withheld|truncated|capped|could not|cannot|not searched|stopped|narrow|raise|instead|left out|not scanned|fix|only)\b/i;

/** What a tool's text leaves out on purpose: a path (regex over "a.b[0].c") and why. */
type Omission = [RegExp, string];
const LEFT_OUT: Record<string, Omission[]> = {
  bucket_list: [[/^buckets\[\d+\]\.uri$/, 's3://<name>: the name is in the text']],
  bucket_objects_list: [
    [/^objects\[\d+\]\.etag$/, 'no tool takes an ETag (bucket_object_info shows it)'],
  ],
  bucket_objects_put: [[/^results\[\d+\]\.etag$/, 'no tool takes an ETag (bucket_object_info shows it)']],
  package_list: [[/^packages\[\d+\]\.(quilt_uri|catalog_url)$/, 'built from bucket, name and top hash, all in the text (catalog_uri makes them)']],
  package_browse: [
    [/^items\[\d+\]\.(hash|physical_key)$/, "an entry's hash is read by package_diff, which compares them; physical_key is the s3_uri in quilt3's quoted form"],
  ],
  package_diff: [
    [/^(added|removed|modified)\[\d+\]\.(from|to)\.(hash|physical_key)$/, 'entry hashes are what the diff compares; physical_key is the s3_uri in quilt3\'s quoted form'],
  ],
  search_catalog: [
    [/^results\[\d+\]\.quilt_uri$/, 'a quilt_uri is bucket, name and hash, all in the text'],
  ],
  search_suggest: [[/^packages\[\d+\]\.quilt_uri$/, 'bucket and name are in the text']],
  tabulator_tables_list: [
    [/^tables\[\d+\]\.(name|config.*)$/, 'the name is in the Athena name in the text; the parsed config is the YAML the table was set with'],
  ],
  tabulator_query: [
    [/^tables\[\d+\]\.(name|config.*)$/, 'without a query, as tabulator_tables_list: the name is in the Athena name in the text'],
  ],
};
/** Guidance lines a text gives that are data, not guidance (a cue word inside a value). */
const NOT_GUIDANCE: Record<string, RegExp[]> = {};

function strings(v: unknown, at = '', out: Array<{ path: string; key: string; value: string }> = []) {
  if (typeof v === 'string') out.push({ path: at, key: at.replace(/\[\d+\]$/, '').split('.').pop() ?? '', value: v });
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${at}[${i}]`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) strings(x, at ? `${at}.${k}` : k, out);
  return out;
}

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
/** Omissions that a call needed: the list stays true only if each is needed by some call. */
const usedOmissions = new Set<Omission>();

/** The checks, as a list of problems (empty: complete). */
function completeness(tool: string, r: ToolCall): string[] {
  const problems: string[] = [];
  if (r.isError) return [`${tool} failed: ${r.text}`];
  const def = allTools.find((t) => t.name === tool);
  if (!def?.output) {
    if (r.raw.structuredContent !== undefined) problems.push(`${tool} has no output schema but sent structured content`);
    return problems;
  }
  const all = strings(r.data);
  const omitted = LEFT_OUT[tool] ?? [];
  for (const s of all) {
    if (!IDENTIFIERS.has(s.key) || s.value === '') continue;
    if (r.text.includes(s.value)) continue;
    const why = omitted.find(([re]) => re.test(s.path));
    if (why) usedOmissions.add(why);
    else problems.push(`${tool}: ${s.path} = ${JSON.stringify(s.value.slice(0, 120))} is not in the text`);
  }
  const fieldText = squash(all.map((s) => s.value).join('\n'));
  const nextValues = all.filter((s) => /^next_/.test(s.key)).map((s) => s.value);
  for (const line of r.text.split('\n')) {
    if (!GUIDANCE.test(line) || (NOT_GUIDANCE[tool] ?? []).some((re) => re.test(line))) continue;
    if (nextValues.some((v) => line.includes(v))) continue;
    // Every sentence of the line is in a string field (data values included: a line may quote them).
    const sentences = line.split(/(?<=[.;:])\s+/).map(squash).filter((x) => x.length > 3);
    const missing = sentences.filter((x) => !fieldText.includes(x.replace(/[.;:]$/, '')));
    if (missing.length) problems.push(`${tool}: guidance without a field: ${JSON.stringify(missing)}`);
  }
  return problems;
}

let s3: LocalS3;
let sts: LocalSts;
let athena: LocalAthena;
let catalog: LocalCatalog;
let desk: Harness; // desktop, local S3, no catalog
let cat: Harness; // desktop, quilt3 login at the local catalog (a catalog admin), every toolset
let jwt: Harness; // JWT mode over stdio
const checked = new Set<string>();
const problems: string[] = [];
let hashes: string[] = [];
/** A granted local folder (QUILT_MCP_ROOTS) of the desktop server. */
let folder: string;

async function check(h: Harness, tool: string, args: Record<string, unknown> = {}): Promise<ToolCall> {
  const r = await call(h.client, tool, args);
  checked.add(tool);
  problems.push(...completeness(tool, r));
  return r;
}

beforeAll(async () => {
  s3 = await startS3({ buckets: [DEMO_BUCKET] });
  sts = await startSts();
  sts.identities.set('S3RVER', 'arn:aws:iam::123456789012:user/demo-user');
  athena = await startAthena();
  await putDemoObjects(s3);
  catalog = await startCatalog();
  const gql = graphqlHandler();
  gql.tabulator.admins.add('alice');
  catalog.graphql = gql;
  catalog.config = { analyticsBucket: 'quilt-staging-analyticsbucket-1x2y3z' };
  athena.catalogs.set('quilt-staging-tabulator', new Map([['quilt-sandbox', [{ name: 'quant', columns: [{ name: 'gene', type: 'varchar' }], rows: [{ gene: 'TP53' }] }]]]));

  folder = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'answers-local-')));
  desk = await connectStdio(s3Env(s3.endpoint, { AWS_ENDPOINT_URL_STS: sts.endpoint, AWS_ENDPOINT_URL_ATHENA: athena.endpoint, QUILT_MCP_ROOTS: folder }));
  const env = isolatedEnv({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_ATHENA: athena.endpoint,
    AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9',
    MCP_TOOLSETS: 'buckets,packages,search,catalog,athena,diagnostics,admin',
  });
  writeQuilt3Login(env, catalog.url, catalog.login('alice'));
  cat = await connectStdio(env);
  jwt = await connectStdio(
    jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, { MCP_JWT_TOKEN: await signToken({ sub: 'carol', role_arn: 'arn:aws:iam::123456789012:role/demo', buckets: [DEMO_BUCKET] }) }),
  );

  // Two revisions of one package, and a second package, on the demo data.
  const made = await call(desk.client, 'package_create', {
    bucket: DEMO_BUCKET,
    name: 'demo/measurements',
    source_uri_prefix: `s3://${DEMO_BUCKET}/data/`,
    message: 'Four samples from 2024',
    meta: { instrument: 'pH-meter 3', samples: 4 },
  });
  expect(made.isError, made.text).toBe(false);
  const updated = await call(desk.client, 'package_update', {
    bucket: DEMO_BUCKET,
    name: 'demo/measurements',
    message: 'Add observations',
    add: [{ logical_key: 'observations.md', text: '# Observations\n', meta: { author: 'claude' } }],
    remove: ['notes/'],
  });
  expect(updated.isError, updated.text).toBe(false);
  hashes = [made.data.top_hash, updated.data.top_hash];
}, 120_000);

afterAll(async () => {
  await Promise.all([desk?.close(), cat?.close(), jwt?.close()]);
  await Promise.all([s3?.close(), sts?.close(), athena?.close(), catalog?.close()]);
});

describe('each half of every answer is complete', () => {
  it('buckets and objects', async () => {
    await check(desk, 'auth_status');
    await check(desk, 'bucket_list');
    await check(desk, 'bucket_objects_list', { bucket: DEMO_BUCKET, delimiter: '/', max_keys: 2 });
    await check(desk, 'bucket_objects_list', { bucket: DEMO_BUCKET, prefix: 'data/' });
    await check(desk, 'bucket_object_info', { uri: `s3://${DEMO_BUCKET}/README.md` });
    await check(desk, 'bucket_object_text', { uri: `s3://${DEMO_BUCKET}/data/measurements.csv`, max_bytes: 20 });
    await s3.put(DEMO_BUCKET, 'img/pixel.bin', Buffer.from([0, 1, 2, 3, 254, 255]), 'application/octet-stream');
    await check(desk, 'bucket_object_fetch', { uri: `s3://${DEMO_BUCKET}/img/pixel.bin` });
    await check(desk, 'bucket_object_link', { uri: `s3://${DEMO_BUCKET}/README.md` });
    await check(desk, 'bucket_objects_put', { bucket: DEMO_BUCKET, items: [{ key: 'notes/a.md', text: '# a' }] });
    await check(desk, 'discover_permissions', { buckets: [DEMO_BUCKET] });
    expect(problems).toEqual([]);
  });

  it('packages', async () => {
    await check(desk, 'package_create', { bucket: DEMO_BUCKET, name: 'team/analysis', entries: [{ logical_key: 'README.md', text: '# Analysis\n' }], message: 'first' });
    await check(desk, 'package_create_from_s3', { bucket: DEMO_BUCKET, name: 'team/notes', source_uri_prefix: `s3://${DEMO_BUCKET}/data/notes/` });
    await check(desk, 'package_list', { bucket: DEMO_BUCKET, limit: 2 });
    await check(desk, 'package_revisions', { bucket: DEMO_BUCKET, name: 'demo/measurements', limit: 1 });
    await check(desk, 'package_list', { bucket: DEMO_BUCKET, name: 'demo/measurements', limit: 1 });
    await check(desk, 'package_browse', { bucket: DEMO_BUCKET, name: 'demo/measurements', recursive: true, limit: 1 });
    await check(desk, 'package_browse', { bucket: DEMO_BUCKET, name: 'demo/measurements', hash_or_tag: hashes[0], path: 'notes/' });
    await check(desk, 'package_diff', { bucket: DEMO_BUCKET, name: 'demo/measurements', from: hashes[0]!, to: hashes[1]!, limit: 1 });
    await check(desk, 'package_update', { bucket: DEMO_BUCKET, name: 'team/analysis', message: 'second' });
    await check(desk, 'package_delete', { bucket: DEMO_BUCKET, name: 'team/notes' });
    // Local: a folder into the local registry, installed, pushed to S3.
    writeFileSync(path.join(folder, 'a.csv'), 'x\n1\n');
    await check(desk, 'package_create', { bucket: 'local', name: 'me/local', source_uri_prefix: folder, message: 'mine' });
    writeFileSync(path.join(folder, 'a.csv'), 'x\n2\n');
    await check(desk, 'package_install', { bucket: DEMO_BUCKET, name: 'demo/measurements', dest: path.join(folder, 'inst') });
    await check(desk, 'package_install', { bucket: DEMO_BUCKET, name: 'demo/measurements', dest: path.join(folder, 'inst') });
    await check(desk, 'package_install', { bucket: 'local', name: 'me/local', dest: folder });
    await check(desk, 'package_create', { bucket: 'local', name: 'me/text', entries: [{ logical_key: 't.md', text: '# t' }] });
    await check(desk, 'package_push', { bucket: 'local', name: 'me/text', to_bucket: DEMO_BUCKET, message: 'pushed' });
    await check(desk, 'catalog_uri', { bucket: DEMO_BUCKET, package: 'demo/measurements', hash: hashes[1], path: 'observations.md' });
    expect(problems).toEqual([]);
  });

  it('search without a catalog and with one', async () => {
    await check(desk, 'search_catalog', { query: 'measurements' });
    await check(desk, 'search_catalog', { query: 'csv OR md', buckets: [DEMO_BUCKET], limit: 1 });
    await check(desk, 'search_suggest', { query: 'demo' });
    await check(cat, 'search_catalog', { query: 'cells', limit: 2 });
    await check(cat, 'search_suggest', { query: 'cell' });
    await check(cat, 'bucket_list');
    await check(cat, 'catalog_uri', { bucket: 'quilt-demo', path: 'a/b.csv' });
    expect(problems).toEqual([]);
  });

  it('Athena and tabulator', async () => {
    await check(desk, 'athena_workgroups_list');
    await check(desk, 'athena_catalog');
    await check(desk, 'athena_catalog', { database: 'analytics' });
    await check(desk, 'athena_catalog', { database: 'analytics', table: 'samples' });
    await check(desk, 'athena_databases_list');
    await check(desk, 'athena_tables_list', { database: 'analytics' });
    await check(desk, 'athena_table_schema', { database: 'analytics', table: 'samples' });
    await check(desk, 'athena_query_execute', { database: 'analytics', query: 'SELECT id, name FROM samples ORDER BY id', max_rows: 5 });
    await check(cat, 'tabulator_tables_list', { bucket: 'quilt-sandbox' });
    await check(cat, 'tabulator_query', { bucket: 'quilt-sandbox' });
    await check(cat, 'tabulator_query', { bucket: 'quilt-sandbox', query: 'SELECT gene FROM quant' });
    await check(cat, 'tabulator_table_set', { bucket: 'quilt-demo', table: 'counts', config: TABULATOR_CONFIG });
    await check(cat, 'tabulator_table_rename', { bucket: 'quilt-demo', table: 'counts', new_name: 'counts_v2' });
    await check(cat, 'tabulator_table_delete', { bucket: 'quilt-demo', table: 'counts_v2' });
    await check(cat, 'tabulator_open_query_set', { enabled: true });
    expect(problems).toEqual([]);
  });

  it('diagnostics (JWT mode)', async () => {
    await check(jwt, 'jwt_diagnostics');
    await check(jwt, 'session_diagnostics');
    await check(jwt, 'validate_jwt_token', { token: await signToken({ sub: 'dave', buckets: ['b'] }) });
    await check(jwt, 'validate_jwt_token', { token: 'not-a-token' });
    expect(problems).toEqual([]);
  });

  it('covered every tool, and every omission listed is one some text makes', () => {
    expect(allTools.map((t) => t.name).filter((n) => !checked.has(n))).toEqual([]);
    const unused = Object.entries(LEFT_OUT).flatMap(([tool, list]) => list.filter((o) => !usedOmissions.has(o)).map((o) => `${tool} ${o[0]}`));
    expect(unused).toEqual([]);
  });

  it('the checks fail on an answer that misses a value or a note', () => {
    const fake = (text: string, data: Record<string, unknown>): ToolCall => ({ isError: false, text, data, raw: { content: [{ type: 'text', text }], structuredContent: data } });
    expect(completeness('package_list', fake('1 package(s) in bkt-x', { bucket: 'bkt-x', packages: [{ name: 'a/b', top_hash: 'f'.repeat(64), revisions: 1, quilt_uri: 'q' }] }))).toEqual([
      `package_list: packages[0].name = "a/b" is not in the text`,
      `package_list: packages[0].top_hash = "${'f'.repeat(64)}" is not in the text`,
    ]);
    expect(completeness('search_catalog', fake('0 result(s)\nOnly the first 10 buckets were searched.', { query: 'x', note: 'Something else.' }))).toEqual([
      'search_catalog: guidance without a field: ["Only the first 10 buckets were searched."]',
    ]);
  });
});
