/**
 * Signing keys of an OAuth authorization server or OpenID provider, found from its metadata when no
 * MCP_JWT_JWKS_URL is given: RFC 8414 `/.well-known/oauth-authorization-server` (inserted before
 * the issuer's path), then OpenID Connect Discovery `/.well-known/openid-configuration` (appended to
 * it, and inserted, as some providers serve it). The document's `issuer` must be exactly the
 * configured identifier (RFC 8414 3.3, OIDC Discovery 4.3): otherwise a compromised or misconfigured
 * document could make this server trust another issuer's keys.
 *
 * Found once per issuer and remembered for an hour (jose's remote key set refetches the keys
 * themselves on an unknown `kid`); a failure is remembered for 30 s, so an unreachable provider is
 * not hammered and a recovered one is used again soon.
 */
import { ToolError } from '../core/errors.js';

const DISCOVERY_TTL_MS = 3600_000;
const FAILURE_TTL_MS = 30_000;
const TIMEOUT_MS = 5_000;
const MAX_DOCUMENT_BYTES = 256 * 1024;

export interface IssuerMetadata {
  issuer: string;
  jwksUri: string;
  /** Where the document was found (for diagnostics). */
  from: string;
}

/** The metadata URLs to try for an issuer, in order. */
export function discoveryUrls(issuer: string): string[] {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/+$/, '');
  const base = `${u.protocol}//${u.host}`;
  const urls = [`${base}/.well-known/oauth-authorization-server${path}`, `${base}${path}/.well-known/openid-configuration`];
  if (path) urls.push(`${base}/.well-known/openid-configuration${path}`);
  return urls;
}

/** https, or http on a loopback host: the same rule as the configured issuers. */
function acceptableUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || (u.protocol === 'http:' && /^(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i.test(u.hostname));
  } catch {
    return false;
  }
}

async function fetchJson(url: string, fetchFn: typeof fetch): Promise<unknown> {
  const res = await fetchFn(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel();
    return undefined;
  }
  const text = await res.text();
  if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) return undefined;
  return JSON.parse(text) as unknown;
}

export class IssuerDiscovery {
  private readonly found = new Map<string, { at: number; ttl: number; result: Promise<IssuerMetadata> }>();

  constructor(
    private readonly fetchFn: typeof fetch = fetch,
    private readonly now: () => number = Date.now,
  ) {}

  metadata(issuer: string): Promise<IssuerMetadata> {
    const hit = this.found.get(issuer);
    if (hit && this.now() - hit.at < hit.ttl) return hit.result;
    const entry = { at: this.now(), ttl: DISCOVERY_TTL_MS, result: this.discover(issuer) };
    entry.result.catch(() => (entry.ttl = FAILURE_TTL_MS));
    this.found.set(issuer, entry);
    return entry.result;
  }

  private async discover(issuer: string): Promise<IssuerMetadata> {
    const problems: string[] = [];
    for (const url of discoveryUrls(issuer)) {
      let doc: unknown;
      try {
        doc = await fetchJson(url, this.fetchFn);
      } catch (err) {
        problems.push(`${url}: ${(err as Error).name === 'TimeoutError' ? 'no answer in time' : 'unreachable or not JSON'}`);
        continue;
      }
      if (!doc || typeof doc !== 'object') {
        problems.push(`${url}: no metadata`);
        continue;
      }
      const { issuer: named, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
      if (named !== issuer) {
        // Not "try the next one": a document at the issuer's own address naming another issuer is wrong.
        throw new ToolError(
          'unreachable',
          `The metadata of the authorization server ${issuer} names a different issuer (${typeof named === 'string' ? named.slice(0, 200) : 'none'}), so its keys are not trusted.`,
          'The operator checks MCP_OAUTH_AUTHORIZATION_SERVERS: each entry must be the issuer identifier exactly as the server states it (including any trailing "/").',
        );
      }
      if (typeof jwksUri !== 'string' || !acceptableUrl(jwksUri)) {
        throw new ToolError(
          'unreachable',
          `The metadata of the authorization server ${issuer} has no usable jwks_uri (an https URL), so its tokens cannot be verified.`,
          'Set MCP_JWT_JWKS_URL to the provider\'s key set.',
        );
      }
      return { issuer, jwksUri, from: url };
    }
    throw new ToolError(
      'unreachable',
      `The signing keys of the authorization server ${issuer} could not be found (${problems.join('; ')}); tokens cannot be verified now.`,
      'Retry later; the operator may set MCP_JWT_JWKS_URL to the provider\'s key set.',
    );
  }
}
