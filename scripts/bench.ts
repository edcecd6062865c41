/**
 * `npm run bench`: numbers that users feel, measured rather than guessed.
 *  1. cold start to `initialize` answered, quilt-mcp vs a bare MCP SDK server (the budget is 1.5x);
 *  2. per-call overhead of a tool call over stdio (a tool that does no I/O) vs the bare server;
 *  3. the JWT path per request: verification uncached (a new token every time) vs cached;
 *  4. a tool call over stateless HTTP in JWT mode;
 *  5. search_catalog over its raw GraphQL round trip.
 * Run after `npm run build`. Prints medians and p95 over repeated runs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { JwtAuthService } from '../src/auth/jwt.js';
import { SEARCH_PACKAGES } from '../src/catalog/documents.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startCatalog } from '../test/helpers/catalog.js';
import { graphqlHandler } from '../test/helpers/catalog-graphql.js';
import { isolatedEnv, SERVER_ENTRY } from '../test/helpers/mcp.js';
import { rawPost, signToken, startHttpServer, TEST_SECRET, TOOLS_CALL } from '../test/helpers/http.js';

const runs = Number(process.env.BENCH_RUNS ?? 15);

function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { median: at(0.5), p95: at(0.95) };
}
const fmt = (x: number, unit = 'ms') => `${x.toFixed(x < 10 ? 2 : 1)} ${unit}`;

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
  for (let i = 0; i < n + 20; i++) {
    const t = performance.now();
    await client.callTool({ name: tool, arguments: {} });
    if (i >= 20) times.push(performance.now() - t); // after warm-up
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

  const bareStart: number[] = [];
  const ourStart: number[] = [];
  for (let i = 0; i < runs; i++) {
    bareStart.push(await coldStart(bare, env));
    ourStart.push(await coldStart(SERVER_ENTRY, env));
  }
  const b = stats(bareStart);
  const o = stats(ourStart);
  console.log('1. Cold start to initialize answered (spawn included)');
  console.log(`   bare MCP SDK server: median ${fmt(b.median)}, p95 ${fmt(b.p95)}`);
  console.log(`   quilt-mcp:           median ${fmt(o.median)}, p95 ${fmt(o.p95)}  -> ${(o.median / b.median).toFixed(2)}x (budget 1.5x)\n`);

  const calls = runs * 20;
  const bareCall = stats(await perCall(bare, env, 'echo', calls));
  const ourCall = stats(await perCall(SERVER_ENTRY, env, 'jwt_diagnostics', calls));
  console.log(`2. Tool call round trip over stdio (${calls} calls after warm-up, no I/O in the tool)`);
  console.log(`   bare echo tool:            median ${fmt(bareCall.median)}, p95 ${fmt(bareCall.p95)}`);
  console.log(`   quilt-mcp jwt_diagnostics: median ${fmt(ourCall.median)}, p95 ${fmt(ourCall.p95)}  -> overhead ${fmt(ourCall.median - bareCall.median)}\n`);

  const config = loadConfig([], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, MCP_TRANSPORT: 'http' });
  const auth = new JwtAuthService(config, silentLogger);
  const n = runs * 200;
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

  const server = await startHttpServer(isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, MCP_LOG_LEVEL: 'notice' }));
  const post = (token: string) =>
    rawPost(server.url, TOOLS_CALL('jwt_diagnostics'), { authorization: `Bearer ${token}` }).then(async (r) => {
      await r.text();
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    });
  const m = runs * 40;
  for (let i = 0; i < 50; i++) await post(tokens[0] ?? ''); // warm-up
  const httpCached: number[] = [];
  const httpUncached: number[] = [];
  for (let i = 0; i < m; i++) {
    let s0 = performance.now();
    await post(tokens[1] ?? '');
    httpCached.push(performance.now() - s0);
    s0 = performance.now();
    await post(tokens[100 + i] ?? '');
    httpUncached.push(performance.now() - s0);
  }
  await server.stop();
  const hc = stats(httpCached);
  const hu = stats(httpUncached);
  console.log(`\n4. tools/call over stateless HTTP, JWT mode (${m} requests each; new McpServer per POST)`);
  console.log(`   same token (cached):    median ${fmt(hc.median)}, p95 ${fmt(hc.p95)}`);
  console.log(`   new token (verified):   median ${fmt(hu.median)}, p95 ${fmt(hu.p95)}`);

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
  const transport = new StdioClientTransport({ command: process.execPath, args: [SERVER_ENTRY], env: qenv, stderr: 'ignore' });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(transport);
  const tool = () => client.callTool({ name: 'search_catalog', arguments: { query: 'cells', scope: 'package', limit: 10 } });
  for (let i = 0; i < 30; i++) {
    await raw();
    await tool();
  }
  const rawT: number[] = [];
  const toolT: number[] = [];
  for (let i = 0; i < runs * 20; i++) {
    let s0 = performance.now();
    await raw();
    rawT.push(performance.now() - s0);
    s0 = performance.now();
    await tool();
    toolT.push(performance.now() - s0);
  }
  await client.close();
  await catalog.close();
  const rs = stats(rawT);
  const ts = stats(toolT);
  console.log(`\n5. search_catalog (10 packages) vs its raw GraphQL round trip to the local catalog (${runs * 20} each)`);
  console.log(`   raw GraphQL POST:          median ${fmt(rs.median)}, p95 ${fmt(rs.p95)}`);
  console.log(`   search_catalog over stdio: median ${fmt(ts.median)}, p95 ${fmt(ts.p95)}  -> overhead ${fmt(ts.median - rs.median)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
