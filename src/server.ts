/**
 * createServer: an McpServer with every tool registered. It knows no transport; the transport
 * passes in the auth service, and each tool call runs inside the caller's runtime context.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { ListToolsRequestSchema, type CallToolResult, type ProgressToken, type ServerNotification, type ServerRequest, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { AuthService } from './auth/service.js';
import { runWithContext, type RuntimeContext } from './context.js';
import { CallDeadline } from './core/call-scope.js';
import { DEFAULT_CALL_TIMEOUT_SECONDS } from './config.js';
import { ToolError, toToolError } from './core/errors.js';
import { noteRequest } from './core/request-record.js';
import type { Logger } from './core/log.js';
import { annotationsFor, type AnyTool, type ToolExtras } from './tools/define.js';
import { allTools, type HiddenTool } from './tools/index.js';
import { jsonSchemaOf, toolInputSchema } from './tools/schema.js';
import { allResources, registerResources } from './resources/index.js';
import type { ResourceDefinition } from './resources/define.js';
import { VERSION } from './core/version.js';

export interface ServerDeps {
  auth: AuthService;
  logger: Logger;
  tools?: readonly AnyTool[];
  /** Tools this configuration does not offer, each with the setting that hid it (a call says so). */
  hidden?: readonly HiddenTool[];
  /** Resources offered (default: all); none declares no `resources` capability. */
  resources?: readonly ResourceDefinition[];
  /** A call without progress for this long is stopped with a timeout (config `tools.callTimeoutMs`). */
  callTimeoutMs?: number | undefined;
}

const INSTRUCTIONS = `quilt-mcp gives access to Quilt data on S3: buckets and objects, Quilt packages (versioned, hashed datasets), the Quilt catalog's search and Athena.
Objects are named by s3://bucket/key URIs. Start with auth_status when something fails with a credentials error; bucket_list shows what is reachable.`;

/** What a tool call needs from its transport. */
export interface CallExtras {
  /** Aborted when the client cancels the request or goes away. */
  signal: AbortSignal;
  authInfo?: AuthInfo | undefined;
  progressToken?: ProgressToken | undefined;
  notify(notification: ServerNotification): Promise<void>;
  /** The caller's context when the transport already resolved it from the same token (saves a second lookup). */
  ctx?: RuntimeContext | undefined;
}

/**
 * A tool's handler as a tools/call callback: the caller's context from the auth service, the handler
 * inside it (AsyncLocalStorage), and the result or a clear tool error. The McpServer registers it,
 * and the HTTP transport's direct path (transports/dispatch.ts) calls the very same function.
 */
export function toolRunner(
  tool: AnyTool,
  { auth, logger, callTimeoutMs = DEFAULT_CALL_TIMEOUT_SECONDS * 1000 }: Pick<ServerDeps, 'auth' | 'logger' | 'callTimeoutMs'>,
): (args: unknown, extra: CallExtras) => Promise<CallToolResult> {
  const seconds = Math.round(callTimeoutMs / 1000);
  const timedOut = () =>
    new ToolError(
      'timeout',
      `${tool.name} made no progress for ${seconds} s (a service it was waiting for did not answer in time), so it was stopped.`,
      'Retry in a moment; if it keeps happening, S3, the catalog or Athena is slow or unreachable from here (auth_status shows the endpoints in use).',
    );
  return async (args, extra) => {
    const started = performance.now();
    const progressToken = extra.progressToken;
    const deadline = new CallDeadline(callTimeoutMs, extra.signal, timedOut);
    const extras: ToolExtras = {
      signal: deadline.signal,
      progress: async (progress, total, message) => {
        deadline.progress();
        if (progressToken === undefined) return;
        await extra
          .notify({
            method: 'notifications/progress',
            params: { progressToken, progress, ...(total !== undefined ? { total } : {}), ...(message ? { message } : {}) },
          })
          .catch(() => {});
      },
    };
    try {
      const ctx = extra.ctx ?? (await auth.context({ token: extra.authInfo?.token }));
      noteRequest({ principal: ctx.principal.id });
      // At the deadline the call is answered at once; its requests are aborted and it unwinds on its own.
      const out = await Promise.race([runWithContext(ctx, () => tool.handler(args as Record<string, unknown>, ctx, extras), deadline.signal, deadline.progress), deadline.expired]);
      logger.debug('tool call', { tool: tool.name, user: ctx.principal.id, ms: Math.round(performance.now() - started) });
      noteRequest({ toolOutcome: 'ok' });
      return {
        content: [{ type: 'text', text: out.text ?? JSON.stringify(out.data) }, ...(out.extraContent ?? [])],
        ...(tool.output ? { structuredContent: out.data as Record<string, unknown> } : {}),
      };
    } catch (err) {
      const error = toToolError(err);
      noteRequest({ toolOutcome: 'tool_error', errorCode: error.code });
      const level = error.code === 'internal' ? 'error' : error.code === 'cancelled' ? 'debug' : 'info';
      logger[level]('tool call failed', {
        tool: tool.name,
        code: error.code,
        error: error.message,
        ...(error.code === 'internal' && err instanceof Error ? { stack: err.stack } : {}),
      });
      return { isError: true, content: [{ type: 'text', text: error.text }] };
    } finally {
      deadline.end();
    }
  };
}

/** tools/list entries, built once per tool: what the model reads (name, description, arguments). */
const listed = new WeakMap<AnyTool, Tool>();
function listEntry(tool: AnyTool): Tool {
  let entry = listed.get(tool);
  if (!entry) {
    entry = {
      name: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchema: jsonSchemaOf(toolInputSchema(tool), 'input') as Tool['inputSchema'],
      ...(tool.output ? { outputSchema: jsonSchemaOf(z.object(tool.output), 'output') as Tool['outputSchema'] } : {}),
      annotations: annotationsFor(tool),
    };
    listed.set(tool, entry);
  }
  return entry;
}

export function createServer({ auth, logger, tools = allTools, hidden = [], resources = allResources, callTimeoutMs }: ServerDeps): McpServer {
  const server = new McpServer(
    { name: 'quilt-mcp', title: 'Quilt', version: VERSION },
    { capabilities: { logging: {}, tools: {} }, instructions: INSTRUCTIONS },
  );

  for (const tool of tools) {
    const run = toolRunner(tool, { auth, logger, callTimeoutMs });
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: toolInputSchema(tool),
        outputSchema: tool.output,
        annotations: annotationsFor(tool),
      },
      (args: unknown, extra: RequestHandlerExtra<ServerRequest, ServerNotification>): Promise<CallToolResult> =>
        run(args, {
          signal: extra.signal,
          authInfo: extra.authInfo,
          progressToken: extra._meta?.progressToken,
          notify: (n) => extra.sendNotification(n),
        }),
    );
  }
  // A tool this configuration hides still answers, with the setting that hid it, instead of the
  // SDK's bare "not found"; whatever its arguments, since it would not run anyway.
  for (const { tool, reason, fix } of hidden) {
    const text = new ToolError('unsupported', `${tool.name} is not offered: ${reason}`, fix).text;
    server.registerTool(tool.name, { description: tool.description, inputSchema: z.looseObject({}) }, async () => ({ isError: true, content: [{ type: 'text', text }] }));
  }
  // The SDK's own list would carry draft-07 `$schema` lines and type arrays that some clients
  // refuse (schema.ts), and the hidden tools above: the list is the offered tools, as schema.ts
  // writes them.
  server.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: tools.filter((t) => t.listed !== false).map(listEntry) }));
  // registerTool advertised tools.listChanged; the tool set never changes while the server runs
  // (and a stateless HTTP server has no stream to send the notification on), so say so.
  server.server.registerCapabilities({ tools: { listChanged: false } });
  if (resources.length) registerResources(server, { auth, logger, resources });
  return server;
}
