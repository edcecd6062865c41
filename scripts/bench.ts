/**
 * `npm run bench`: numbers that users feel, measured rather than guessed.
 *  1. cold start to `initialize` answered, quilt-mcp (dist/ and, when built, the bundle) vs a bare
 *     MCP SDK server (target 1.1x);
 *  2. per-call overhead of a tool call over stdio (a tool that does no I/O) vs the bare server;
 *  3. the JWT path per request: verification uncached (a new token every time) vs cached;
 *  4. a tool call over stateless HTTP in JWT mode vs a plain node HTTP server answering the same
 *     bytes (the floor; target 1.5x) and a bare stateless SDK server, with server CPU per call;
 *  5. search_catalog over its raw GraphQL round trip.
 * Run after `npm run build`. Prints medians and p95 over repeated runs. BENCH_RUNS=n (default 15),
 * BENCH_ONLY=1,4 (some sections), BENCH_SMOKE=1 (a few iterations: proves it runs; see
 * test/bench-smoke.test.ts). Figures and how they were taken: BENCHMARKS.md.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { JwtAuthService } from '../src/auth/jwt.js';
import { SEARCH_PACKAGES } from '../src/catalog/documents.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/core/log.js';
import { startCatalog } from '../test/helpers/catalog.js';
import { graphqlHandler } from '../test/helpers/catalog-graphql.js';
import { isolatedEnv, SERVER_ENTRY } from '../test/helpers/mcp.js';
import { signToken, TEST_SECRET, TOOLS_CALL } from '../test/helpers/http.js';
import { cpuMs, fmt, KeepAliveClient, rpcMessage, SMOKE, spawnServer, stats as pstats } from './bench-lib.js';

const runs = Number(process.env.BENCH_RUNS ?? (SMOKE ? 1 : 15));
const WARMUP = SMOKE ? 2 : 20;
/** BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR": node options for the search_catalog server (section 5, profiling). */
const NODE_ARGS = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

function stats(xs: number[]): { median: number; p95: number } {
  const s = pstats(xs);
  return { median: s.p50, p95: s.p95 };
}

/** The floor: a plain node HTTP server answering a canned tools/call result, no MCP at all. */
const PLAIN_HTTP = `
import http from 'node:http';
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const m = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const text = CANNED.replace('"id":1}', '"id":' + JSON.stringify(m.id) + '}');
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
});
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on http://127.0.0.1:' + server.address().port + '/\\n'));
`;

/** A bare stateless SDK server: a new McpServer and Streamable HTTP transport per POST (the SDK's stateless example), one tool answering a canned result. */
const BARE_HTTP = `
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
const RESULT = JSON.parse(CANNED).result;
const server = http.createServer(async (req, res) => {
  const mcp = new McpServer({ name: 'bare', version: '0' });
  mcp.registerTool('jwt_diagnostics', { description: 'canned', inputSchema: {} }, async () => RESULT);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { void transport.close(); void mcp.close(); });
  await mcp.connect(transport);
  await transport.handleRequest(req, res);
});
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on http://127.0.0.1:' + server.address().port + '/\\n'));
`;

const BARE = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const server = new McpServer({ name: 'bare', version: '0' });
server.registerTool('echo', { description: 'echo', inputSchema: { text: z.string().optional() } }, async (a) => ({ content: [{ type: 'text', text: a.text ?? '' }] }));
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`;

/** Time from spawn to the initialize response, measured on raw stdio. */
function coldStart(entry: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [entry], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"id":1')) {
        const ms = performance.now() - started;
        child.stdin.end();
        child.once('exit', () => resolve(ms));
      }
    });
    child.on('error', reject);
    child.stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '0' } } })}\n`,
    );
  });
}

async function perCall(entry: string, env: Record<string, string>, tool: string, n: number): Promise<number[]> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [entry], env, stderr: 'ignore' });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(transport);
  const times: number[] = [];
  for (let i = 0; i < n + WARMUP; i++) {
    const t = performance.now();
    await client.callTool({ name: tool, arguments: {} });
    if (i >= WARMUP) times.push(performance.now() - t); // after warm-up
  }
  await client.close();
  return times;
}

async function main() {
  const dir = mkdtempSync(path.join(process.cwd(), 'node_modules', '.bench-'));
  const bare = path.join(dir, 'bare.mjs');
  writeFileSync(bare, BARE);
  const env = isolatedEnv({ MCP_LOG_LEVEL: 'error' });

  console.log(`quilt-mcp benchmarks (node ${process.version}, ${os.cpus().length} cores, ${runs} runs each)\n`);

  if (want(1)) await section1(bare, env);
  if (want(2)) await section2(bare, env);
  const tokens = await section3();
  if (want(4)) await section4(dir, env, tokens);
  if (want(5)) await section5();
}

/** BENCH_ONLY=1,4: run only these sections. */
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((x) => x.trim()) : undefined;
const want = (n: number) => !only || only.includes(String(n));

async function section1(bare: string, env: Record<string, string>) {
  // The bundle (bundle/server/index.mjs, after `npm run build:bundle`) is what npm, the image and the
  // .mcpb run: one file to load instead of ~100 modules of dist/.
  const bundle = path.resolve('bundle/server/index.mjs');
  const entries: Array<[string, string]> = [
    ['bare MCP SDK server:', bare],
    ['quilt-mcp (dist/):', SERVER_ENTRY],
    ...(existsSync(bundle) && !process.env.QUILT_MCP_TEST_ENTRY ? [['quilt-mcp bundle:', bundle] as [string, string]] : []),
  ];
  const times: number[][] = entries.map(() => []);
  for (let i = 0; i < runs; i++) {
    // Interleaved, so that whatever else the machine does weighs on all alike.
    for (const [j, [, entry]] of entries.entries()) times[j]?.push(await coldStart(entry, env));
  }
  const b = stats(times[0] ?? []);
  console.log('1. Cold start to initialize answered (spawn included)');
  for (const [j, [label]] of entries.entries()) {
    const o = stats(times[j] ?? []);
    console.log(`   ${label.padEnd(21)}median ${fmt(o.median)}, p95 ${fmt(o.p95)}${j ? `  -> ${(o.median / b.median).toFixed(2)}x (target 1.1x)` : ''}`);
  }
  console.log('');
}

async function section2(bare: string, env: Record<string, string>) {
  const calls = runs * 20;
  const bareCall = stats(await perCall(bare, env, 'echo', calls));
  // jwt_diagnostics does no I/O; desktop mode offers it when MCP_TOOLSETS names diagnostics.
  const ourCall = stats(await perCall(SERVER_ENTRY, { ...env, MCP_TOOLSETS: 'diagnostics' }, 'jwt_diagnostics', calls));
  console.log(`2. Tool call round trip over stdio (${calls} calls after warm-up, no I/O in the tool)`);
  console.log(`   bare echo tool:            median ${fmt(bareCall.median)}, p95 ${fmt(bareCall.p95)}`);
  console.log(`   quilt-mcp jwt_diagnostics: median ${fmt(ourCall.median)}, p95 ${fmt(ourCall.p95)}  -> overhead ${fmt(ourCall.median - bareCall.median)}\n`);

}

async function section3(): Promise<string[]> {
  const config = loadConfig([], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, MCP_TRANSPORT: 'http' });
  const auth = new JwtAuthService(config, silentLogger);
  const n = Math.max(runs * 200, runs * 40 + 100);
  const tokens = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      signToken({ sub: `user-${i}`, role_arn: 'arn:aws:iam::123456789012:role/r', buckets: ['bench-bucket'], permissions: ['s3:GetObject'] }),
    ),
  );
  await auth.context({ token: tokens[0] }); // load jose once
  let t = performance.now();
  for (const token of tokens) await auth.context({ token });
  const uncached = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) await auth.context({ token: tokens[i % 10] });
  const cached = ((performance.now() - t) * 1000) / n;
  console.log(`3. JWT path per request, in process (${n} requests)`);
  console.log(`   uncached (verify HS256 + normalize claims + build context): ${fmt(uncached, 'µs')}`);
  console.log(`   cached (sha256 of the token + LRU hit):                      ${fmt(cached, 'µs')}`);
  return tokens;
}

async function section4(dir: string, env: Record<string, string>, tokens: string[]) {
  // 4. One tools/call at a time over keep-alive HTTP: the same client (node:http) sends the same
  // request bytes (token included) to three servers, in alternating blocks so that whatever else
  // the machine does weighs on all alike. The floor answers with a canned copy of quilt-mcp's answer.
  const plainFile = path.join(dir, 'plain-http.mjs');
  const bareHttpFile = path.join(dir, 'bare-http.mjs');
  const ours = await spawnServer(SERVER_ENTRY, ['--http', '--port', '0'], isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, MCP_LOG_LEVEL: 'notice' }));
  const headers = { 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${tokens[1] ?? ''}` };
  const body = JSON.stringify(TOOLS_CALL('jwt_diagnostics'));
  const oursClient = new KeepAliveClient(ours.url, 1);
  const sample = await oursClient.post(body, headers);
  // The floor and the bare SDK server answer with the very bytes quilt-mcp answered.
  const canned = JSON.stringify(JSON.stringify(rpcMessage(sample.text)));
  writeFileSync(plainFile, PLAIN_HTTP.replace('CANNED', canned));
  writeFileSync(bareHttpFile, BARE_HTTP.replace('CANNED', canned));
  const targets = [
    { name: 'plain', server: await spawnServer(plainFile, [], env), times: [] as number[], cpu: 0 },
    { name: 'bare', server: await spawnServer(bareHttpFile, [], env), times: [] as number[], cpu: 0 },
    { name: 'cached', server: ours, times: [] as number[], cpu: 0 },
  ].map((t) => ({ ...t, client: t.server === ours ? oursClient : new KeepAliveClient(t.server.url, 1) }));
  const once = async (client: KeepAliveClient) => {
    const r = await client.post(body, headers);
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    const msg = rpcMessage(r.text);
    if (!msg.result || msg.result.isError) throw new Error(`tools/call failed: ${r.text.slice(0, 300)}`);
  };
  const uncached: number[] = [];
  const BLOCK = SMOKE ? 10 : 100;
  const blocks = runs * 4;
  try {
    for (const t of targets) for (let i = 0; i < WARMUP * 5; i++) await once(t.client);
    for (let b = 0; b < blocks; b++) {
      for (const t of targets) {
        const pid = t.server.child.pid ?? 0;
        const c0 = cpuMs(pid);
        for (let i = 0; i < BLOCK; i++) {
          const s0 = performance.now();
          await once(t.client);
          t.times.push(performance.now() - s0);
        }
        t.cpu += cpuMs(pid) - c0;
      }
    }
    // A new token on every request: HS256 verification, claims, context (no AWS call in this tool).
    for (let i = 0; i < Math.min(blocks * 10, tokens.length - 100); i++) {
      const s0 = performance.now();
      const r = await oursClient.post(body, { ...headers, authorization: `Bearer ${tokens[100 + i] ?? ''}` });
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      uncached.push(performance.now() - s0);
    }
  } finally {
    for (const t of targets) t.client.close();
    await Promise.all(targets.map((t) => t.server.stop()));
  }
  const [plain, bare, cached] = targets.map((t) => ({ ...stats(t.times), cpu: t.cpu / t.times.length }));
  const hu = stats(uncached);
  const n4 = blocks * BLOCK;
  const row = (label: string, x: { median: number; p95: number; cpu: number }, ratio: string) =>
    console.log(`   ${label.padEnd(44)} median ${fmt(x.median)}, p95 ${fmt(x.p95)}, server CPU ${fmt(x.cpu)}/call${ratio}`);
  const vs = (x: { median: number; cpu: number }, target = '') =>
    `  -> ${(x.median / (plain?.median ?? 1)).toFixed(2)}x floor latency, ${(x.cpu / (plain?.cpu ?? 1)).toFixed(2)}x floor CPU${target}`;
  console.log(`\n4. tools/call over HTTP, one at a time on a keep-alive connection (${n4} requests each, blocks of ${BLOCK} alternating)`);
  if (plain && bare && cached) {
    row('plain node HTTP, canned answer (floor):', plain, '');
    row('bare stateless SDK (new server per POST):', bare, vs(bare));
    row('quilt-mcp JWT jwt_diagnostics, cached token:', cached, vs(cached, ' (target 1.5x)'));
  }
  console.log(`   quilt-mcp JWT, new token each (verified):    median ${fmt(hu.median)}, p95 ${fmt(hu.p95)} (${uncached.length} requests)`);
}

async function section5() {
  // 5. search_catalog vs the raw GraphQL round trip it makes, against the local test catalog.
  const catalog = await startCatalog();
  catalog.graphql = graphqlHandler();
  const session = catalog.login('bench-user');
  const qenv = isolatedEnv({ MCP_LOG_LEVEL: 'error' });
  const qdir = path.join(qenv.XDG_DATA_HOME ?? '', 'Quilt');
  mkdirSync(qdir, { recursive: true });
  writeFileSync(path.join(qdir, 'config.yml'), `navigator_url: ${catalog.url}\nregistryUrl: ${catalog.url}\n`);
  writeFileSync(path.join(qdir, 'auth.json'), JSON.stringify({ [catalog.url]: { ...session, user: undefined } }));
  const variables = { buckets: null, searchString: 'cells', size: 10, latestOnly: false };
  const raw = async () => {
    const r = await fetch(`${catalog.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session.access_token}` },
      body: JSON.stringify({ query: SEARCH_PACKAGES, variables }),
    });
    await r.json();
  };
  const transport = new StdioClientTransport({ command: process.execPath, args: [...NODE_ARGS, SERVER_ENTRY], env: qenv, stderr: 'ignore' });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(transport);
  const tool = () => client.callTool({ name: 'search_catalog', arguments: { query: 'cells', scope: 'package', limit: 10 } });
  for (let i = 0; i < WARMUP; i++) {
    await raw();
    await tool();
  }
  const rawT: number[] = [];
  const toolT: number[] = [];
  const pid = transport.pid!;
  const cpu0 = cpuMs(pid);
  for (let i = 0; i < runs * 20; i++) {
    let s0 = performance.now();
    await raw();
    rawT.push(performance.now() - s0);
    s0 = performance.now();
    await tool();
    toolT.push(performance.now() - s0);
  }
  const serverCpu = (cpuMs(pid) - cpu0) / (runs * 20);
  await client.close();
  await catalog.close();
  const rs = stats(rawT);
  const ts = stats(toolT);
  console.log(`\n5. search_catalog (10 packages) vs its raw GraphQL round trip to the local catalog (${runs * 20} each)`);
  console.log(`   raw GraphQL POST:          median ${fmt(rs.median)}, p95 ${fmt(rs.p95)}`);
  console.log(`   search_catalog over stdio: median ${fmt(ts.median)}, p95 ${fmt(ts.p95)}  -> overhead ${fmt(ts.median - rs.median)} (target < 1 ms)`);
  console.log(`   quilt-mcp CPU per search_catalog call (its whole work: stdio, session check, GraphQL request, result): ${fmt(serverCpu)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
