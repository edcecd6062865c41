/**
 * Stateless Streamable HTTP: nothing is kept between requests, so any replica behind any load
 * balancer can answer any request. tools/call runs on a tool table built once at start
 * (dispatch.ts); tools/list is answered from a cache; other messages (initialize, notifications,
 * batches, anything malformed) get a new McpServer and SDK transport per POST.
 *
 * Order of checks, cheapest first, so that nothing costs the server work before the caller is
 * known: Host/Origin, method, content type, the bearer token (verified before a byte of the body
 * is read), a slot (per process and per caller), then the body (small and quick without a token,
 * within a deadline always). In JWT mode `initialize`, `notifications/initialized`, `ping` and
 * `tools/list` may come without a token; everything else needs a valid one. Desktop mode serves
 * loopback only and needs the per-start secret printed on stderr: it serves the user's own AWS
 * credentials, which other local users and processes must not borrow.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { AuthService } from '../auth/service.js';
import type { RuntimeContext } from '../context.js';
import type { Config } from '../config.js';
import { RequestWork, runRequest } from '../core/call-scope.js';
import { ToolError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { redact } from '../core/redact.js';
import { toolRunner, type ServerDeps } from '../server.js';
import type { AnyTool } from '../tools/define.js';
import { scopeForKind } from '../auth/claims.js';
import { loadAthena, loadPresigner, loadS3, loadSts } from '../aws/clients.js';
import { loadNewConnectionRetries } from '../aws/retry.js';
import { allTools } from '../tools/index.js';
import { Admission, BodyError, capConnections, OriginPolicy, readBody, TOKENLESS_BODY_BYTES } from './http-guards.js';
import { ProtectedResource } from './oauth-metadata.js';
import { ToolsListCache } from './tools-list.js';
import { SharedServer } from './dispatch.js';
import { acceptance, envelopeProblem, NOT_ACCEPTABLE, withoutProgress } from './negotiate.js';
import { noteMessages } from '../core/request-record.js';
import { Operations } from './operations.js';

export interface HttpDeps {
  config: Config;
  logger: Logger;
  auth: AuthService;
  createServer: (deps: ServerDeps) => McpServer;
  /** The tools createServer registers (default: all). */
  tools?: readonly AnyTool[];
}

/**
 * Session ids (Mcp-Session-Id) without sessions: some clients attach their bearer token only
 * once they hold one. A random id is issued on `initialize`; later requests may carry any
 * well-formed id (visible ASCII, as the spec allows), which no replica stores or trusts, so any
 * replica answers any request; DELETE ends nothing and says so with success.
 */
const SESSION_ID = /^[\x21-\x7e]{1,256}$/;

/** Methods a client sends before it has a token. */
const PUBLIC_METHODS = new Set(['initialize', 'notifications/initialized', 'ping', 'tools/list']);
const MCP_PATH = '/mcp';
/** The admission key shared by every bearer being looked up before its caller is known. */
const LOOKUPS = '(bearer lookups)';

type Headers = Record<string, string>;

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Headers = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function jsonRpcError(res: http.ServerResponse, status: number, code: number, message: string, headers?: Headers): void {
  sendJson(res, status, { jsonrpc: '2.0', id: null, error: { code, message } }, headers);
}

type ChallengeError = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/** What a challenge adds for OAuth clients: where to discover the authorization server, and which scope to ask for. */
export interface ChallengeExtras {
  /** RFC 9728 5.1: the URL of this server's protected-resource metadata. */
  resourceMetadata?: string | undefined;
  /** RFC 6750 3: the scope the request needs (space-separated). */
  scope?: string | undefined;
}

/** A value inside a quoted-string header parameter: printable ASCII without quotes or backslashes. */
const quoted = (s: string) => s.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');

/**
 * The one place that builds the bearer challenge (RFC 6750): 401 for a missing or invalid token,
 * 403 for `insufficient_scope`; `resource_metadata` (RFC 9728) and `scope` when known.
 */
export function challenge(
  res: http.ServerResponse,
  error: ChallengeError | undefined,
  description: string,
  headers: Headers = {},
  extras: ChallengeExtras = {},
): void {
  // RFC 6750 3.1: a request without credentials gets a challenge without an error code.
  const params = [
    'realm="quilt-mcp"',
    ...(error ? [`error="${error}"`, `error_description="${quoted(redact(description))}"`] : []),
    ...(extras.scope ? [`scope="${quoted(extras.scope)}"`] : []),
    ...(extras.resourceMetadata ? [`resource_metadata="${quoted(extras.resourceMetadata)}"`] : []),
  ];
  sendJson(res, error === 'insufficient_scope' ? 403 : 401, { error: error ?? 'unauthorized', error_description: redact(description), ...(extras.scope ? { scope: extras.scope } : {}) }, {
    ...headers,
    'www-authenticate': `Bearer ${params.join(', ')}`,
  });
}

/** Tool kinds by name, for the scope a tools/call needs. */
const TOOL_KINDS = new Map(allTools.map((t) => [t.name, t.kind]));

/**
 * The kind of access each message of a request needs: a tool's kind, read for any other method
 * that needs a token, nothing for the handshake (initialize, ping, tools/list...) and responses.
 */
function kindsOf(messages: unknown[]): Array<'read' | 'write' | 'destructive'> {
  return messages.flatMap((m) => {
    const msg = m as { method?: unknown; params?: { name?: unknown } } | null;
    if (typeof msg?.method !== 'string' || PUBLIC_METHODS.has(msg.method)) return [];
    if (msg.method !== 'tools/call') return ['read' as const];
    return [TOOL_KINDS.get(String(msg.params?.name)) ?? 'read'];
  });
}

function bearer(req: http.IncomingMessage): string | undefined {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

const isInitialize = (body: unknown): boolean => (body as { method?: unknown } | null)?.method === 'initialize';

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** How long an unread body may keep draining after an early answer. */
const LINGER_MS = 5_000;

/**
 * After an early answer (before or instead of reading the body), the rest of the body is read and
 * dropped for a few seconds, then the connection is cut: closing at once would reset a client still
 * sending, and it would never see the answer; draining for ever would let it hold the socket.
 */
function lingerAfter(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.once('finish', () => {
    if (req.complete) return;
    const timer = setTimeout(() => req.socket.destroy(), LINGER_MS).unref();
    req.once('end', () => clearTimeout(timer));
    req.once('close', () => clearTimeout(timer));
    req.removeAllListeners('data');
    req.resume();
  });
}

/**
 * What tenants' first calls would load, loaded before the server listens: evaluating the AWS SDK's
 * S3 client holds the event loop about 180 ms here (STS and Athena about 20 ms each), which the
 * first S3 call of a shared process made every tenant wait (test/security/memory.test.ts, a
 * server's first diffs: 116 ms). Stdio (one user) keeps loading them on first use, to start fast.
 */
async function preload(): Promise<void> {
  await Promise.all([loadS3(), loadSts(), loadAthena(), loadPresigner(), loadNewConnectionRetries(), import('yaml'), import('jose')]);
}

export async function serveHttp({ config, logger, auth, createServer, tools = allTools }: HttpDeps): Promise<http.Server> {
  await preload();
  const policy = new OriginPolicy(config);
  const admission = new Admission(config.http.maxInflight);
  const toolsList = new ToolsListCache(() => createServer({ auth, logger }));
  // tools/call runs on a tool table built once; other messages get a server and transport per POST.
  const shared = new SharedServer(
    createServer({ auth, logger }),
    tools.map((tool) => ({ tool, run: toolRunner(tool, { auth, logger, callTimeoutMs: config.tools.callTimeoutMs }) })),
  );
  const counters = { busy: 0, connectionsRefused: 0 };
  // JWT mode is an OAuth protected resource; desktop mode's per-start secret is not an OAuth token.
  const resource = config.mode === 'jwt' ? new ProtectedResource(config.jwt, MCP_PATH) : undefined;
  const oauth = config.jwt.authorizationServers.length > 0;
  /** Every 401/403 challenge of this server, with its resource metadata URL. */
  const deny = (req: http.IncomingMessage, res: http.ServerResponse, error: ChallengeError | undefined, description: string, headers: Headers, scope?: string) =>
    challenge(res, error, description, headers, { resourceMetadata: resource?.metadataUrl(req), scope });
  // Desktop mode: a secret for this run, compared in constant time (as digests, so lengths never leak).
  const localSecret = config.mode === 'desktop' ? randomBytes(24).toString('base64url') : undefined;
  const localDigest = localSecret ? sha256(localSecret) : undefined;

  /** A body too large (declared or sent) or too slow. */
  const refuseBody = (req: http.IncomingMessage, res: http.ServerResponse, err: BodyError): void => {
    let cors = policy.corsHeaders(req);
    if (err.status === 408) {
      // Too slow for the deadline: cut off once answered, and said so, so that a keep-alive client
      // does not send its next request on a connection being closed (it would see a reset).
      cors = { ...cors, connection: 'close' };
      res.once('finish', () => {
        req.socket.end();
        setTimeout(() => req.socket.destroy(), 1_000).unref();
      });
    } else lingerAfter(req, res);
    if (err.status === 413 && auth.mode === 'jwt' && bearer(req) === undefined) {
      return deny(req, res, undefined, `Requests without a token may carry at most ${TOKENLESS_BODY_BYTES} bytes: send Authorization: Bearer <JWT>.`, cors);
    }
    jsonRpcError(res, err.status, -32000, err.message, cors);
  };

  const handleMcp = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const refusal = policy.refusal(req);
    if (refusal) {
      logger.warning('Refused a request', { reason: refusal });
      lingerAfter(req, res);
      return jsonRpcError(res, 403, -32000, `Forbidden: ${refusal}.`);
    }
    const cors = policy.corsHeaders(req);
    if (req.method === 'OPTIONS' && req.headers.origin !== undefined) {
      // CORS preflight from an allowed origin (a disallowed one was refused above).
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'POST, DELETE, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id',
        'access-control-max-age': '600',
      });
      return res.end();
    }
    const sessionId = req.headers['mcp-session-id'];
    if (sessionId !== undefined && (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId))) {
      lingerAfter(req, res);
      return jsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id must be 1 to 256 visible ASCII characters.', cors);
    }
    if (req.method === 'DELETE' && sessionId !== undefined) {
      // Nothing is stored for a session, so ending one is always a success.
      lingerAfter(req, res);
      res.writeHead(200, { ...cors, 'content-length': '0', 'cache-control': 'no-store' });
      return res.end();
    }
    if (req.method !== 'POST') {
      lingerAfter(req, res);
      // Stateless: no SSE stream to resume (GET); DELETE needs the Mcp-Session-Id it ends.
      const allow = 'POST, DELETE';
      return req.method === 'DELETE'
        ? jsonRpcError(res, 400, -32000, 'Bad Request: DELETE ends a session and needs its Mcp-Session-Id header.', { ...cors, allow })
        : jsonRpcError(res, 405, -32000, 'Method not allowed: this server sends no event stream; POST JSON-RPC to /mcp.', { ...cors, allow });
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      lingerAfter(req, res);
      return jsonRpcError(res, 415, -32000, `Unsupported Media Type${req.headers['content-type'] ? ` (${String(req.headers['content-type']).slice(0, 60)})` : ''}: the body must be JSON-RPC sent with Content-Type: application/json (curl: -H 'Content-Type: application/json').`, cors);
    }
    const accepts = acceptance(req.headers.accept);
    if (!accepts) {
      lingerAfter(req, res);
      return jsonRpcError(res, 406, -32000, NOT_ACCEPTABLE, cors);
    }
    // JSON only: the SDK transport, which asks for both, answers with JSON instead of a stream.
    if (accepts === 'json') req.headers.accept = 'application/json, text/event-stream';

    // The token first: an unknown caller costs no body reading.
    const token = bearer(req);
    if (token === undefined && req.headers.authorization !== undefined) {
      lingerAfter(req, res);
      return deny(req, res, 'invalid_request', 'The Authorization header must be "Bearer <token>".', cors);
    }
    let authInfo: AuthInfo | undefined;
    let ctx: RuntimeContext | undefined;
    let caller = '(no token)';
    if (localDigest) {
      if (token === undefined || !timingSafeEqual(sha256(token), localDigest)) {
        lingerAfter(req, res);
        return deny(
          req,
          res,
          token === undefined ? undefined : 'invalid_token',
          'Desktop mode over HTTP needs the access token printed on the server\'s stderr when it started: send Authorization: Bearer <token>.',
          cors,
        );
      }
      caller = 'desktop';
    } else if (token !== undefined) {
      // A bearer that must be looked up elsewhere (an unknown Quilt API key) first takes a slot of
      // the lookups' own: together they hold at most a caller's share, so unknown keys cannot make
      // the server call out without limit before anyone is known.
      let lookup: (() => void) | undefined;
      if (auth.needsLookup?.(token)) {
        lookup = admission.tryAcquire(LOOKUPS);
        if (!lookup) {
          counters.busy++;
          lingerAfter(req, res);
          return jsonRpcError(res, 503, -32000, 'Server busy: too many sign-ins with Quilt API keys are in progress; retry shortly.', { ...cors, 'retry-after': '1' });
        }
      }
      try {
        ctx = await auth.context({ token });
        authInfo = { token, clientId: ctx.principal.id, scopes: [] };
        caller = `user:${ctx.principal.key}`;
      } catch (err) {
        lingerAfter(req, res);
        if (err instanceof ToolError && err.code === 'unauthorized') return deny(req, res, 'invalid_token', err.message, cors);
        const e = err instanceof ToolError ? err : new ToolError('internal', 'Token verification failed.');
        logger.error('Token verification failed', { error: e.message });
        return jsonRpcError(res, 503, -32000, e.message, cors);
      } finally {
        lookup?.();
      }
    }

    const limit = token === undefined ? TOKENLESS_BODY_BYTES : config.http.maxBodyBytes;
    if (Number(req.headers['content-length'] ?? 0) > limit) return refuseBody(req, res, new BodyError(413, `The request body is larger than ${limit} bytes.`));

    const release = admission.tryAcquire(caller);
    if (!release) {
      counters.busy++;
      lingerAfter(req, res);
      const whose = caller === '(no token)' ? 'requests without a token are' : 'of your requests are';
      return jsonRpcError(res, 503, -32000, `Server busy: too many ${whose} in progress; retry shortly.`, { ...cors, 'retry-after': '1' });
    }
    // The slot is held until the response is closed AND every handler the request started has ended:
    // a caller that hangs up must not free its slot while its work runs on (the work is cancelled
    // when the response closes, so it ends soon after).
    const work = new RequestWork();
    res.once('close', () => void work.idle().then(release));
    await runRequest(work, () => serveAdmitted(req, res, { token, authInfo, ctx, limit, cors, accepts }));
    // Returns once the request's handlers have ended too, so the drain on SIGTERM waits for them.
    await work.idle();
  };

  /** The rest of a request once it holds a slot: the body, then the answer. */
  const serveAdmitted = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    {
      token,
      authInfo,
      ctx,
      limit,
      cors,
      accepts,
    }: { token: string | undefined; authInfo: AuthInfo | undefined; ctx: RuntimeContext | undefined; limit: number; cors: Headers; accepts: 'json' | 'both' },
  ) => {
    let text: string;
    try {
      text = await readBody(req, limit);
    } catch (err) {
      if (!(err instanceof BodyError)) return void res.destroy();
      return refuseBody(req, res, err);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return jsonRpcError(res, 400, -32700, 'Parse error: the body is not JSON.', cors);
    }
    if (accepts === 'json') body = withoutProgress(body);
    const messages = Array.isArray(body) ? body : [body];
    noteMessages(messages);
    const malformed = envelopeProblem(messages);
    if (malformed) return jsonRpcError(res, 400, -32600, `Invalid Request: ${malformed}`, cors);
    if (auth.mode === 'jwt' && token === undefined) {
      const needing = messages.filter((m) => {
        const method = (m as { method?: unknown } | null)?.method;
        return typeof method !== 'string' || !PUBLIC_METHODS.has(method);
      });
      if (needing.length) {
        // With authorization servers, say which scope to ask for (MCP spec: the least the request needs).
        const scope = oauth ? [...new Set(kindsOf(needing).map(scopeForKind))].join(' ') : undefined;
        return deny(req, res, undefined, 'This server requires a JWT: send Authorization: Bearer <token>.', cors, scope);
      }
    }
    if (ctx?.insufficientScope) {
      // An OAuth token without the scope a call needs: 403, so the client can step up (MCP spec, RFC 6750 3.1).
      const missing = new Set(kindsOf(messages).flatMap((k) => ctx?.insufficientScope?.(k)?.split(' ') ?? []));
      if (missing.size) {
        return deny(req, res, 'insufficient_scope', `This token's scopes do not allow this call; it needs ${[...missing].join(' ')}.`, cors, [...missing].join(' '));
      }
    }

    const listed = ToolsListCache.isToolsList(body) ? await toolsList.answer(req, body) : undefined;
    if (listed !== undefined) {
      res.writeHead(200, { ...cors, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(listed)) });
      return res.end(listed);
    }

    if (await shared.fastCall(req, res, body, { authInfo, ctx }, cors)) return;

    const server = createServer({ auth, logger });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: accepts === 'json' });
    res.once('close', () => {
      void transport.close();
      void server.close();
    });
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    if (isInitialize(body)) res.setHeader('mcp-session-id', randomUUID());
    await server.connect(transport);
    if (authInfo) (req as http.IncomingMessage & { auth?: AuthInfo }).auth = authInfo;
    await transport.handleRequest(req, res, body);
  };

  // Room for large tokens in headers, so the token size limit answers with a clear 401 rather than 431.
  // Timeouts are checked every second (Node's default is every 30 s).
  // /health, /ready, /metrics, the request log and the drain on SIGTERM: operations.ts.
  const ops = await Operations.create({ config, logger, auth, tools: tools.map((t) => t.name) });
  const server = http.createServer({ maxHeaderSize: 64 * 1024, connectionsCheckingInterval: 1_000 }, ops.handler(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (resource?.paths.has(path)) return resource.serve(req, res);
    if (path !== MCP_PATH) {
      lingerAfter(req, res);
      return sendJson(res, 404, { error: 'not_found', error_description: `Not found; MCP is served at ${MCP_PATH}.` });
    }
    await handleMcp(req, res).catch((err: unknown) => {
      logger.error('HTTP request failed', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) jsonRpcError(res, 500, -32603, 'Internal server error');
      else res.end();
    });
  }));
  capConnections(server, config.http.maxConnections, () => counters.connectionsRefused++);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A kernel accept queue as deep as the connections the server takes (Node's default is 511): a
    // burst of new connections waits to be accepted instead of overflowing into resets.
    server.listen({ port: config.http.port, host: config.http.host, backlog: config.http.maxConnections }, resolve);
  });
  const { port } = server.address() as AddressInfo;
  policy.listening(port);
  if (localSecret) {
    // Printed once, straight to stderr (the logger would redact it, and MCP clients must not get it).
    process.stderr.write(
      `quilt-mcp: desktop mode over HTTP serves your own AWS credentials, so every request needs this run's access token:\n` +
        `quilt-mcp: access token: ${localSecret}\n` +
        `quilt-mcp: send it as "Authorization: Bearer <token>"; it changes at every start.\n`,
    );
  }

  logger.notice(`quilt-mcp listening on http://${config.http.host}:${port}${MCP_PATH}`, {
    mode: config.mode,
    max_connections: config.http.maxConnections,
    max_inflight: config.http.maxInflight,
  });
  await ops.start(server, () => ({ busy_refusals: counters.busy, connections_refused: counters.connectionsRefused }));
  return server;
}
