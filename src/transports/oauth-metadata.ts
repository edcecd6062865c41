/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728), as the MCP authorization spec asks of an MCP
 * server: the document a client finds from a 401's `resource_metadata` (or at the well-known URL)
 * and follows to the authorization servers that issue tokens for this server.
 *
 * The resource identifier is MCP_RESOURCE_URL; without it (no authorization server configured, so no
 * audience is bound to it) it is derived from the request's Host. The document is served without a
 * token, at `/.well-known/oauth-protected-resource` and at that path followed by the resource's path
 * (RFC 9728 3.1: `/.well-known/oauth-protected-resource/mcp` for `.../mcp`), and costs a map lookup.
 */
import type http from 'node:http';
import type { JwtSettings } from '../config.js';
import { SCOPES_SUPPORTED } from '../auth/claims.js';
import { Lru } from '../core/lru.js';

export const PRM_PATH = '/.well-known/oauth-protected-resource';

/** A Host header fit to appear in a URL and a header: a name or address and a port, nothing else. */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

export class ProtectedResource {
  private readonly documents = new Lru<string, string>(64);
  /** Paths the document is served at: the bare well-known path and the resource-suffixed forms. */
  readonly paths: Set<string>;

  constructor(
    private readonly settings: Pick<JwtSettings, 'resource' | 'authorizationServers'>,
    private readonly mcpPath: string,
  ) {
    this.paths = new Set([PRM_PATH, `${PRM_PATH}${mcpPath}`]);
    if (settings.resource) {
      const p = new URL(settings.resource).pathname.replace(/\/+$/, '');
      if (p) this.paths.add(`${PRM_PATH}${p}`);
    }
  }

  /** This server's resource identifier for a request, or undefined when the Host is unfit. */
  resource(req: http.IncomingMessage): string | undefined {
    if (this.settings.resource) return this.settings.resource;
    const host = req.headers.host ?? '';
    if (!HOST.test(host)) return undefined;
    // Behind a TLS-terminating proxy the client used https; the proxy says so.
    const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim() === 'https' ? 'https' : 'http';
    return `${proto}://${host}${this.mcpPath}`;
  }

  /** The metadata URL for the challenge's `resource_metadata` (RFC 9728 5.1). */
  metadataUrl(req: http.IncomingMessage): string | undefined {
    const resource = this.resource(req);
    if (!resource) return undefined;
    const u = new URL(resource);
    return `${u.protocol}//${u.host}${PRM_PATH}${u.pathname.replace(/\/+$/, '')}`;
  }

  /** The metadata document for a request, as JSON text. */
  document(req: http.IncomingMessage): string | undefined {
    const resource = this.resource(req);
    if (!resource) return undefined;
    let doc = this.documents.get(resource);
    if (doc === undefined) {
      doc = JSON.stringify({
        resource,
        ...(this.settings.authorizationServers.length ? { authorization_servers: this.settings.authorizationServers } : {}),
        scopes_supported: SCOPES_SUPPORTED,
        bearer_methods_supported: ['header'],
        resource_name: 'quilt-mcp',
      });
      this.documents.set(resource, doc);
    }
    return doc;
  }

  /** Answers a request for the document (GET, HEAD, or a CORS preflight). */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Public metadata: any web page may read it (browser-based MCP clients discover with it).
    const cors = { 'access-control-allow-origin': '*' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'access-control-allow-headers': 'mcp-protocol-version', 'access-control-max-age': '600' });
      return void res.end();
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...cors, allow: 'GET, HEAD', 'content-length': '0' });
      return void res.end();
    }
    const doc = this.document(req);
    if (doc === undefined) {
      const text = JSON.stringify({ error: 'invalid_request', error_description: 'The Host header is not a host name.' });
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
      return void res.end(text);
    }
    res.writeHead(200, {
      ...cors,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(doc)),
      // Derived from the Host: caches must keep one per host.
      'cache-control': 'public, max-age=3600',
      ...(this.settings.resource ? {} : { vary: 'Host, X-Forwarded-Proto' }),
    });
    res.end(req.method === 'HEAD' ? undefined : doc);
  }
}
