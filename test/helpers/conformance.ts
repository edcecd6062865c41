/**
 * Runs the MCP conformance suite (@modelcontextprotocol/conformance) against a server, reads its
 * machine-readable results (one checks.json per scenario, written with `--output-dir`), and judges
 * each scenario: pass, fail, or hollow (the suite says pass but verified nothing real).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpServer } from './http.js';

/** The suite's CLI, run with this process's Node (not whatever `node` is first on PATH). */
export const CONFORMANCE_BIN = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/conformance/dist/index.js', import.meta.url));

/** One entry of a scenario's checks.json (the suite's ConformanceCheck). */
export interface Check {
  id: string;
  name: string;
  description: string;
  status: string;
  errorMessage?: string;
  details?: unknown;
}

export type Outcome = 'pass' | 'fail' | 'hollow';

export interface Verdict {
  outcome: Outcome;
  /** Why it is not a pass: the failing checks' messages, or what makes the pass hollow. */
  why: string[];
}

/**
 * The SDK's McpServer answers a call to a tool it does not have with a *result*
 * (`isError: true`, text `MCP error -32602: Tool <name> not found`), not a JSON-RPC error; a check
 * that only looks at the result's shape then passes against a tool that does not exist.
 */
const MISSING = /\b(?:Tool|Prompt|Resource(?: template)?) \S+ (?:not found|disabled)\b/;

/** Texts of every `isError: true` tool result anywhere in a check's details. */
function errorResultTexts(value: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 8 || value === null || typeof value !== 'object') return out;
  if (Array.isArray(value)) {
    for (const v of value) errorResultTexts(v, out, depth + 1);
    return out;
  }
  const o = value as Record<string, unknown>;
  if (o.isError === true && Array.isArray(o.content)) {
    for (const c of o.content) {
      const text = (c as { text?: unknown } | null)?.text;
      if (typeof text === 'string') out.push(text);
    }
  }
  for (const v of Object.values(o)) errorResultTexts(v, out, depth + 1);
  return out;
}

/**
 * A scenario's outcome from its checks:
 * - fail: no checks at all, or any FAILURE or WARNING (as the suite's own baseline logic counts them);
 * - hollow: otherwise, if no check is a SUCCESS (everything skipped or informational), any check has
 *   a status the suite does not document (something not verified), or any check's details hold a
 *   tool result saying the tool (prompt, resource) was not found: the SUCCESS judged an error
 *   envelope, not the feature;
 * - pass: otherwise.
 */
export function judge(checks: readonly Check[] | undefined): Verdict {
  if (!checks || checks.length === 0) return { outcome: 'fail', why: ['the suite wrote no checks for this scenario'] };
  const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
  if (bad.length > 0) return { outcome: 'fail', why: bad.map((c) => `${c.status} ${c.id}: ${c.errorMessage ?? c.description}`) };
  const why: string[] = [];
  if (!checks.some((c) => c.status === 'SUCCESS')) why.push(`no check succeeded (${checks.map((c) => `${c.id}=${c.status}`).join(', ')})`);
  for (const c of checks) {
    if (!['SUCCESS', 'INFO'].includes(c.status)) why.push(`${c.id} has status ${c.status}`);
    for (const text of errorResultTexts(c.details)) {
      if (MISSING.test(text)) why.push(`${c.id} (${c.status}) judged the server's answer "${text}"`);
    }
  }
  return why.length > 0 ? { outcome: 'hollow', why } : { outcome: 'pass', why: [] };
}

/**
 * Lowest CPU priority for a process of this harness: the suite is seconds of busy CPU, and test files
 * running beside it on the same cores measure latencies (test/security/stall.test.ts).
 */
export function yieldCpu(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    os.setPriority(pid, 19);
  } catch {
    // Already gone, or a platform without priorities: only a courtesy.
  }
}

function run(args: string[], timeout: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    // The suite exits 1 whenever a scenario fails; the checks files, not the exit code, are the result.
    const child = execFile(process.execPath, [CONFORMANCE_BIN, ...args], { timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr, timedOut: Boolean(e?.killed) });
    });
    yieldCpu(child.pid);
  });
}

/** Every server scenario the installed suite has (`list --server`; the suite offers no JSON listing). */
export async function listServerScenarios(): Promise<string[]> {
  const r = await run(['list', '--server'], 60_000);
  if (r.code !== 0) throw new Error(`conformance list failed: ${r.stderr}`);
  return [...r.stdout.matchAll(/^\s+- (\S+)$/gm)].map((m) => m[1] ?? '');
}

export interface SuiteRun {
  /** Scenario name -> its checks, from `<outDir>/server-<scenario>-<timestamp>/checks.json`. */
  checks: Map<string, Check[]>;
  /** The CLI's own output, for diagnosing a run that wrote no results. */
  log: string;
}

/** The timestamp the suite appends to each result folder (an ISO time with `:` and `.` as `-`). */
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/**
 * Runs every server scenario (`--suite all`: the active ones and those the suite marks pending)
 * in one process, one after another, which takes seconds; `timeout` bounds the whole run.
 */
export async function runSuite(url: string, outDir: string, timeout: number): Promise<SuiteRun> {
  const r = await run(['server', '--url', url, '--suite', 'all', '--output-dir', outDir], timeout);
  const checks = new Map<string, Check[]>();
  for (const dir of existsSync(outDir) ? readdirSync(outDir) : []) {
    const scenario = RESULT_DIR.exec(dir)?.[1];
    const file = path.join(outDir, dir, 'checks.json');
    if (!scenario || !existsSync(file)) continue;
    if (checks.has(scenario)) throw new Error(`two result folders for ${scenario} in ${outDir}`);
    checks.set(scenario, JSON.parse(readFileSync(file, 'utf8')) as Check[]);
  }
  const log = `exit ${r.code}${r.timedOut ? ` (killed after ${timeout} ms)` : ''}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`;
  return { checks, log };
}

export interface TokenProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * A loopback proxy that adds `Authorization: Bearer <token>` to every request: the suite cannot
 * send one, a configured client would. Loopback Host and Origin values are rewritten to name the
 * server itself (as a client talking to it directly would send them); any other Host or Origin
 * (the DNS-rebinding scenario's) passes unchanged.
 */
export async function startTokenProxy(server: HttpServer, token: string): Promise<TokenProxy> {
  const proxy = http.createServer((req, res) => {
    const local = (v: string) => v.replace(/^(http:\/\/)?localhost:\d+$/, (_m, scheme: string | undefined) => `${scheme ?? ''}localhost:${server.port}`);
    const up = http.request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: req.url,
        method: req.method,
        headers: {
          ...req.headers,
          authorization: `Bearer ${token}`,
          host: local(req.headers.host ?? ''),
          ...(req.headers.origin ? { origin: local(req.headers.origin) } : {}),
        },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    // `localhost`, not 127.0.0.1: the rebinding scenario sends the URL's host as the valid one.
    url: `http://localhost:${(proxy.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      }),
  };
}
