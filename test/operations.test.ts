/**
 * The HTTP server as an operator runs it behind a load balancer, against the built server as a
 * child process: keep-alive longer than the balancer's idle timeout, /ready apart from /health, the
 * drain on SIGTERM (in-flight calls answered, readiness false, exit 0, a deadline), the JSON request
 * log, Prometheus metrics, and answers for hand-written requests (Accept, the JSON-RPC envelope).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwtEnv, rawPost, signToken, startHttpServer, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { SERVER_ENTRY } from './helpers/mcp.js';
import { startS3, type LocalS3, type S3Request } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const BUCKET = 'ops-data';
const ROLE = 'arn:aws:iam::123456789012:role/ops-user';
let s3: LocalS3;
let sts: LocalSts;
/** A request to S3 for a key starting with "slow/" waits until this is resolved. */
let release: () => void = () => {};
let held: Promise<void> = Promise.resolve();
const hold = () => {
  held = new Promise<void>((r) => (release = r));
};
const servers: HttpServer[] = [];

beforeAll(async () => {
  s3 = await startS3({ buckets: [BUCKET], before: (r: S3Request) => (r.key.startsWith('slow/') ? held : undefined) });
  await s3.put(BUCKET, 'hello.txt', 'hello\n', 'text/plain');
  await s3.put(BUCKET, 'slow/answer.txt', 'worth the wait\n', 'text/plain');
  sts = await startSts();
});

afterAll(async () => {
  release();
  await Promise.all(servers.map(async (s) => {
    const t0 = Date.now();
    await s.stop();
    // A stop that waits for a request that never ends would be a drain bug: say which.
    if (Date.now() - t0 > 5_000) console.warn(`slow stop (${Date.now() - t0} ms):`, s.stderr().split('\n').filter((l) => /Drain/.test(l)).join(' | '));
  }));
  await s3.close();
  await sts.close();
}, 60_000);

async function start(extra: Record<string, string> = {}): Promise<HttpServer> {
  const server = await startHttpServer(jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, extra));
  servers.push(server);
  return server;
}

const token = (sub = 'ops-user', claims: Record<string, unknown> = {}) =>
  signToken({ sub, role_arn: ROLE, buckets: [BUCKET], permissions: ['s3:GetObject', 's3:ListBucket'], ...claims });

const exited = (server: HttpServer) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return resolve({ code: server.child.exitCode, signal: server.child.signalCode });
    server.child.once('exit', (code, signal) => resolve({ code, signal }));
  });

/** One request on a given agent (keep-alive), with the local port of the socket it went on. */
function request(agent: http.Agent, port: number, path: string, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; localPort: number | undefined }>((resolve, reject) => {
    const req = http.request({ agent, host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, localPort: req.socket?.localPort }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const callBody = (uri: string, id = 1) => JSON.stringify({ ...TOOLS_CALL('bucket_object_text', { uri }), id });
const mcpHeaders = (t: string) => ({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${t}` });

describe('behind a load balancer', () => {
  it('keeps idle connections 65 s (longer than an ALB\'s 60 s), so a connection idle past Node\'s old 5 s is reused, not reset', async () => {
    const server = await start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await request(agent, server.port, '/health');
    expect(first.status).toBe(200);
    expect(first.headers['keep-alive']).toBe('timeout=65');
    await new Promise((r) => setTimeout(r, 6_000));
    const second = await request(agent, server.port, '/health');
    expect(second.status).toBe(200);
    // The same connection: the server did not close it after 5 s.
    expect(second.localPort).toBe(first.localPort);
    agent.destroy();
  }, 30_000);

  it('refuses a headers timeout that is not after the keep-alive timeout (exit 2, both named)', async () => {
    const child = spawn(process.execPath, [SERVER_ENTRY, '--http', '--port', '0'], {
      env: jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, { MCP_KEEP_ALIVE_TIMEOUT: '90', MCP_HEADERS_TIMEOUT: '60' }),
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(2);
    expect(err).toContain('MCP_HEADERS_TIMEOUT (60 s) must be longer than MCP_KEEP_ALIVE_TIMEOUT (90 s)');
  });

  it('/health is liveness, /ready readiness; both answer without a token', async () => {
    const server = await start();
    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(await health.json()).toMatchObject({ status: 'ok', mode: 'jwt', state: 'serving' });
    const ready = await fetch(`http://127.0.0.1:${server.port}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });
});

describe('SIGTERM drains', () => {
  it('answers the call in flight, says not ready (while the drain delay lasts), closes the connection after, and exits 0', async () => {
    const server = await start({ MCP_DRAIN_DELAY: '1' });
    const t = await token();
    // Warm: the role is assumed and the token verified before the held call.
    expect((await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` }), { authorization: `Bearer ${t}` })).status).toBe(200);
    hold();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    const inFlight = request(agent, server.port, '/mcp', { method: 'POST', body: callBody(`s3://${BUCKET}/slow/answer.txt`), headers: mcpHeaders(t) });
    // Until the held S3 request has arrived, the call is in flight.
    for (let i = 0; i < 100 && !s3.requests.some((r) => r.key === 'slow/answer.txt'); i++) await new Promise((r) => setTimeout(r, 50));
    const gone = exited(server);
    server.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));

    // During the drain delay the listener still takes connections, and readiness says draining.
    const ready = await fetch(`http://127.0.0.1:${server.port}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'draining' });
    const health = (await (await fetch(`http://127.0.0.1:${server.port}/health`)).json()) as { state: string };
    expect(health.state).toBe('draining');

    await new Promise((r) => setTimeout(r, 1_200));
    // The listener is closed now; the call in flight is still waiting for S3.
    expect(server.child.exitCode).toBe(null);
    release();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.headers.connection).toBe('close');
    // bucket_object_text answers in its text only: a head line, then the content.
    expect(JSON.parse(answer.text).result.content[0].text).toMatch(/\nworth the wait\n$/);
    expect(await gone).toEqual({ code: 0, signal: null });
    expect(server.stderr()).toMatch(/Draining: readiness is now false reason=SIGTERM in_flight=1/);
    expect(server.stderr()).toMatch(/Drained: every request in flight was answered; exiting/);
    agent.destroy();
  }, 30_000);

  it('exits 0 at MCP_DRAIN_TIMEOUT when a call is still running, and says so', async () => {
    const server = await start({ MCP_DRAIN_TIMEOUT: '1' });
    const t = await token();
    hold();
    const stuck = rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/slow/answer.txt` }), { authorization: `Bearer ${t}` }).catch((e: unknown) => e);
    for (let i = 0; i < 100 && s3.requests.filter((r) => r.key === 'slow/answer.txt').length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const gone = exited(server);
    const sent = Date.now();
    server.child.kill('SIGTERM');
    expect(await gone).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeGreaterThanOrEqual(900);
    expect(server.stderr()).toMatch(/Drain timeout: exiting with requests still in flight in_flight=1 timeout_ms=1000/);
    release();
    await stuck;
  }, 30_000);
});

describe('what an operator watches', () => {
  it('MCP_LOG_FORMAT=json: every line is JSON, one per request with id, principal, tool, status, duration and outcome; no token', async () => {
    const server = await start({ MCP_LOG_FORMAT: 'json', MCP_LOG_LEVEL: 'debug' });
    const t = await token('json-user');
    const ok = await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` }), { authorization: `Bearer ${t}`, 'x-request-id': 'req-from-the-balancer-1' });
    expect(ok.headers.get('x-request-id')).toBe('req-from-the-balancer-1');
    const denied = await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: 's3://not-mine/secret.txt' }), { authorization: `Bearer ${t}` });
    expect(denied.status).toBe(200);
    const unauthorized = await rawPost(server.url, TOOLS_CALL('bucket_list'), { authorization: 'Bearer not-a-jwt' });
    expect(unauthorized.status).toBe(401);
    const generated = unauthorized.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 200));

    const lines = server.stderr().split('\n').filter((l) => l.trim());
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.every((l) => typeof l.time === 'string' && typeof l.level === 'string' && typeof l.msg === 'string')).toBe(true);
    const requests = parsed.filter((l) => l.msg === 'request');
    expect(requests.find((l) => l.request_id === 'req-from-the-balancer-1')).toMatchObject({
      level: 'info',
      http_method: 'POST',
      path: '/mcp',
      status: 200,
      rpc_method: 'tools/call',
      tool: 'bucket_object_text',
      principal: 'json-user',
      outcome: 'ok',
    });
    expect(requests.find((l) => l.outcome === 'tool_error')).toMatchObject({ tool: 'bucket_object_text', principal: 'json-user', error_code: 'access_denied' });
    expect(requests.find((l) => l.request_id === generated)).toMatchObject({ status: 401, outcome: 'unauthorized' });
    expect(requests.every((l) => typeof l.duration_ms === 'number')).toBe(true);
    // A debug line for the accepted token (once, not per request), a warning for its missing catalog access.
    expect(parsed.filter((l) => l.msg === 'Token accepted' && l.sub === 'json-user')).toHaveLength(1);
    expect(parsed.find((l) => l.level === 'warning' && /no catalog access/.test(String(l.msg)))).toMatchObject({ sub: 'json-user', reason: 'no catalog_token claim' });
    expect(server.stderr()).not.toContain(t);
    expect(server.stderr()).not.toContain(t.split('.')[2]);
  });

  it('text logs (the default) carry no request lines', async () => {
    const server = await start();
    await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` }), { authorization: `Bearer ${await token()}` });
    expect(server.stderr()).not.toMatch(/^\{/m);
    expect(server.stderr()).not.toMatch(/ INFO request /);
  });

  it('metrics on their own port (MCP_METRICS_PORT): calls by tool and outcome, latency, 401s, token and STS caches, in flight; never on the MCP port', async () => {
    const server = await start({ MCP_METRICS_PORT: '0' });
    // Announced just after the MCP listener.
    for (let i = 0; i < 100 && !/metrics on http/.test(server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    const port = Number(/metrics on http:\/\/[^:]+:(\d+)\/metrics/.exec(server.stderr())?.[1]);
    expect(port).toBeGreaterThan(0);
    const t = await token('metrics-user');
    for (let i = 0; i < 3; i++) await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` }), { authorization: `Bearer ${t}` });
    await rawPost(server.url, TOOLS_CALL('bucket_object_text', { uri: 's3://not-mine/x.txt' }), { authorization: `Bearer ${t}` });
    await rawPost(server.url, TOOLS_CALL('bucket_list'), { authorization: 'Bearer nope' });
    await rawPost(server.url, TOOLS_CALL('no_such_tool'), { authorization: `Bearer ${t}` });

    const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await scrape.text();
    expect(text).toMatch(/^quilt_mcp_tool_calls_total\{tool="bucket_object_text",outcome="ok"\} 3$/m);
    expect(text).toMatch(/^quilt_mcp_tool_calls_total\{tool="bucket_object_text",outcome="tool_error"\} 1$/m);
    // A name the server does not know is not a label value a caller can mint.
    expect(text).not.toContain('no_such_tool');
    expect(text).toMatch(/^quilt_mcp_tool_calls_total\{tool="unknown",outcome="ok"\} 1$/m);
    expect(text).toMatch(/^quilt_mcp_http_responses_total\{code="401"\} 1$/m);
    expect(text).toMatch(/^quilt_mcp_tool_call_duration_seconds_count\{tool="bucket_object_text"\} 4$/m);
    expect(text).toMatch(/^quilt_mcp_token_verifications_total\{result="accepted"\} 1$/m);
    expect(text).toMatch(/^quilt_mcp_token_verifications_total\{result="rejected"\} 1$/m);
    expect(text).toMatch(/^quilt_mcp_token_cache_lookups_total\{result="hit"\} [1-9]/m);
    expect(text).toMatch(/^quilt_mcp_sts_calls_total\{action="AssumeRole"\} 1$/m);
    expect(text).toMatch(/^quilt_mcp_requests_in_flight 0$/m);
    expect(text).toMatch(/^quilt_mcp_draining 0$/m);
    expect(text).toMatch(/^quilt_mcp_process_resident_memory_bytes \d+/m);
    // Not on the MCP port.
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`)).status).toBe(404);
  });

  it('metrics on the MCP port only with MCP_METRICS_TOKEN, and only for that bearer; off by default', async () => {
    const secret = 'scrape-token-0123456789abcdef';
    const server = await start({ MCP_METRICS_TOKEN: secret });
    const url = `http://127.0.0.1:${server.port}/metrics`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${await token()}` } })).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${secret}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('quilt_mcp_requests_in_flight');
    const plain = await start();
    expect((await fetch(`http://127.0.0.1:${plain.port}/metrics`)).status).toBe(404);
  });
});

describe('hand-written requests', () => {
  it('answers JSON to a client that sends no Accept, */* (curl), or only application/json; 406 with what to send otherwise', async () => {
    const server = await start();
    const t = await token();
    const body = JSON.stringify(TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` }));
    for (const accept of [undefined, '*/*', 'application/json']) {
      const r = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t}`, ...(accept ? { accept } : {}) }, body });
      expect(r.status, String(accept)).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await r.json()) as { result: { content: Array<{ text: string }> } }).result.content[0]!.text).toMatch(/\nhello\n$/);
    }
    // The SDK's own path (initialize), and a call asking for progress, also as JSON.
    const init = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '0' } } }),
    });
    expect(init.status).toBe(200);
    expect(init.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await init.json()) as { result: { serverInfo: { name: string } } }).result.serverInfo.name).toBe('quilt-mcp');
    const progress = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${t}` },
      body: JSON.stringify({ ...TOOLS_CALL('bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` }), params: { name: 'bucket_object_text', arguments: { uri: `s3://${BUCKET}/hello.txt` }, _meta: { progressToken: 'p1' } } }),
    });
    expect(progress.headers.get('content-type')).toMatch(/^application\/json/);
    const html = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/html', authorization: `Bearer ${t}` }, body });
    expect(html.status).toBe(406);
    expect(((await html.json()) as { error: { message: string } }).error.message).toContain('Send "Accept: application/json, text/event-stream"');
  });

  it('says what to add to a body that is not a JSON-RPC request', async () => {
    const server = await start();
    const t = await token();
    const post = async (body: unknown) => {
      const r = await rawPost(server.url, body, { authorization: `Bearer ${t}` });
      return { status: r.status, message: ((await r.json()) as { error: { message: string } }).error.message };
    };
    const bare = await post({ method: 'tools/call', params: { name: 'bucket_list', arguments: {} } });
    expect(bare.status).toBe(400);
    expect(bare.message).toContain('add "jsonrpc": "2.0" and an "id"');
    expect(bare.message).toContain('{"jsonrpc":"2.0","id":1,"method":"tools/call"');
    expect((await post({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'bucket_list' } })).message).toContain('Without an "id" it would be a notification');
    expect((await post({ jsonrpc: '1.0', id: 1, method: 'ping' })).message).toContain('add "jsonrpc": "2.0"');
    expect((await post('"just a string"')).message).toContain('must be a JSON-RPC message');
    expect((await post([])).message).toContain('empty batch');
    // A notification (no id by design) is still accepted.
    expect((await rawPost(server.url, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
  });
});
