/**
 * What an auth service is: each tool call asks its transport's auth service for a runtime context;
 * nothing else decides whose credentials run. factory.ts picks desktop or JWT mode.
 */
import type { AuthMode, RuntimeContext } from '../context.js';
import type { ClientRoots } from '../local/roots.js';

/** What a transport knows about the caller of one request. */
export interface RequestAuth {
  /** Bearer token from the HTTP Authorization header (JWT mode). */
  token?: string | undefined;
}

export interface AuthService {
  readonly mode: AuthMode;
  /** The runtime context for one request; rejects (with a ToolError) when the caller is not allowed in. */
  context(request: RequestAuth): Promise<RuntimeContext>;
  /**
   * Whether resolving this bearer would call another service (a Quilt API key not known yet): the
   * HTTP transport then gives the lookup a slot of its own first, so unknown keys cannot make the
   * server call out without limit.
   */
  needsLookup?(token: string): boolean;
  /** Desktop mode: where the client's MCP roots are kept (a stdio transport asks the client for them). */
  readonly clientRoots?: ClientRoots;
}
