/**
 * What a desktop caller may do with local files: quilt3's local registry and install location, and
 * the roots every local path is checked against. JWT mode has none of it (many tenants share the
 * process, and its disk is nobody's data), and says so when asked.
 */
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import type { LocalRoots } from './roots.js';

export interface LocalAccess {
  /** quilt3's `default_local_registry` (absolute path of the folder that holds `.quilt/`). */
  registry: string;
  /** quilt3's `default_install_location`, else the local registry. */
  installLocation: string;
  roots: LocalRoots;
}

/** The caller's local access, or the reason there is none. */
export function localAccess(ctx: RuntimeContext, what = 'Local files'): LocalAccess {
  if (ctx.local) return ctx.local;
  throw new ToolError(
    'unsupported',
    `${what}: this server runs in JWT mode (one server for many users), where nothing local is offered: no file:// or "local" registry, no local files as sources, no install.`,
    'Use an s3:// registry (a bucket). Local folders work with quilt-mcp on your own machine (desktop mode).',
  );
}
