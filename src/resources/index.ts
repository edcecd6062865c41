/**
 * Resources on the server: the capability and the three request handlers, on the SDK's protocol
 * server directly. McpServer.registerResource is not used because its handlers (SDK 1.x) page
 * nothing (list callbacks get no cursor and return no nextCursor) and hand read callbacks a URL
 * re-serialized by WHATWG URL parsing, which resolves `..` and `%2e%2e` segments before any check
 * could see them. Every request runs in the caller's runtime context, as tool calls do.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ListResourcesRequestSchema, ListResourceTemplatesRequestSchema, ReadResourceRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { AuthService } from '../auth/service.js';
import { runWithContext, type RuntimeContext } from '../context.js';
import { toToolError, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { authStatusResource } from './auth.js';
import { isFixed, type ResourceDefinition } from './define.js';
import { listResources } from './list.js';
import { objectResource } from './objects.js';
import { packageEntryResource, packageManifestResource } from './packages.js';

export { selectResources } from './define.js';

/** Every resource the server offers, in the order resources/templates/list shows them. */
export const allResources: readonly ResourceDefinition[] = [authStatusResource, packageManifestResource, packageEntryResource, objectResource];

/** Longest URI read: bounds the work of parsing one (package names and keys are far shorter). */
const MAX_URI_CHARS = 4096;

/** JSON-RPC error codes: MCP's "resource not found", else the generic ones. */
const RESOURCE_NOT_FOUND = -32002;
const INVALID_PARAMS = -32602;
const SERVER_ERROR = -32000;
const INTERNAL_ERROR = -32603;

function rpcCode(code: ErrorCode): number {
  if (code === 'not_found') return RESOURCE_NOT_FOUND;
  if (code === 'invalid_input' || code === 'unsupported') return INVALID_PARAMS;
  if (code === 'internal') return INTERNAL_ERROR;
  return SERVER_ERROR;
}

/** What the SDK sends back as the JSON-RPC error: `code`, `message` (redacted), `data`. */
class ResourceError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: { uri?: string; reason: ErrorCode },
  ) {
    super(message);
  }
}

export interface ResourceDeps {
  auth: AuthService;
  logger: Logger;
  resources: readonly ResourceDefinition[];
}

export function registerResources(server: McpServer, { auth, logger, resources }: ResourceDeps): void {
  const proto = server.server;
  // Nothing to subscribe to, and the set of resources (templates) never changes while running.
  proto.registerCapabilities({ resources: { listChanged: false } });

  const run = async <T>(
    method: string,
    token: string | undefined,
    uri: string | undefined,
    signal: AbortSignal,
    fn: (ctx: RuntimeContext) => Promise<T>,
  ): Promise<T> => {
    const started = performance.now();
    try {
      const ctx = await auth.context({ token });
      const out = await runWithContext(ctx, () => fn(ctx), signal);
      logger.debug(method, { user: ctx.principal.id, ms: Math.round(performance.now() - started) });
      return out;
    } catch (err) {
      const error = toToolError(err);
      logger[error.code === 'internal' ? 'error' : 'info'](`${method} failed`, {
        code: error.code,
        error: error.message,
        ...(error.code === 'internal' && err instanceof Error ? { stack: err.stack } : {}),
      });
      throw new ResourceError(rpcCode(error.code), error.text, { ...(uri !== undefined ? { uri: uri.slice(0, 200) } : {}), reason: error.code });
    }
  };

  proto.setRequestHandler(ListResourcesRequestSchema, (request, extra) =>
    run('resources/list', extra.authInfo?.token, undefined, extra.signal, (ctx) => listResources(ctx, resources, request.params?.cursor, extra.signal)),
  );

  proto.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: resources.flatMap((r) =>
      isFixed(r) ? [] : [{ name: r.name, title: r.title, uriTemplate: r.uriTemplate, description: r.description, ...(r.mimeType ? { mimeType: r.mimeType } : {}) }],
    ),
  }));

  proto.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const uri = request.params.uri;
    if (uri.length > MAX_URI_CHARS) {
      throw new ResourceError(INVALID_PARAMS, `The resource URI is ${uri.length} characters long; at most ${MAX_URI_CHARS} are accepted.`, { reason: 'invalid_input' });
    }
    const resource = resources.find((r) => (isFixed(r) ? r.uri === uri : r.accepts(uri)));
    if (!resource) {
      const offered = allResources.find((r) => (isFixed(r) ? r.uri === uri : r.accepts(uri)));
      const schemes = resources.map((r) => (isFixed(r) ? r.uri : r.uriTemplate)).join(', ');
      throw new ResourceError(
        RESOURCE_NOT_FOUND,
        offered
          ? `Resource ${uri.slice(0, 200)} is not offered: this server runs with MCP_TOOLSETS without "${offered.toolset}".`
          : `Resource ${uri.slice(0, 200)} not found: this server reads ${schemes}.\nFix: Use one of those forms (resources/templates/list describes them).`,
        { uri: uri.slice(0, 200), reason: 'not_found' },
      );
    }
    const contents = await run('resources/read', extra.authInfo?.token, uri, extra.signal, (ctx) => resource.read(uri, ctx, { signal: extra.signal }));
    return { contents };
  });
}
