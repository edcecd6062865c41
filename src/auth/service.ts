/**
 * The auth-service factory: picks desktop or JWT mode from the configuration. Each tool call asks
 * its transport's auth service for a runtime context; nothing else decides whose credentials run.
 */
import type { Config } from '../config.js';
import type { AuthMode, RuntimeContext } from '../context.js';
import type { Logger } from '../log.js';
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

export async function createAuthService(config: Config, logger: Logger): Promise<AuthService> {
  // JWT mode never falls back to desktop credentials: the modes share no code path for credentials.
  if (config.mode === 'jwt') {
    const { JwtAuthService } = await import('./jwt.js');
    return new JwtAuthService(config, logger);
  }
  const { DesktopAuthService } = await import('./desktop.js');
  return new DesktopAuthService(config, logger);
}
