/**
 * Stateless Streamable HTTP: a new McpServer and transport for every POST, so any replica behind
 * any load balancer can answer any request. The bearer token is checked here, before the MCP
 * layer: `initialize`, `notifications/initialized`, `ping` and `tools/list` may come without one;
 * everything else needs a valid token (JWT mode). Desktop mode serves loopback only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { AuthService } from '../auth/service.js';
import type { Config } from '../config.js';
import { ToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { redact } from '../redact.js';
import type { ServerDeps } from '../server.js';
import { VERSION } from '../version.js';

export interface HttpDeps {
  config: Config;
  logger: Logger;
  auth: AuthService;
  createServer: (deps: ServerDeps) => McpServer;
}

/** Methods a client sends before it has a token. */
const PUBLIC_METHODS = new Set(['initialize', 'notifications/initialized', 'ping', 'tools/list']);
const MCP_PATH = '/mcp';

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function jsonRpcError(res: http.ServerResponse, status: number, code: number, message: string, headers?: Record<string, string>): void {
  sendJson(res, status, { jsonrpc: '2.0', id: null, error: { code, message } }, headers);
}

/**
 * The one place that builds the 401 challenge (RFC 6750). OAuth protected-resource metadata
 * (RFC 9728) will add its `resource_metadata` parameter here.
 */
export function challenge(res: http.ServerResponse, error: 'invalid_request' | 'invalid_token' | undefined, description: string): void {
  const safe = redact(description).replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
  // RFC 6750 3.1: a request without credentials gets a challenge without an error code.
  const params = error ? `, error="${error}", error_description="${safe}"` : '';
  sendJson(res, 401, { error: error ?? 'unauthorized', error_description: redact(description) }, {
    'www-authenticate': `Bearer realm="quilt-mcp"${params}`,
  });
}

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return reject(new BodyTooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.destroy();
        reject(new BodyTooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function allowedHosts(config: Config, port: number): Set<string> | undefined {
  const configured = config.http.allowedHosts.map((h) => h.toLowerCase());
  if (config.mode === 'jwt' && configured.length === 0) return undefined; // behind a load balancer: any Host
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].flatMap((h) => [h, `${h}:${port}`]);
  return new Set([...loopback, ...configured]);
}

function bearer(req: http.IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

export async function serveHttp({ config, logger, auth, createServer }: HttpDeps): Promise<http.Server> {
  let hosts: Set<string> | undefined;

  const handleMcp = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const host = (req.headers.host ?? '').toLowerCase();
    const origin = req.headers.origin;
    let originHost: string | undefined;
    try {
      originHost = origin ? new URL(origin).host.toLowerCase() : undefined;
    } catch {
      originHost = 'invalid';
    }
    if (hosts && (!hosts.has(host) || (originHost !== undefined && !hosts.has(originHost)))) {
      logger.warning('Rejected request with a disallowed Host/Origin (DNS rebinding protection)', { host, origin });
      return jsonRpcError(res, 403, -32000, 'Forbidden: Host or Origin is not allowed.');
    }
    if (req.method !== 'POST') {
      // Stateless: no SSE stream to resume (GET) and no session to end (DELETE).
      return jsonRpcError(res, 405, -32000, 'Method not allowed: this server is stateless; POST JSON-RPC to /mcp.', { allow: 'POST' });
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return jsonRpcError(res, 415, -32000, 'Unsupported Media Type: send Content-Type: application/json.');
    }
    let text: string;
    try {
      text = await readBody(req, config.http.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) return jsonRpcError(res, 413, -32000, `Request body larger than ${config.http.maxBodyBytes} bytes.`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return jsonRpcError(res, 400, -32700, 'Parse error: the body is not JSON.');
    }
    const messages = Array.isArray(body) ? body : [body];
    const needsToken = messages.some((m) => {
      const method = (m as { method?: unknown } | null)?.method;
      return typeof method !== 'string' || !PUBLIC_METHODS.has(method);
    });

    let authInfo: AuthInfo | undefined;
    if (auth.mode === 'jwt') {
      const token = bearer(req);
      if (!token && req.headers.authorization) return challenge(res, 'invalid_request', 'The Authorization header must be "Bearer <JWT>".');
      if (!token && needsToken) return challenge(res, undefined, 'This server requires a JWT: send Authorization: Bearer <token>.');
      if (token) {
        try {
          const ctx = await auth.context({ token });
          authInfo = { token, clientId: ctx.principal.id, scopes: [] };
        } catch (err) {
          if (err instanceof ToolError && err.code === 'unauthorized') return challenge(res, 'invalid_token', err.message);
          const e = err instanceof ToolError ? err : new ToolError('internal', 'Token verification failed.');
          logger.error('Token verification failed', { error: e.message });
          return jsonRpcError(res, 503, -32000, e.message);
        }
      }
    }

    const server = createServer({ auth, logger });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    if (authInfo) (req as http.IncomingMessage & { auth?: AuthInfo }).auth = authInfo;
    await transport.handleRequest(req, res, body);
  };

  // Room for large tokens in headers, so the token size limit answers with a clear 401 rather than 431.
  const server = http.createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      return sendJson(res, 200, { status: 'ok', name: 'quilt-mcp', version: VERSION, mode: config.mode });
    }
    if (path !== MCP_PATH) return sendJson(res, 404, { error: 'not_found', error_description: `Not found; MCP is served at ${MCP_PATH}.` });
    handleMcp(req, res).catch((err: unknown) => {
      logger.error('HTTP request failed', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal server error');
      else res.end();
    });
  });
  server.requestTimeout = 5 * 60_000;
  server.headersTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  hosts = allowedHosts(config, port);
  logger.notice(`quilt-mcp listening on http://${config.http.host}:${port}${MCP_PATH}`, { mode: config.mode });

  let closing = false;
  const shutdown = (why: string) => {
    if (closing) return;
    closing = true;
    logger.info('Shutting down', { reason: why });
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  return server;
}
