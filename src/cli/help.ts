/** Text commands (`--help`, `--version`): they run instead of the server, so stdout is theirs. */
import { VERSION } from '../core/version.js';

export const USAGE = `quilt-mcp ${VERSION}: Model Context Protocol server for Quilt data on S3

Usage:
  quilt-mcp [serve] [--stdio]          serve MCP over stdio (what Claude Desktop runs)
  quilt-mcp [serve] --http [--port N]  serve stateless Streamable HTTP on /mcp
  quilt-mcp jwt generate [options]     make a test JWT (JWT mode; --auto-extract fills it from your
                                       quilt3 login; jwt generate --help)
  quilt-mcp jwt inspect <token>        decode a JWT, show its normalized claims and check it
                                       (jwt inspect --help)
  quilt-mcp --version | --help

Configuration is read from environment variables; see the README.
`;

export function printHelp(): void {
  process.stdout.write(USAGE);
}

export function printVersion(): void {
  process.stdout.write(`${VERSION}\n`);
}
