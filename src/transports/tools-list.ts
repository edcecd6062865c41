/**
 * The `tools/list` answer, computed once per process and served as JSON: it is the same for every
 * caller, and building it (a server with every tool, each schema converted to JSON Schema) cost
 * ~10 ms of CPU per request, which anyone could ask for without a token.
 */
import type http from 'node:http';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

export class ToolsListCache {
  private result: Promise<string> | undefined;

  constructor(private readonly build: () => McpServer) {}

  /** The serialized `result` of tools/list, asked of a real server once over an in-memory pair. */
  private serialized(): Promise<string> {
    this.result ??= (async () => {
      const [{ Client }, { InMemoryTransport }] = await Promise.all([
        import('@modelcontextprotocol/sdk/client/index.js'),
        import('@modelcontextprotocol/sdk/inMemory.js'),
      ]);
      const server = this.build();
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      const client = new Client({ name: 'quilt-mcp-tools-list', version: '0' });
      try {
        await server.connect(serverSide);
        await client.connect(clientSide);
        const { tools } = await client.listTools();
        return JSON.stringify({ tools });
      } finally {
        await client.close();
        await server.close();
      }
    })();
    this.result.catch(() => (this.result = undefined));
    return this.result;
  }

  /** Cheap, synchronous: whether `body` may be a request `answer` serves. */
  static isToolsList(body: unknown): boolean {
    return !!body && typeof body === 'object' && !Array.isArray(body) && (body as { method?: unknown }).method === 'tools/list';
  }

  /**
   * The whole response body when `body` is a plain tools/list request this cache can answer
   * exactly as the SDK would; undefined sends the request down the SDK's path (which also
   * produces every protocol error).
   */
  async answer(req: http.IncomingMessage, body: unknown): Promise<string | undefined> {
    if (!ToolsListCache.isToolsList(body)) return undefined;
    const m = body as { jsonrpc?: unknown; id?: unknown; method?: unknown };
    if (m.jsonrpc !== '2.0' || m.method !== 'tools/list') return undefined;
    if (!(typeof m.id === 'string' || (typeof m.id === 'number' && Number.isInteger(m.id)))) return undefined;
    const accept = req.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return undefined;
    const version = req.headers['mcp-protocol-version'];
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(String(version))) return undefined;
    return `{"result":${await this.serialized()},"jsonrpc":"2.0","id":${JSON.stringify(m.id)}}`;
  }
}
