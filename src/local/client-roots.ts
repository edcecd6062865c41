/**
 * The client's MCP roots over a session that can carry server-to-client requests (stdio): asked for
 * once the client has said hello, when it declared the `roots` capability, and again on every
 * `notifications/roots/list_changed`. Stateless HTTP has no such channel; there the configured roots
 * and quilt3's folders are the only ones.
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { RootsListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../log.js';
import type { ClientRoots } from './roots.js';

export function watchClientRoots(server: Server, roots: ClientRoots, logger: Logger): void {
  if (!server.getClientCapabilities()?.roots) return;
  const refresh = () =>
    roots.refresh(
      async () => (await server.listRoots()).roots,
      (why) => logger.warning(why),
    );
  server.setNotificationHandler(RootsListChangedNotificationSchema, () => {
    logger.debug('client roots changed; asking again');
    refresh();
  });
  refresh();
}
