/**
 * The auth-service factory: picks desktop or JWT mode from the configuration. Each tool call asks
 * its transport's auth service for a runtime context; nothing else decides whose credentials run.
 */
import { ConfigError, type Config } from '../config.js';
import type { AuthMode, RuntimeContext } from '../context.js';
import type { Logger } from '../log.js';

/** What a transport knows about the caller of one request. */
export interface RequestAuth {
  /** Bearer token from the HTTP Authorization header (JWT mode). */
  token?: string | undefined;
}

export interface AuthService {
  readonly mode: AuthMode;
  /** The runtime context for one request; rejects (with a ToolError) when the caller is not allowed in. */
  context(request: RequestAuth): Promise<RuntimeContext>;
}

export async function createAuthService(config: Config, logger: Logger): Promise<AuthService> {
  if (config.mode === 'jwt') {
    // Never fall back to desktop credentials when JWT mode was asked for.
    throw new ConfigError('JWT mode (MCP_REQUIRE_JWT=true) is not available in this version; unset MCP_REQUIRE_JWT to use desktop mode.');
  }
  const { DesktopAuthService } = await import('./desktop.js');
  return new DesktopAuthService(config, logger);
}
