/**
 * A catalog's `config.json` (which names its registry), fetched once per catalog and cached
 * (bounded, and refreshed after a while: a stack can move its registry).
 */
import { requestJson } from './http.js';
import { ToolError } from '../core/errors.js';
import { Lru } from '../core/lru.js';

export interface CatalogConfig {
  registryUrl: string;
  region: string | undefined;
  /** Everything else the catalog publishes (stack name, analytics bucket...). */
  raw: Record<string, unknown>;
}

const CACHE_ENTRIES = 64;
const CACHE_MS = 15 * 60_000;
const cache = new Lru<string, { at: number; config: Promise<CatalogConfig> }>(CACHE_ENTRIES);

export function catalogConfig(catalogUrl: string): Promise<CatalogConfig> {
  const cached = cache.get(catalogUrl);
  if (cached && Date.now() - cached.at < CACHE_MS) return cached.config;
  const entry = requestJson<Record<string, unknown>>(`${catalogUrl}/config.json`, { service: 'Quilt catalog', timeoutMs: 10_000 }).then(
    (raw) => {
      const registry = raw.registryUrl;
      if (typeof registry !== 'string' || !/^https?:\/\//.test(registry)) {
        throw new ToolError(
          'catalog_error',
          `${catalogUrl}/config.json does not name a registry (registryUrl).`,
          'Check that the catalog URL is right (it is the address of the Quilt web catalog).',
        );
      }
      return {
        registryUrl: registry.replace(/\/+$/, ''),
        region: typeof raw.region === 'string' ? raw.region : undefined,
        raw,
      };
    },
  );
  // Failures are not cached: the next call tries again.
  entry.catch(() => cache.delete(catalogUrl));
  cache.set(catalogUrl, { at: Date.now(), config: entry });
  return entry;
}
