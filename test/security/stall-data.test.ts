/**
 * One tenant must not stall the others with data it wrote to its own bucket or sent as arguments:
 * a workflow config of many short keys (the YAML parser's work), a metadata schema whose keywords
 * cost more than their size (`uniqueItems` over many arrays), a manifest holding an integer of
 * hundreds of thousands of digits. Meanwhile alice lists her bucket back to back; her longest wait is
 * printed and bounded, and none of her calls may fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/mcp.js';
import { startTenants, whileOthersCall, type Tenants } from './tenants.js';

let t: Tenants;

/** The target is 100 ms (printed); the limit has 10x headroom for two busy cores. */
const WAIT_LIMIT_MS = 1_000;
const NO_WORKFLOWS = 'version: "1"\nis_workflow_required: false\nworkflows: {}\n';
const HASH = 'c'.repeat(64);

beforeAll(async () => {
  t = await startTenants();
  // Warm what loads once per process (the AWS SDK, STS sessions, the workflow checker).
  for (const [client, bucket] of [
    [t.alice, 'tenant-a'],
    [t.bob, 'tenant-b'],
  ] as const) {
    expect((await call(client, 'bucket_objects_list', { bucket })).isError).toBe(false);
  }
  await t.s3.put('tenant-b', '.quilt/workflows/config.yml', 'version: "1"\nworkflows:\n  w:\n    name: w\n');
  const warm = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/warm', entries: [{ logical_key: 'w.txt', text: 'w' }], workflow: 'w' });
  expect(warm.isError, warm.text).toBe(false);
  await t.s3.put('tenant-b', '.quilt/workflows/config.yml', NO_WORKFLOWS);
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe("a tenant's data is parsed within bounds; the others do not wait", () => {
  it('a workflow config of 30,000 short keys is parsed off the event loop, within a deadline', async () => {
    const lines = ['version: "1"', 'workflows:'];
    for (let i = 0; lines.join('\n').length < 250 * 1024; i++) lines.push(`  k${i}: {}`, `  q${i}: {}`, `  z${i}: {}`);
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', lines.join('\n'));
    try {
      const { result, worstMs, calls, failures } = await whileOthersCall(t.aliceCaller, 'tenant-a', () =>
        call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/yaml', entries: [{ logical_key: 'a.txt', text: 'a' }] }),
      );
      console.log(`hostile workflow config (${lines.length} lines): alice's longest wait ${worstMs.toFixed(1)} ms over ${calls} calls; bob got: ${result.text.slice(0, 120)}`);
      expect(failures).toEqual([]);
      expect(worstMs).toBeLessThan(WAIT_LIMIT_MS);
      // Parsed in time (then refused: the config names no default and requires a workflow), or stopped at the deadline.
      expect(result.isError).toBe(true);
      expect(result.text).toMatch(/requires a workflow|took longer than 2 s/);
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', NO_WORKFLOWS);
    }
  });

  it('a workflow config larger than real ones is refused unread', async () => {
    await t.s3.put('tenant-b', '.quilt/workflows/config.yml', `version: "1"\nworkflows:\n${'  k: {}\n'.repeat(130_000)}`);
    try {
      const r = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/yaml', entries: [{ logical_key: 'a.txt', text: 'a' }] });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('s3://tenant-b/.quilt/workflows/config.yml is larger than the 256 KiB a workflows config can be; it was not read.');
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', NO_WORKFLOWS);
    }
  });

  it('a schema keyword with quadratic work (uniqueItems over 30,000 arrays) is stopped at its deadline', async () => {
    await t.s3.put('tenant-b', '.quilt/unique.json', JSON.stringify({ type: 'object', properties: { x: { type: 'array', uniqueItems: true } } }));
    await t.s3.put(
      'tenant-b',
      '.quilt/workflows/config.yml',
      ['version: "1"', 'workflows:', '  u:', '    name: u', '    metadata_schema: s', 'schemas:', '  s:', '    url: s3://tenant-b/.quilt/unique.json'].join('\n'),
    );
    try {
      const x = Array.from({ length: 30_000 }, (_, i) => [i]);
      const { result, worstMs, calls, failures } = await whileOthersCall(t.aliceCaller, 'tenant-a', () =>
        call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/unique', entries: [{ logical_key: 'a.txt', text: 'a' }], meta: { x }, workflow: 'u' }),
      );
      console.log(`hostile uniqueItems: alice's longest wait ${worstMs.toFixed(1)} ms over ${calls} calls`);
      expect(failures).toEqual([]);
      expect(worstMs).toBeLessThan(WAIT_LIMIT_MS);
      expect(result.isError).toBe(true);
      expect(result.text).toContain('Checking Metadata (schema "s") took longer than 2 s, so it was stopped.');
      // The checker is replaced and works for the next call.
      const ok = await call(t.bob, 'package_create', { bucket: 'tenant-b', name: 'bob/unique', entries: [{ logical_key: 'a.txt', text: 'a' }], meta: { x: [[1], [2]] }, workflow: 'u' });
      expect(ok.isError, ok.text).toBe(false);
    } finally {
      await t.s3.put('tenant-b', '.quilt/workflows/config.yml', NO_WORKFLOWS);
    }
  });

  it('an integer of 900,000 digits in a manifest is refused as Python refuses it', async () => {
    const header = `{"version": "v0", "message": "big", "user_meta": {"n": ${'7'.repeat(900_000)}}}`;
    await t.s3.put('tenant-b', `.quilt/packages/${HASH}`, `${header}\n`);
    await t.s3.put('tenant-b', '.quilt/named_packages/bob/bigint/latest', HASH);
    const { result, worstMs, calls, failures } = await whileOthersCall(t.aliceCaller, 'tenant-a', async () => {
      // Several times, as an attacker would.
      let last = await call(t.bob, 'package_browse', { bucket: 'tenant-b', name: 'bob/bigint' });
      for (let i = 0; i < 3; i++) last = await call(t.bob, 'package_browse', { bucket: 'tenant-b', name: 'bob/bigint' });
      return last;
    });
    console.log(`hostile integer: alice's longest wait ${worstMs.toFixed(1)} ms over ${calls} calls`);
    expect(failures).toEqual([]);
    expect(worstMs).toBeLessThan(WAIT_LIMIT_MS);
    expect(result.isError).toBe(true);
    expect(result.text).toContain('Manifest line 1: not valid JSON (Exceeds the limit (4300 digits) for integer string conversion: value has 900000 digits');
  });
});
