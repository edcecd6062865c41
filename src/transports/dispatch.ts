/**
 * tools/call over stateless HTTP without building a server per request.
 *
 * Building an McpServer with every tool and a Streamable HTTP transport for each POST cost as much
 * as the rest of a cached-token tool call together, and the SDK's generic dispatch runs a dozen zod
 * parses per message (two of them failing on purpose, to tell requests from responses). The tool
 * table never changes while the process runs, so it is built once, and a well-formed call takes a
 * direct path: the message validated with the SDK's own schemas (JSON-RPC request, then
 * CallToolRequest), the tool's arguments with its zod input schema as McpServer does, the same
 * callback McpServer registers (server.ts `toolRunner`: the caller's context from the token, the
 * handler inside AsyncLocalStorage), the output checked against the tool's output schema with the
 * SDK's message, the answer serialized. Concurrent tenants share the tool table and nothing else.
 *
 * Anything the direct path does not take exactly as the SDK would (an unknown tool, invalid
 * arguments, task-augmented calls) goes to one long-lived McpServer over an in-process transport,
 * so its answers are the SDK's own; initialize, notifications, batches and transport-level errors
 * never reach this file (http.ts hands them to the SDK's transport).
 */
import type http from 'node:http';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { getParseErrorMessage, normalizeObjectSchema, safeParse, safeParseAsync, type AnyObjectSchema } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import {
  CallToolRequestSchema,
  JSONRPCRequestSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type CallToolResult,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { RuntimeContext } from '../context.js';
import type { CallExtras } from '../server.js';
import type { AnyTool } from '../tools/define.js';
import { toolInputSchema } from '../tools/schema.js';

/** One tool of the direct path and its callback (server.ts `toolRunner`). */
export interface DirectTool {
  tool: AnyTool;
  run(args: unknown, extra: CallExtras): Promise<CallToolResult>;
}

interface Pending {
  /** The caller's own request id. */
  id: RequestId;
  resolve(message: JSONRPCMessage | undefined): void;
  /** Notifications the handler sends about this request (progress). */
  notify(message: JSONRPCMessage): void;
}

/** A Transport that is never connected to a client: each request is handed in and its answer handed back. */
class InProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.onclose?.();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if ('id' in message && ('result' in message || 'error' in message)) {
      const p = this.pending.get(message.id as number);
      if (!p) return; // cancelled: the caller went away
      this.pending.delete(message.id as number);
      p.resolve({ ...message, id: p.id } as JSONRPCMessage);
      return;
    }
    const related = options?.relatedRequestId;
    if (related !== undefined) this.pending.get(related as number)?.notify(message);
    // Anything else (a request to the client, an unrelated notification) has no stream to go on,
    // exactly as with a stateless SDK transport after its POST was answered.
  }

  /** Runs one request; `cancel` aborts its handler (the caller disconnected). */
  request(
    message: JSONRPCRequest,
    extra: { authInfo?: AuthInfo | undefined; requestInfo: { headers: http.IncomingHttpHeaders } },
    notify: (m: JSONRPCMessage) => void,
  ): { answer: Promise<JSONRPCMessage | undefined>; cancel(): void } {
    const internal = this.next++;
    if (this.next > Number.MAX_SAFE_INTEGER - 1) this.next = 1;
    const answer = new Promise<JSONRPCMessage | undefined>((resolve) => this.pending.set(internal, { id: message.id, resolve, notify }));
    this.onmessage?.({ ...message, id: internal }, extra);
    return {
      answer,
      cancel: () => {
        const p = this.pending.get(internal);
        if (!p) return;
        this.pending.delete(internal);
        p.resolve(undefined);
        this.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: internal, reason: 'The client disconnected.' } });
      },
    };
  }

  get inFlight(): number {
    return this.pending.size;
  }
}

interface Compiled {
  name: string;
  input: AnyObjectSchema | undefined;
  output: AnyObjectSchema | undefined;
  run: DirectTool['run'];
}

export class SharedServer {
  private readonly transport = new InProcessTransport();
  private ready = false;
  private readonly connected: Promise<void>;
  private readonly tools: Map<string, Compiled>;

  constructor(server: McpServer, tools: readonly DirectTool[]) {
    this.connected = server.connect(this.transport).then(() => void (this.ready = true));
    this.tools = new Map(
      tools.map(({ tool, run }) => [tool.name, { name: tool.name, input: toolInputSchema(tool), output: tool.output ? normalizeObjectSchema(tool.output) : undefined, run }]),
    );
  }

  /**
   * Answers `body` when it is a single tools/call request the SDK's stateless transport would take
   * (a valid JSON-RPC request, an Accept the SDK accepts, a supported or absent protocol version);
   * false sends it down the SDK transport's path.
   */
  async fastCall(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: unknown,
    auth: { authInfo: AuthInfo | undefined; ctx: RuntimeContext | undefined },
    headers: Record<string, string>,
  ): Promise<boolean> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
    if ((body as { method?: unknown }).method !== 'tools/call') return false;
    const accept = req.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return false;
    const version = req.headers['mcp-protocol-version'];
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(String(version))) return false;
    const parsed = JSONRPCRequestSchema.safeParse(body);
    if (!parsed.success) return false;
    if (!this.ready) await this.connected;

    // The client accepts both; a JSON answer is cheaper for both sides. A call that asked for
    // progress gets an event stream, so its notifications reach the client as they happen.
    const wantsProgress = parsed.data.params?._meta?.progressToken !== undefined;
    let streaming = false;
    const startStream = () => {
      if (streaming) return;
      streaming = true;
      res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    };
    const event = (m: JSONRPCMessage) => `event: message\ndata: ${JSON.stringify(m)}\n\n`;
    const notify = (m: JSONRPCMessage) => {
      if (!wantsProgress || res.writableEnded) return;
      startStream();
      res.write(event(m));
    };

    const answer = (await this.direct(parsed.data, auth, res, notify)) ?? (await this.viaServer(parsed.data, auth.authInfo, req, res, notify));
    if (answer === undefined || res.destroyed) return true;
    if (wantsProgress) {
      startStream();
      res.end(event(answer));
      return true;
    }
    const text = JSON.stringify(answer);
    res.writeHead(200, { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
    return true;
  }

  /**
   * The direct path; undefined when the call is not one it takes (then nothing has run yet).
   * Mirrors McpServer's tools/call handler for a registered, enabled tool without task support.
   */
  private async direct(
    request: JSONRPCRequest,
    auth: { authInfo: AuthInfo | undefined; ctx: RuntimeContext | undefined },
    res: http.ServerResponse,
    notify: (m: JSONRPCMessage) => void,
  ): Promise<JSONRPCMessage | undefined> {
    const call = CallToolRequestSchema.safeParse(request);
    if (!call.success || call.data.params.task) return undefined;
    const { name, arguments: args, _meta } = call.data.params;
    const tool = this.tools.get(name);
    if (!tool) return undefined;
    let input: unknown = args;
    if (tool.input) {
      const parsed = await parse(tool.input, args ?? {});
      if (!parsed.success) return undefined;
      input = parsed.data;
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    let result: CallToolResult;
    try {
      result = await tool.run(input, {
        signal: abort.signal,
        authInfo: auth.authInfo,
        ctx: auth.ctx,
        progressToken: _meta?.progressToken,
        notify: async (n) => {
          if (!abort.signal.aborted) notify({ ...n, jsonrpc: '2.0' } as JSONRPCMessage);
        },
      });
      if (!result.isError && tool.output) {
        // McpServer.validateToolOutput, with its messages.
        if (!result.structuredContent) {
          result = toolError(`Output validation error: Tool ${name} has an output schema but no structured content was provided`);
        } else {
          const checked = await parse(tool.output, result.structuredContent);
          if (!checked.success) result = toolError(`Output validation error: Invalid structured content for tool ${name}: ${getParseErrorMessage(checked.error)}`);
        }
      }
    } catch (err) {
      result = toolError(err instanceof Error ? err.message : String(err));
    } finally {
      res.off('close', onClose);
    }
    return { result, jsonrpc: '2.0', id: request.id } as JSONRPCMessage;
  }

  /** Through the long-lived McpServer, for the SDK's own answers; undefined when the caller went away. */
  private async viaServer(
    request: JSONRPCRequest,
    authInfo: AuthInfo | undefined,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    notify: (m: JSONRPCMessage) => void,
  ): Promise<JSONRPCMessage | undefined> {
    const call = this.transport.request(request, { authInfo, requestInfo: { headers: req.headers } }, notify);
    const onClose = () => {
      if (!res.writableFinished) call.cancel();
    };
    res.once('close', onClose);
    const answer = await call.answer;
    res.off('close', onClose);
    return answer;
  }

  get inFlight(): number {
    return this.transport.inFlight;
  }
}

/**
 * McpServer parses with safeParseAsync; a synchronous parse gives the same result for schemas
 * without async refinements at a fraction of the cost, and zod throws on the others, which then
 * take the async parse.
 */
function parse(schema: AnyObjectSchema, data: unknown): ReturnType<typeof safeParse> | Promise<ReturnType<typeof safeParse>> {
  try {
    return safeParse(schema, data);
  } catch {
    return safeParseAsync(schema, data);
  }
}

/** McpServer.createToolError. */
const toolError = (text: string): CallToolResult => ({ content: [{ type: 'text', text }], isError: true });
