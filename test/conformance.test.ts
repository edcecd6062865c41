/**
 * The MCP conformance suite's server scenarios, every one the installed suite has, against both HTTP
 * modes of the built server: desktop (loopback, the per-start access token) and JWT (stateless,
 * a valid signed JWT on every request). The suite cannot send a token, so a loopback proxy adds it.
 *
 * Each scenario's outcome (pass / fail / hollow, judged from the suite's checks.json) must equal
 * what test/conformance-expected.ts says, in both directions: an unlisted failure or hollow pass
 * fails this test, and so does a listed scenario that now passes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPECTED, expectedOutcome, MODES, type Mode } from './conformance-expected.js';
import { judge, listServerScenarios, runSuite, startTokenProxy, yieldCpu, type Check, type SuiteRun, type TokenProxy } from './helpers/conformance.js';
import { connectHttp, signToken, startHttpServer, jwtEnv, type HttpServer } from './helpers/http.js';
import { call, objectText, s3Env } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

/** The whole suite takes seconds; this only bounds a server that hangs. */
const SUITE_TIMEOUT_MS = 240_000;

let scenarios: string[];
let s3: LocalS3;
let sts: LocalSts;
const outRoot = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-conformance-'));

beforeAll(async () => {
  scenarios = await listServerScenarios();
  s3 = await startS3({ buckets: ['conf-bucket'] });
  await s3.put('conf-bucket', 'a.txt', 'conformance');
  sts = await startSts();
}, 60_000);
afterAll(async () => {
  await s3?.close();
  await sts?.close();
  rmSync(outRoot, { recursive: true, force: true });
});

interface Target {
  server: HttpServer;
  token: string;
}

/** A server in the mode and the token a configured client would send it. */
async function startMode(mode: Mode): Promise<Target> {
  if (mode === 'desktop') {
    const server = await startHttpServer(s3Env(s3.endpoint));
    if (!server.localToken) throw new Error(`no access token printed: ${server.stderr()}`);
    return { server, token: server.localToken };
  }
  // JWT mode as deployed, with AWS pointed at the local STS and S3 (the server's own key only calls STS).
  const server = await startHttpServer(
    jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }),
  );
  const token = await signToken(
    { sub: 'conformance', role_arn: 'arn:aws:iam::123456789012:role/conformance', buckets: ['conf-bucket'], permissions: ['s3:GetObject', 's3:ListBucket'] },
    { expiresIn: 3600 },
  );
  return { server, token };
}

describe('MCP conformance suite', () => {
  it('the expected-outcome list names only scenarios the suite has, each at most once per mode, each with a reason', () => {
    expect(scenarios.length).toBeGreaterThan(20);
    for (const e of EXPECTED) {
      expect(scenarios, `${e.scenario} is not a scenario of the installed suite`).toContain(e.scenario);
      expect(e.modes.length, e.scenario).toBeGreaterThan(0);
      expect(e.reason.length, e.scenario).toBeGreaterThan(20);
      for (const mode of e.modes) expect(EXPECTED.filter((o) => o.scenario === e.scenario && o.modes.includes(mode)), `${e.scenario} (${mode})`).toHaveLength(1);
    }
  });

  it('judges a pass hollow when it verified nothing or judged a "not found" answer', () => {
    const check = (status: string, details?: unknown): Check => ({ id: 'x', name: 'X', description: 'x', status, details });
    const notFound = { result: { isError: true, content: [{ type: 'text', text: 'MCP error -32602: Tool test_simple_text not found' }] } };
    expect(judge([check('SUCCESS', { result: { content: [{ type: 'text', text: 'ok' }] } })]).outcome).toBe('pass');
    expect(judge([check('SUCCESS'), check('INFO')]).outcome).toBe('pass');
    expect(judge([check('SUCCESS', notFound)]).outcome).toBe('hollow');
    expect(judge([check('INFO'), check('INFO')]).outcome).toBe('hollow');
    expect(judge([check('SUCCESS'), check('SKIPPED')]).outcome).toBe('hollow');
    // A tool that exists and reports an error is a real answer.
    expect(judge([check('SUCCESS', { result: { isError: true, content: [{ type: 'text', text: 'This tool intentionally returns an error' }] } })]).outcome).toBe('pass');
    expect(judge([check('SUCCESS'), check('WARNING')]).outcome).toBe('fail');
    expect(judge([check('FAILURE', notFound)]).outcome).toBe('fail');
    expect(judge([]).outcome).toBe('fail');
    expect(judge(undefined).outcome).toBe('fail');
  });

  describe.each(MODES)('%s mode over HTTP', (mode) => {
    let target: Target;
    let proxy: TokenProxy;
    let suite: SuiteRun;

    beforeAll(async () => {
      target = await startMode(mode);
      yieldCpu(target.server.child.pid);
      proxy = await startTokenProxy(target.server, target.token);
      suite = await runSuite(proxy.url, path.join(outRoot, mode), SUITE_TIMEOUT_MS);
    }, SUITE_TIMEOUT_MS + 30_000);
    afterAll(async () => {
      await proxy?.close();
      await target?.server.stop();
    });

    it('the proxy authenticates as a configured client would: a real tool call through it succeeds', async () => {
      const client = await connectHttp(proxy.url);
      try {
        // JWT mode: the token's role is assumed at the local STS and its credentials read the local S3.
        const r = await call(client, 'bucket_object_text', { uri: 's3://conf-bucket/a.txt' });
        expect(r.isError, r.text).toBe(false);
        expect(objectText(r).content).toBe('conformance');
      } finally {
        await client.close();
      }
    });

    it('runs every server scenario the suite has', () => {
      const missing = scenarios.filter((s) => !suite.checks.has(s));
      expect(missing, `no results for these scenarios; the suite said:\n${suite.log}`).toEqual([]);
    });

    it('every scenario has its expected outcome (test/conformance-expected.ts); no hollow pass counts as a pass', () => {
      const wrong: string[] = [];
      for (const scenario of scenarios) {
        const verdict = judge(suite.checks.get(scenario));
        const expected = expectedOutcome(scenario, mode);
        const want = expected?.outcome ?? 'pass';
        if (verdict.outcome === want) continue;
        wrong.push(
          verdict.outcome === 'pass'
            ? `${scenario}: now passes; remove it from the list (listed as ${want}: ${expected?.reason})`
            : `${scenario}: ${verdict.outcome}, expected ${want}${expected ? '' : ' (not in the list)'}: ${verdict.why.join('; ')}`,
        );
      }
      expect(wrong).toEqual([]);
    });
  });
});
