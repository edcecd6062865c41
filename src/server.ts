/**
 * createServer: an McpServer with every tool registered. It knows no transport; the transport
 * passes in the auth service, and each tool call runs inside the caller's runtime context.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuthService } from './auth/service.js';
import { runWithContext } from './context.js';
import { toToolError } from './errors.js';
import type { Logger } from './log.js';
import { annotationsFor, type AnyTool, type ToolExtras } from './tools/define.js';
import { allTools } from './tools/index.js';
import { allResources, registerResources } from './resources/index.js';
import type { ResourceDefinition } from './resources/define.js';
import { VERSION } from './version.js';

export interface ServerDeps {
  auth: AuthService;
  logger: Logger;
  tools?: readonly AnyTool[];
  /** Resources offered (default: all); none declares no `resources` capability. */
  resources?: readonly ResourceDefinition[];
}

const INSTRUCTIONS = `quilt-mcp gives access to Quilt data on S3: buckets and objects, Quilt packages (versioned, hashed datasets), the Quilt catalog's search and Athena.
Objects are named by s3://bucket/key URIs. Start with auth_status when something fails with a credentials error; bucket_list shows what is reachable.`;

export function createServer({ auth, logger, tools = allTools, resources = allResources }: ServerDeps): McpServer {
  const server = new McpServer(
    { name: 'quilt-mcp', title: 'Quilt', version: VERSION },
    { capabilities: { logging: {}, tools: {} }, instructions: INSTRUCTIONS },
  );

  for (const tool of tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.input,
        outputSchema: tool.output,
        annotations: annotationsFor(tool),
      },
      async (args: unknown, extra: RequestHandlerExtra<ServerRequest, ServerNotification>): Promise<CallToolResult> => {
        const started = performance.now();
        const progressToken = extra._meta?.progressToken;
        const extras: ToolExtras = {
          signal: extra.signal,
          progress: async (progress, total, message) => {
            if (progressToken === undefined) return;
            await extra
              .sendNotification({
                method: 'notifications/progress',
                params: { progressToken, progress, ...(total !== undefined ? { total } : {}), ...(message ? { message } : {}) },
              })
              .catch(() => {});
          },
        };
        try {
          const ctx = await auth.context({ token: extra.authInfo?.token });
          const out = await runWithContext(ctx, () => tool.handler(args as Record<string, unknown>, ctx, extras));
          logger.debug('tool call', { tool: tool.name, user: ctx.principal.id, ms: Math.round(performance.now() - started) });
          return {
            content: [{ type: 'text', text: out.text ?? JSON.stringify(out.data) }, ...(out.extraContent ?? [])],
            structuredContent: out.data as Record<string, unknown>,
          };
        } catch (err) {
          const error = toToolError(err);
          const level = error.code === 'internal' ? 'error' : 'info';
          logger[level]('tool call failed', {
            tool: tool.name,
            code: error.code,
            error: error.message,
            ...(error.code === 'internal' && err instanceof Error ? { stack: err.stack } : {}),
          });
          return { isError: true, content: [{ type: 'text', text: error.text }] };
        }
      },
    );
  }
  // registerTool advertised tools.listChanged; the tool set never changes while the server runs
  // (and a stateless HTTP server has no stream to send the notification on), so say so.
  server.server.registerCapabilities({ tools: { listChanged: false } });
  if (resources.length) registerResources(server, { auth, logger, resources });
  return server;
}
