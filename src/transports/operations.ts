/**
 * The operator's side of the HTTP server, around the MCP handler: /health (liveness), /ready
 * (readiness, false while draining), /metrics when enabled, the request log and metrics of every
 * request, the connection timeouts and the drain on SIGTERM (lifecycle.ts).
 */
import type http from 'node:http';
import type { AuthService } from '../auth/service.js';
import type { Config } from '../config.js';
import type { Logger } from '../core/log.js';
import { VERSION } from '../core/version.js';
import { applyTimeouts, Lifecycle, type Exit } from './lifecycle.js';
import { createMetrics, listenForMetrics, metricsHandler, type Metrics } from './metrics.js';
import { RequestObserver } from './observe.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

function sendJson(res: http.ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) });
  res.end(head ? undefined : text);
}

export class Operations {
  readonly lifecycle: Lifecycle;
  private readonly observer: RequestObserver;
  private readonly metricsOnMcpPort: Handler | undefined;

  private constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: Metrics | undefined,
    exit?: Exit,
  ) {
    this.lifecycle = new Lifecycle(config.http, logger, exit);
    this.observer = new RequestObserver(logger, { log: config.logFormat === 'json', metrics });
    // On the MCP port only with the token; MCP_METRICS_PORT gives them a listener of their own instead.
    this.metricsOnMcpPort = metrics && config.metrics.token && config.metrics.port === undefined ? metricsHandler(metrics, config.metrics.token) : undefined;
  }

  static async create({ config, logger, auth, tools, exit }: { config: Config; logger: Logger; auth: AuthService; tools: readonly string[]; exit?: Exit }): Promise<Operations> {
    const enabled = config.metrics.port !== undefined || config.metrics.token !== undefined;
    let lifecycle: Lifecycle | undefined;
    const stats = (auth as { stats?: () => Record<string, unknown> }).stats;
    const metrics = enabled
      ? await createMetrics({
          tools,
          inFlight: () => lifecycle?.requestsInFlight ?? 0,
          draining: () => lifecycle?.draining ?? false,
          authStats: stats ? () => stats.call(auth) : undefined,
        })
      : undefined;
    const ops = new Operations(config, logger, metrics, exit);
    lifecycle = ops.lifecycle;
    return ops;
  }

  /** The server's request listener: the operator's paths, then `mcp`, tracked and observed. */
  handler(mcp: Handler): http.RequestListener {
    return (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const head = req.method === 'HEAD';
      const get = req.method === 'GET' || head;
      if (get && path === '/health') {
        return sendJson(res, 200, { status: 'ok', name: 'quilt-mcp', version: VERSION, mode: this.config.mode, ...this.lifecycle.health() }, head);
      }
      if (get && path === '/ready') {
        const ready = this.lifecycle.ready();
        return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'draining' }, head);
      }
      if (path === '/metrics' && this.metricsOnMcpPort) return void this.metricsOnMcpPort(req, res);
      this.lifecycle.track(res, this.observer.observe(req, res, async () => mcp(req, res)));
    };
  }

  /** Timeouts, the metrics listener, and the drain on SIGTERM/SIGINT; `counters` are logged when draining. */
  async start(server: http.Server, counters?: () => Record<string, unknown>): Promise<void> {
    applyTimeouts(server, this.config.http);
    this.lifecycle.manage(server, counters);
    if (this.metrics && this.config.metrics.port !== undefined) {
      this.lifecycle.manage(await listenForMetrics(this.config.metrics, this.config.http.host, this.metrics, this.logger));
    }
    this.lifecycle.installSignalHandlers();
  }
}
