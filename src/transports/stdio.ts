/**
 * stdio: one client, one server. Nothing but JSON-RPC goes to stdout. The process ends within a
 * second when the client goes away (stdin closes) or on SIGINT/SIGTERM, so no orphan is left
 * behind when Claude Desktop quits.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Logger } from '../log.js';
import type { ClientRoots } from '../local/roots.js';
import { watchClientRoots } from '../local/client-roots.js';

const EXIT_GRACE_MS = 500;

export async function serveStdio(server: McpServer, logger: Logger, roots?: ClientRoots): Promise<void> {
  const transport = new StdioServerTransport();
  let closing = false;
  const shutdown = (why: string) => {
    if (closing) return;
    closing = true;
    logger.info('Shutting down', { reason: why });
    // Open sockets (AWS keep-alive) must not hold the process: exit after a short grace period.
    setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdout.on('error', () => shutdown('stdout closed'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));

  // Log lines also go to the client, once it has said hello (and at the level it asked for).
  server.server.oninitialized = () => {
    logger.addSink((level, text) => {
      server.server.sendLoggingMessage({ level, logger: 'quilt-mcp', data: text }).catch(() => {});
    });
    if (roots) watchClientRoots(server.server, roots, logger);
  };
  await server.connect(transport);
  logger.info('quilt-mcp ready on stdio');
}
