/** The auth-service factory: picks desktop or JWT mode from the configuration. */
import type { Config } from '../config.js';
import type { Logger } from '../core/log.js';
import type { AuthService } from './service.js';

export async function createAuthService(config: Config, logger: Logger): Promise<AuthService> {
  // JWT mode never falls back to desktop credentials: the modes share no code path for credentials.
  if (config.mode === 'jwt') {
    const { JwtAuthService } = await import('./jwt.js');
    return new JwtAuthService(config, logger);
  }
  const { DesktopAuthService } = await import('./desktop.js');
  return new DesktopAuthService(config, logger);
}
