/**
 * Nothing before admission that costs a round trip: a bearer that must be looked up elsewhere (an
 * unknown Quilt API key) is looked up once within a slot of the lookups' own, refused keys are
 * remembered, a failing registry is not asked again and again for callers nobody knows, and the
 * lookups use sockets of their own, so a flood of them cannot slow a tenant's catalog calls. STS's
 * refusal to assume a token's role is remembered too.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawPost, signToken, TOOLS_CALL } from '../helpers/http.js';
import { call } from '../helpers/mcp.js';
import { startTenants, type Tenants } from './tenants.js';

let t: Tenants;

beforeAll(async () => {
  t = await startTenants({ MCP_QUILT_API_KEYS: 'true' });
  expect((await call(t.alice, 'bucket_list')).isError).toBe(false);
}, 60_000);

afterAll(async () => {
  await t?.close();
});

const unknownKey = () => `qk_${randomBytes(24).toString('base64url')}`;
const meCalls = (key?: string) => t.catalog.requests.filter((r) => r.path === '/graphql' && r.body.includes('query Me') && (key === undefined || r.bearer === key)).length;
const withKey = (key: string) => rawPost(t.server.url, TOOLS_CALL('bucket_list'), { authorization: `Bearer ${key}` });

describe('unknown Quilt API keys', () => {
  it('100 requests with one unknown key ask the registry once', async () => {
    const key = unknownKey();
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await withKey(key)).status);
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(meCalls(key)).toBe(1);
  });

  it('a registry answering 503 is asked once for an unknown key, not again and again by retries', async () => {
    const key = unknownKey();
    t.catalog.failNext('/graphql', 503, 1);
    const first = await withKey(key);
    expect(first.status).toBe(503);
    expect(await first.text()).toContain('failed (HTTP 503');
    expect(meCalls(key)).toBe(1);
    // Not a refusal: the next request asks again (the key may be good), and is refused.
    const second = await withKey(key);
    expect(second.status).toBe(401);
    expect(meCalls(key)).toBe(2);
  });

  it("400 requests with unknown keys while the registry takes 3 s: a caller's share of slots, and the other tenant's catalog calls do not queue behind them", async () => {
    t.catalog.delays.set('/graphql', 3_000);
    try {
      // bucket_list asks the catalog (bucket titles): against this registry it takes a few seconds anyway.
      let started = performance.now();
      const alone = await call(t.alice, 'bucket_list');
      const aloneMs = performance.now() - started;
      expect(alone.isError, alone.text).toBe(false);
      const before = meCalls();
      const flood = Promise.all(Array.from({ length: 400 }, () => withKey(unknownKey()).then((r) => r.status)));
      await new Promise((r) => setTimeout(r, 300));
      started = performance.now();
      const during = await call(t.alice, 'bucket_list');
      const duringMs = performance.now() - started;
      const answers = await flood;
      const byStatus = answers.reduce<Record<number, number>>((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {});
      console.log(
        `400 unknown keys against a 3 s registry: answers ${JSON.stringify(byStatus)}; registry lookups ${meCalls() - before}; ` +
          `alice's bucket_list ${aloneMs.toFixed(0)} ms alone, ${duringMs.toFixed(0)} ms during the flood`,
      );
      expect(during.isError, during.text).toBe(false);
      // Her catalog calls keep their own sockets: no wave of lookups ahead of them.
      expect(duringMs).toBeLessThan(aloneMs + 3_000);
      // Only a caller's share of the slots goes to lookups; the rest are told to retry.
      expect(byStatus[503] ?? 0).toBeGreaterThan(0);
      expect(meCalls() - before).toBeLessThanOrEqual(64);
    } finally {
      t.catalog.delays.delete('/graphql');
    }
  }, 120_000);
});

describe('STS refusals', () => {
  it("a token whose role STS refuses costs STS one call, not one per request", async () => {
    const role = 'arn:aws:iam::123456789012:role/refused';
    t.sts.refusedRoles.add(role);
    const token = await signToken({ sub: 'mallory', role_arn: role, buckets: ['tenant-b'], permissions: ['s3:ListBucket'] });
    const before = t.sts.assumeRoleCalls.filter((c) => c.roleArn === role).length;
    for (let i = 0; i < 20; i++) {
      const res = await rawPost(t.server.url, TOOLS_CALL('bucket_objects_list', { bucket: 'tenant-b' }), { authorization: `Bearer ${token}` });
      const text = await res.text();
      expect(text).toContain('AWS STS refused to assume arn:aws:iam::123456789012:role/refused for this token.');
    }
    expect(t.sts.assumeRoleCalls.filter((c) => c.roleArn === role).length - before).toBe(1);
  });
});
