/**
 * What an operator sees of each HTTP request: one JSON log line (MCP_LOG_FORMAT=json) with the
 * time, request id, principal, JSON-RPC method, tool, status, duration and outcome, and the same
 * figures in the metrics. Never a token or an argument: only names, ids and numbers.
 *
 * The layers that learn a request's details (the tool runner: which tool, as whom, with what
 * result) note them in its record (request-record.ts). With neither JSON logs nor metrics on,
 * nothing runs on the request path.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from '../core/log.js';
import { observed, type RequestRecord } from '../core/request-record.js';
import type { Metrics } from './metrics.js';

/** A caller's request id, when it is a plain token (balancers and gateways send one); else a new one. */
const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

function requestId(req: http.IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** How a request ended, from its status and what the tool runner noted. */
function outcomeOf(res: http.ServerResponse, record: RequestRecord): string {
  if (!res.writableFinished) return 'client_closed';
  const s = res.statusCode;
  if (s < 300) return record.toolOutcome ?? 'ok';
  if (s === 401) return 'unauthorized';
  if (s === 403) return 'forbidden';
  if (s === 429 || s === 503) return 'busy';
  if (s < 500) return 'rejected';
  return 'error';
}

export class RequestObserver {
  constructor(
    private readonly logger: Logger,
    private readonly options: { log: boolean; metrics?: Metrics | undefined },
  ) {}

  /** Runs `handle` for one request, observed when logs or metrics ask for it. */
  observe(req: http.IncomingMessage, res: http.ServerResponse, handle: () => Promise<void>): Promise<void> {
    if (!this.options.log && !this.options.metrics) return handle();
    const record: RequestRecord = { id: requestId(req), started: performance.now() };
    res.setHeader('x-request-id', record.id);
    res.once('close', () => this.finish(req, res, record));
    return observed(record, handle);
  }

  private finish(req: http.IncomingMessage, res: http.ServerResponse, record: RequestRecord): void {
    const ms = performance.now() - record.started;
    const outcome = outcomeOf(res, record);
    this.options.metrics?.finished({ status: res.statusCode, rpcMethod: record.rpcMethod, tool: record.tool, outcome, seconds: ms / 1000 });
    if (!this.options.log) return;
    this.logger.info('request', {
      request_id: record.id,
      http_method: req.method,
      path: (req.url ?? '/').split('?')[0]?.slice(0, 200),
      status: res.statusCode,
      rpc_method: record.rpcMethod,
      tool: record.tool,
      principal: record.principal,
      duration_ms: Math.round(ms * 10) / 10,
      outcome,
      error_code: record.errorCode,
      remote: req.socket.remoteAddress,
    });
  }
}
