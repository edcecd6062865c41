/**
 * One tenant must not stall or break the others. Bob controls his bucket (its workflow config and
 * schemas) and his tool arguments; he builds patterns that backtrack for seconds on a JavaScript
 * RegExp, and a schema `$id` that used to poison the shared Ajv. Meanwhile alice keeps calling, and
 * the longest she waits is measured. Also: Athena's read-only guard against statements that hide
 * a write behind WITH, EXPLAIN ANALYZE or a pass-through table function.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAthena, type LocalAthena } from '../helpers/athena.js';
import { call, type ToolCall } from '../helpers/mcp.js';
import { startTenants, type Tenants } from './tenants.js';

let t: Tenants;
let athena: LocalAthena;

beforeAll(async () => {
  athena = await startAthena();
  t = await startTenants({ AWS_ENDPOINT_URL_ATHENA: athena.endpoint, ATHENA_WORKGROUP: 'primary' });
  // Warm up what loads once per process (the AWS SDK, STS sessions, package and workflow code),
  // so that the waits measured below are the hostile work's, not a first load's.
  for (const [client, bucket] of [
    [t.alice, 'tenant-a'],
    [t.bob, 'tenant-b'],
  ] as const) {
    expect((await call(client, 'bucket_objects_list', { bucket })).isError).toBe(false);
    expect((await call(client, 'package_create', { bucket, name: `${bucket.slice(-1)}/warm`, entries: [{ logical_key: 'w.txt', text: 'w' }] })).isError).toBe(false);
  }
  // And the workflow code's lazy modules (yaml, ajv, re2js), with a harmless workflow of alice's.
  await t.s3.put('tenant-a', '.quilt/warm.json', JSON.stringify({ type: 'object', properties: { k: { type: 'string', pattern: '^k' } } }));
  await t.s3.put(
    'tenant-a',
    '.quilt/workflows/config.yml',
    ['version: "1"', 'workflows:', '  w:', '    name: w', "    handle_pattern: '^a/'", '    metadata_schema: s', 'schemas:', '  s:', '    url: s3://tenant-a/.quilt/warm.json'].join('\n'),
  );
  const warm = await call(t.alice, 'package_create', { bucket: 'tenant-a', name: 'a/warm-wf', entries: [{ logical_key: 'w.txt', text: 'w' }], meta: { k: 'k' }, workflow: 'w' });
  expect(warm.isError, warm.text).toBe(false);
  await t.s3.put('tenant-a', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
}, 60_000);

afterAll(async () => {
  await t?.close();
  await athena?.close();
});

/**
 * The target is 100 ms (printed above each check, typically 10-50 ms here); the limit has 10x headroom
 * for two busy cores. Before linear-time patterns the same call waited 21 s.
 */
const WAIT_LIMIT_MS = 1_000;

/**
 * Runs `hostile` while alice calls a cheap tool back to back; returns the hostile call's result
 * and the longest any of alice's calls took.
 */
async function whileAliceWaits(hostile: () => Promise<ToolCall>): Promise<{ result: ToolCall; worstMs: number; calls: number }> {
  const probe = (client: Client) => call(client, 'catalog_uri', { bucket: 'tenant-a', path: 'alpha/own.txt' });
  await probe(t.alice); // warm
  let done = false;
  const running = hostile().finally(() => (done = true));
  let worstMs = 0;
  let calls = 0;
  while (!done || calls < 5) {
    const started = performance.now();
    const r = await probe(t.alice);
    expect(r.isError, r.text).toBe(false);
    worstMs = Math.max(worstMs, performance.now() - started);
    calls++;
  }
  return { result: await running, worstMs, calls };
}

/** On a JavaScript RegExp, `^bob/(a|aa)+$` against this name takes seconds (Fibonacci many paths). */
const SLOW_NAME = `bob/${'a'.repeat(38)}-`;
const SLOW_PATTERN = '^bob/(a|aa)+$';

describe('hostile patterns run in linear time; other tenants do not wait', () => {
  it('include/exclude globs of package_create_from_s3 (7 stars against 60-character keys)', async () => {
    for (let i = 0; i < 50; i++) await t.s3.put('tenant-b', `bravo/hostile/${'a'.repeat(60)}${i}`, 'x');
    const { result, worstMs, calls } = await whileAliceWaits(() =>
      call(t.bob, 'package_create_from_s3', {
        bucket: 'tenant-b',
        name: 'bob/globbed',
        source_uri_prefix: 's3://tenant-b/bravo/hostile/',
        include: ['*a*a*a*a*a*a*a*b', '**a**a**a**a**a**a**a**a**b'],
      }),
    );
    console.log(`hostile globs: alice's longest wait ${worstMs.toFixed(1)} ms over ${calls} calls`);
    expect(result.isError).toBe(true);
    expect(result.text).toContain('match the include/exclude globs');
    expect(worstMs).toBeLessThan(WAIT_LIMIT_MS);
  });

  it("a workflow's handle_pattern", async () => {
    const config = ['version: "1"', 'workflows:', '  named:', '    name: named', `    handle_pattern: '${SLOW_PATTERN}'`].join('\n');
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', config);
    try {
      const { result, worstMs, calls } = await whileAliceWaits(() =>
        call(t.bob, 'package_create', { bucket: 'tenant-b', name: SLOW_NAME, entries: [{ logical_key: 'a.txt', text: 'a' }], workflow: 'named' }),
      );
      console.log(`hostile handle_pattern: alice's longest wait ${worstMs.toFixed(1)} ms over ${calls} calls`);
      expect(result.isError).toBe(true);
      expect(result.text).toContain("does not match the workflow's handle pattern");
      expect(worstMs).toBeLessThan(WAIT_LIMIT_MS);
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
    }
  });

  it("pattern in a workflow's metadata JSON Schema", async () => {
    const schema = { type: 'object', properties: { code: { type: 'string', pattern: '^(a|aa)+$' } } };
    await t.s3.put('tenant-b', '.quilt/workflows/schema.json', JSON.stringify(schema));
    const config = [
      'version: "1"',
      'workflows:',
      '  checked:',
      '    name: checked',
      '    metadata_schema: meta',
      'schemas:',
      '  meta:',
      '    url: s3://tenant-b/.quilt/workflows/schema.json',
    ].join('\n');
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', config);
    try {
      const { result, worstMs, calls } = await whileAliceWaits(() =>
        call(t.bob, 'package_create', {
          bucket: 'tenant-b',
          name: 'bob/schema',
          entries: [{ logical_key: 'a.txt', text: 'a' }],
          meta: { code: `${'a'.repeat(38)}!` },
          workflow: 'checked',
        }),
      );
      console.log(`hostile schema pattern: alice's longest wait ${worstMs.toFixed(1)} ms over ${calls} calls`);
      expect(result.isError).toBe(true);
      expect(result.text).toContain('Metadata failed validation');
      expect(worstMs).toBeLessThan(WAIT_LIMIT_MS);
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
    }
  });

  it('a pattern the linear engine cannot run is refused with a message naming it', async () => {
    const config = ['version: "1"', 'workflows:', '  look:', '    name: look', "    handle_pattern: '^(?=bob/)(\\w+)/\\1$'"].join('\n');
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', config);
    try {
      const r = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/x', entries: [{ logical_key: 'a.txt', text: 'a' }], workflow: 'look' });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('handle_pattern "^(?=bob/)(\\w+)/\\1$" cannot be used');
      expect(r.text).toMatch(/not supported: patterns run on a linear-time \(RE2\) engine/);
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
    }
  });

  it('a long package name is refused before it meets any pattern', async () => {
    const r = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: `bob/${'a'.repeat(300)}`, entries: [{ logical_key: 'a.txt', text: 'a' }] });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/256/);
  });
});

describe('schemas do not leak between tenants', () => {
  const workflowWith = (bucket: string, schemaKey: string) =>
    ['version: "1"', 'workflows:', '  w:', '    name: w', '    metadata_schema: s', 'schemas:', '  s:', `    url: s3://${bucket}/${schemaKey}`].join('\n');

  it('two tenants\' schemas with the same $id are each checked by their own text, however often', async () => {
    const id = 'https://schemas.example.com/shared.json';
    await t.s3.put('tenant-a', '.quilt/s.json', JSON.stringify({ $id: id, type: 'object', required: ['alpha'] }));
    await t.s3.put('tenant-b', '.quilt/s.json', JSON.stringify({ $id: id, type: 'object', required: ['bravo'] }));
    await t.s3.put('tenant-a', '.quilt/workflows/config.yml', workflowWith('tenant-a', '.quilt/s.json'));
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', workflowWith('tenant-b', '.quilt/s.json'));
    try {
      for (let round = 0; round < 3; round++) {
        const a = await call(t.alice, 'package_create', { bucket: 'tenant-a', name: 'alice/ided', entries: [{ logical_key: 'a.txt', text: 'a' }], meta: { alpha: 1 }, workflow: 'w', force: true });
        expect(a.isError, a.text).toBe(false);
        const b = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/ided', entries: [{ logical_key: 'b.txt', text: 'b' }], meta: { bravo: 1 }, workflow: 'w', force: true });
        expect(b.isError, b.text).toBe(false);
        // Each is checked against its own schema, not the other's.
        const bWrong = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/ided', entries: [{ logical_key: 'b.txt', text: 'b' }], meta: { alpha: 1 }, workflow: 'w', force: true });
        expect(bWrong.isError).toBe(true);
        expect(bWrong.text).toContain("must have required property 'bravo'");
      }
    } finally {
      await t.s3.put('tenant-a', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
    }
  });

  it('an $async schema cannot pass everything', async () => {
    await t.s3.put('tenant-b', '.quilt/async.json', JSON.stringify({ $async: true, type: 'object', required: ['never'] }));
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', workflowWith('tenant-b', '.quilt/async.json'));
    try {
      const r = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/async', entries: [{ logical_key: 'b.txt', text: 'b' }], workflow: 'w' });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('$async');
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', 'version: "1"\nis_workflow_required: false\nworkflows: {}\n');
    }
  });
});

describe("Athena's read-only guard judges what a statement runs", () => {
  it('refuses writes behind WITH, EXPLAIN ANALYZE and pass-through table functions, before any Athena call', async () => {
    const before = athena.calls.length;
    for (const query of [
      'WITH x AS (SELECT 1 AS a) INSERT INTO samples SELECT * FROM x',
      'WITH x AS (SELECT 1) DELETE FROM samples',
      'WITH x AS (SELECT 1) UNLOAD (SELECT * FROM x) TO \'s3://tenant-b/out/\' WITH (format = \'CSV\')',
      'EXPLAIN ANALYZE WITH x AS (SELECT 1) INSERT INTO samples SELECT * FROM x',
      "SELECT * FROM TABLE(system.query(query => 'DELETE FROM samples'))",
    ]) {
      const r = await call(t.alice, 'athena_query_execute', { query, database: 'analytics' });
      expect(r.isError, query).toBe(true);
      expect(r.text, query).toMatch(/not sent to Athena|table functions|passes SQL through/i);
    }
    expect(athena.calls.length).toBe(before);
    const ok = await call(t.alice, 'athena_query_execute', { query: 'WITH x AS (SELECT 1 AS a) SELECT a FROM x', database: 'analytics' });
    expect(ok.isError, ok.text).toBe(false);
  });
});
