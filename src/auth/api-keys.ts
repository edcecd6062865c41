/**
 * Quilt API keys (`qk_...`, created with `quilt3.api_keys.create`). The Quilt registry takes a key
 * exactly where it takes a login session's access token: as `Authorization: Bearer qk_...` on its
 * GraphQL API and its credential endpoint (`/api/auth/get_credentials`), with no exchange or
 * refresh step (this is what `quilt3.login_with_api_key` does). So a key is "exchanged" by asking
 * the registry who it belongs to (`me`) and, when a tool needs AWS, for that user's credentials.
 *
 * Identities are cached by the key's SHA-256 digest (never the key) in a bounded LRU for a few
 * minutes, so a revoked key stops working within that time; concurrent first uses share one call.
 * Refused keys are remembered for a minute too, so repeating an unknown key costs the registry one
 * call, not one per request; lookups are made once (no retries: the caller is not known yet), on a
 * few sockets of their own, so they cannot take the connections tenants' catalog calls use.
 */
import { createHash } from 'node:crypto';
import { CatalogClient } from '../catalog/client.js';
import { ME, type MeData } from '../catalog/documents.js';
import { ToolError } from '../core/errors.js';
import { Lru } from '../core/lru.js';

/** The b64token characters of RFC 6750 after the `qk_` prefix. */
const API_KEY = /^qk_[A-Za-z0-9._~+/=-]{8,1024}$/;
export const API_KEY_TTL_MS = 5 * 60_000;
/** How long a refused key is answered from memory. */
export const REFUSED_KEY_TTL_MS = 60_000;
/** The registry's time to answer who a key belongs to. */
const LOOKUP_TIMEOUT_MS = 5_000;

const digestOf = (key: string) => createHash('sha256').update(key).digest('hex');

export function isQuiltApiKey(raw: string): boolean {
  return raw.startsWith('qk_');
}

export interface ApiKeyIdentity {
  /** The catalog user name (the principal's id, as `jwt generate --auto-extract` uses it). */
  name: string;
  email: string;
  role: string | undefined;
  registryUrl: string;
  /** Until when this identity may be used without asking the registry again. */
  until: number;
}

export const apiKeyRefusedHint =
  'Create a new key (quilt3.api_keys.create, after quilt3 login) and use it; `quilt3.api_keys.list()` shows which keys are active or expired.';

export class ApiKeyExchange {
  private readonly cache = new Lru<string, ApiKeyIdentity>(10_000);
  private readonly refusedKeys = new Lru<string, { error: ToolError; until: number }>(10_000);
  private readonly inFlight = new Map<string, Promise<ApiKeyIdentity>>();
  readonly stats = { exchanges: 0, refused: 0, refusedFromMemory: 0 };

  constructor(
    private readonly catalogUrl: string,
    private readonly registry: () => Promise<string>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the answer for this key is known without asking the registry (a well-formed key only). */
  known(key: string): boolean {
    if (!API_KEY.test(key)) return true;
    const digest = digestOf(key);
    const now = this.now();
    return (this.cache.get(digest)?.until ?? 0) > now || (this.refusedKeys.get(digest)?.until ?? 0) > now;
  }

  /** Who the key belongs to, per its registry; an `unauthorized` ToolError when it refuses the key. */
  identify(key: string): Promise<ApiKeyIdentity> {
    if (!API_KEY.test(key)) {
      return Promise.reject(new ToolError('unauthorized', 'The bearer starts with qk_ but is not a well-formed Quilt API key.', apiKeyRefusedHint));
    }
    const digest = digestOf(key);
    const now = this.now();
    const hit = this.cache.get(digest);
    if (hit && hit.until > now) return Promise.resolve(hit);
    const refused = this.refusedKeys.get(digest);
    if (refused && refused.until > now) {
      this.stats.refusedFromMemory++;
      return Promise.reject(refused.error);
    }
    let pending = this.inFlight.get(digest);
    if (!pending) {
      pending = this.exchange(key)
        .then(
          (identity) => {
            this.cache.set(digest, identity);
            return identity;
          },
          (err: unknown) => {
            if (err instanceof ToolError && err.code === 'unauthorized') this.refusedKeys.set(digest, { error: err, until: this.now() + REFUSED_KEY_TTL_MS });
            throw err;
          },
        )
        .finally(() => this.inFlight.delete(digest));
      this.inFlight.set(digest, pending);
    }
    return pending;
  }

  private async exchange(key: string): Promise<ApiKeyIdentity> {
    this.stats.exchanges++;
    const client = new CatalogClient(
      this.catalogUrl,
      this.registry,
      { kind: 'api key', token: async () => key, refusedHint: apiKeyRefusedHint },
      { retries: 0, timeoutMs: LOOKUP_TIMEOUT_MS, pool: 'lookups' },
    );
    let me: MeData['me'];
    try {
      ({ me } = await client.graphql<MeData>(ME));
    } catch (err) {
      if (err instanceof ToolError && (err.code === 'not_logged_in' || err.code === 'access_denied')) {
        this.stats.refused++;
        throw new ToolError('unauthorized', `The Quilt catalog ${this.catalogUrl} refused the API key (unknown, expired or revoked).`, apiKeyRefusedHint);
      }
      throw err;
    }
    if (!me?.name) {
      this.stats.refused++;
      throw new ToolError('unauthorized', `The Quilt catalog ${this.catalogUrl} knows no user for this API key.`, apiKeyRefusedHint);
    }
    return {
      name: me.name,
      email: me.email,
      role: me.role?.name,
      registryUrl: await this.registry(),
      until: this.now() + API_KEY_TTL_MS,
    };
  }
}
