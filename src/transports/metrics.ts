/**
 * Prometheus metrics (prom-client, loaded only when metrics are on): HTTP answers by status, tool
 * calls by tool and outcome with latency histograms, requests in flight, whether the process is
 * draining, token verification and STS cache figures from the auth service, and Node's process
 * metrics (CPU, memory, event-loop delay, GC).
 *
 * Off unless MCP_METRICS_PORT (their own listener) or MCP_METRICS_TOKEN (a bearer on the MCP port,
 * or on that listener) is set: on the MCP port they are never served without the token, since tool
 * names, caller counts and error rates are not every caller's business.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../core/log.js';

/** What one finished request adds to the metrics. */
export interface FinishedRequest {
  status: number;
  rpcMethod: string | undefined;
  tool: string | undefined;
  outcome: string;
  seconds: number;
}

export interface Metrics {
  finished(r: FinishedRequest): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; text: string }>;
}

/** Figures the auth service keeps (JwtAuthService.stats). */
type AuthStats = Record<string, unknown>;

export interface MetricsSources {
  inFlight: () => number;
  draining: () => boolean;
  /** Known tool names (anything else is counted as "unknown", so a caller cannot mint label values). */
  tools: readonly string[];
  authStats?: (() => AuthStats) | undefined;
}

const RPC_METHODS = new Set(['initialize', 'notifications/initialized', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list', 'batch']);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});

export async function createMetrics(sources: MetricsSources): Promise<Metrics> {
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'quilt_mcp_' });
  const tools = new Set(sources.tools);

  const responses = new client.Counter({
    name: 'quilt_mcp_http_responses_total',
    help: 'HTTP answers on the MCP port by status code (401/403: auth; 429/503: refused for load; 408/413: body limits).',
    labelNames: ['code'],
    registers: [registry],
  });
  const requestSeconds = new client.Histogram({
    name: 'quilt_mcp_http_request_duration_seconds',
    help: 'Time from a request arriving to its answer, by JSON-RPC method.',
    labelNames: ['rpc_method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const calls = new client.Counter({
    name: 'quilt_mcp_tool_calls_total',
    help: 'Tool calls by tool and outcome (ok, tool_error, or how the request ended before the tool answered).',
    labelNames: ['tool', 'outcome'],
    registers: [registry],
  });
  const callSeconds = new client.Histogram({
    name: 'quilt_mcp_tool_call_duration_seconds',
    help: 'Tool call latency by tool, request arrival to answer.',
    labelNames: ['tool'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  new client.Gauge({
    name: 'quilt_mcp_requests_in_flight',
    help: 'HTTP requests being handled now.',
    registers: [registry],
    collect() {
      this.set(sources.inFlight());
    },
  });
  new client.Gauge({
    name: 'quilt_mcp_draining',
    help: '1 while the process drains after SIGTERM (readiness false), else 0.',
    registers: [registry],
    collect() {
      this.set(sources.draining() ? 1 : 0);
    },
  });

  // Counters kept by the auth service, read at scrape time (nothing added to the request path).
  const authStats = sources.authStats;
  if (authStats) {
    const fromStats = (name: string, help: string, label: string, pick: (s: AuthStats) => Record<string, number>) =>
      new client.Counter({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          for (const [value, n] of Object.entries(pick(authStats()))) this.inc({ [label]: value }, n);
        },
      });
    fromStats('quilt_mcp_token_verifications_total', 'Tokens checked at the door (cache misses), by result.', 'result', (s) => ({
      accepted: num(s.tokens_verified),
      rejected: num(s.tokens_rejected),
    }));
    fromStats('quilt_mcp_token_cache_lookups_total', 'Verified-token cache lookups, by result.', 'result', (s) => ({
      hit: num(obj(s.token_cache).hits),
      miss: num(obj(s.token_cache).misses),
    }));
    fromStats('quilt_mcp_sts_credential_lookups_total', 'STS credential cache lookups (a miss calls STS), by result.', 'result', (s) => ({
      hit: num(obj(s.sts).hits),
      miss: num(obj(s.sts).misses),
    }));
    fromStats('quilt_mcp_sts_calls_total', 'Calls to AWS STS, by action.', 'action', (s) => ({
      AssumeRole: num(obj(s.sts).assumeRoleCalls),
      AssumeRoleWithWebIdentity: num(obj(s.sts).webIdentityCalls),
    }));
  }

  return {
    finished(r) {
      responses.inc({ code: String(r.status) });
      const method = r.rpcMethod && RPC_METHODS.has(r.rpcMethod) ? r.rpcMethod : r.rpcMethod ? 'other' : 'none';
      requestSeconds.observe({ rpc_method: method }, r.seconds);
      if (r.rpcMethod === 'tools/call') {
        const tool = r.tool && tools.has(r.tool) ? r.tool : 'unknown';
        calls.inc({ tool, outcome: r.outcome });
        callSeconds.observe({ tool }, r.seconds);
      }
    },
    async render() {
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** GET /metrics: with MCP_METRICS_TOKEN set, only for `Authorization: Bearer <token>` (compared in constant time). */
export function metricsHandler(metrics: Metrics, token: string | undefined): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const wanted = token ? digest(token) : undefined;
  return (req, res) => {
    const send = (status: number, type: string, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'GET /metrics\n', { allow: 'GET, HEAD' });
    if (wanted) {
      const given = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (!given || !timingSafeEqual(digest(given), wanted)) {
        return send(401, 'text/plain', 'Metrics need the scrape token: send Authorization: Bearer <MCP_METRICS_TOKEN>.\n', { 'www-authenticate': 'Bearer realm="quilt-mcp-metrics"' });
      }
    }
    metrics.render().then(
      ({ contentType, text }) => send(200, contentType, text),
      () => send(500, 'text/plain', 'metrics unavailable\n'),
    );
  };
}

/** MCP_METRICS_PORT: a listener of its own that serves only /metrics. */
export async function listenForMetrics(settings: Config['metrics'], host: string, metrics: Metrics, logger: Logger): Promise<http.Server> {
  const handler = metricsHandler(metrics, settings.token);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') return handler(req, res);
    const text = 'Not found; metrics are at /metrics.\n';
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  logger.notice(`metrics on http://${host}:${port}/metrics`, { token_required: Boolean(settings.token) });
  return server;
}
