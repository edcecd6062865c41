/**
 * The catalog's GraphQL API (on the registry), with the bearer token from the runtime context:
 * the quilt3 session's access token (desktop), the JWT's catalog_token, or none (anonymous
 * catalogs). Every failure becomes a typed ToolError: not logged in, token expired, forbidden,
 * catalog unreachable, invalid query.
 */
import { ToolError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { HttpStatusError, requestJson } from './http.js';

export type CatalogAuthKind = 'quilt3 session' | 'catalog_token' | 'api key' | 'anonymous';

export interface CatalogAuth {
  kind: CatalogAuthKind;
  /** The bearer token, fetched (and refreshed) on each use; undefined for anonymous access. */
  token?: () => Promise<string>;
  /** What a person should do when the catalog refuses the token. */
  refusedHint: string;
}

interface GraphqlResponse<T> {
  data?: T | null;
  errors?: Array<{ message?: string; path?: unknown }>;
}

/** How this client's requests are sent (defaults: two retries, 20 s, the shared sockets). */
export interface CatalogHttpOptions {
  retries?: number;
  timeoutMs?: number;
  pool?: 'shared' | 'lookups';
}

export class CatalogClient {
  constructor(
    /** The web catalog, for links. */
    readonly catalogUrl: string,
    private readonly registry: () => Promise<string>,
    readonly auth: CatalogAuth,
    private readonly http: CatalogHttpOptions = {},
  ) {}

  registryUrl(): Promise<string> {
    return this.registry();
  }

  async graphql<T>(document: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
    const registry = await this.registry();
    const token = this.auth.token ? await this.auth.token() : undefined;
    let res: GraphqlResponse<T>;
    try {
      res = await requestJson<GraphqlResponse<T>>(`${registry}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query: document, variables }),
        service: 'Quilt catalog',
        timeoutMs: this.http.timeoutMs ?? 20_000,
        retries: this.http.retries,
        pool: this.http.pool,
        signal,
      });
    } catch (err) {
      throw this.explain(err);
    }
    if (res.errors?.length && !res.data) {
      const messages = res.errors.map((e) => e.message ?? 'error').join('; ');
      throw new ToolError(
        'catalog_error',
        `The Quilt catalog rejected the query: ${redact(messages).slice(0, 400)}`,
        'This usually means the catalog runs a different version than quilt-mcp expects; report it with the catalog version.',
      );
    }
    if (!res.data) throw new ToolError('catalog_error', 'The Quilt catalog answered without data.');
    return res.data;
  }

  private explain(err: unknown): ToolError {
    if (!(err instanceof HttpStatusError)) return err instanceof ToolError ? err : new ToolError('unreachable', 'The Quilt catalog could not be reached.');
    if (err.status === 401) {
      return this.auth.kind === 'anonymous'
        ? new ToolError('not_logged_in', `The Quilt catalog ${this.catalogUrl} needs a login for this.`, this.auth.refusedHint)
        : new ToolError(
            'not_logged_in',
            `The Quilt catalog ${this.catalogUrl} refused ${this.auth.kind === 'catalog_token' ? "the token's catalog_token" : this.auth.kind === 'api key' ? 'the Quilt API key' : 'the quilt3 login token'} (expired or revoked).`,
            this.auth.refusedHint,
          );
    }
    if (err.status === 403) {
      return new ToolError('access_denied', `The Quilt catalog ${this.catalogUrl} refused the request (forbidden for this user).`);
    }
    if (err.status === 400) {
      let detail = '';
      try {
        detail = ((JSON.parse(err.body) as GraphqlResponse<unknown>).errors ?? []).map((e) => e.message).join('; ');
      } catch {
        detail = err.body.slice(0, 200);
      }
      return new ToolError('catalog_error', `The Quilt catalog rejected the query as invalid: ${redact(detail).slice(0, 400)}`);
    }
    return new ToolError(
      'upstream_error',
      `The Quilt catalog answered HTTP ${err.status}.`,
      'Retrying the same request will not help: check the catalog URL (QUILT_CATALOG_URL or `quilt3 config`) and that the catalog is a Quilt catalog.',
    );
  }
}
