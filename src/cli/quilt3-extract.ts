/**
 * `jwt generate --auto-extract`: what a token needs to reach the catalog as the developer, from
 * their local quilt3 login, found exactly as desktop mode finds it (quilt3's data directory:
 * config.yml's navigator_url / registryUrl and auth.json's session for that registry).
 *
 * - catalog_token: the session's access token, refreshed through the registry when it is about to
 *   expire (Quilt3Session, which also writes the rotated refresh token back for quilt3).
 * - sub: the catalog's own answer to `me` (GraphQL, the query auth_status sends): the user name the
 *   catalog shows. A registry access token carries only an opaque user id, and the local stand-in's
 *   tokens are not JWTs at all, so the token itself is not asked.
 *
 * Values given on the command line win; only the missing ones are looked up, and the session is
 * needed only when no --catalog-token is given.
 */
import { pickRegistry } from '../auth/desktop.js';
import { Quilt3Session, readQuilt3Files } from '../auth/quilt3-session.js';
import { CatalogClient } from '../catalog/client.js';
import { ME, type MeData } from '../catalog/documents.js';
import type { Config } from '../config.js';
import { ToolError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import type { GenerateOptions } from './jwt-args.js';

export interface Extracted {
  sub: string;
  catalogToken: string;
  catalogUrl: string | undefined;
  registryUrl: string | undefined;
}

const norm = (u: string) => u.trim().replace(/\/+$/, '');

const LOGIN_HINT = 'Run `quilt3 login` (after `quilt3 config <catalog URL>` if quilt3 has no catalog yet), or pass --catalog-token.';

export async function extractFromQuilt3(config: Config, o: GenerateOptions): Promise<Extracted> {
  const dir = config.quilt.dataDir;
  const files = await readQuilt3Files(dir);
  const explicitRegistry = o['registry-url'] ? norm(o['registry-url']) : undefined;
  // An explicit --registry-url picks that login when there are several.
  const key = (explicitRegistry && files.loggedIn.find((k) => norm(k) === explicitRegistry)) || pickRegistry(files);
  const registryUrl = explicitRegistry ?? files.registryUrl ?? (key ? norm(key) : undefined);
  const catalogUrl = o['catalog-url'] ? norm(o['catalog-url']) : files.catalogUrl;

  let catalogToken = o['catalog-token'];
  if (catalogToken === undefined) {
    if (!key) throw noSession(dir, files.registryUrl, files.loggedIn);
    // Only warnings: stdout is the token, and the refresh notice is noise for a one-shot command.
    const session = new Quilt3Session(dir, key, createLogger('warning'));
    catalogToken = await session.accessToken();
  }

  let sub = o.sub;
  if (sub === undefined) {
    if (!registryUrl) {
      throw new ToolError('invalid_input', 'No registry is known to ask who you are: quilt3 has no registryUrl and no login.', 'Pass --sub, or --registry-url.');
    }
    const token = catalogToken;
    const client = new CatalogClient(catalogUrl ?? registryUrl, async () => registryUrl, {
      kind: o['catalog-token'] === undefined ? 'quilt3 session' : 'catalog_token',
      token: async () => token,
      refusedHint: o['catalog-token'] === undefined ? 'Run `quilt3 login` to log in again.' : 'Check --catalog-token, or leave it out to use your quilt3 login.',
    });
    const { me } = await client.graphql<MeData>(ME);
    if (!me?.name) {
      throw new ToolError('not_logged_in', `The catalog at ${registryUrl} does not say who this login is (its \`me\` is empty).`, 'Run `quilt3 login` again, or pass --sub.');
    }
    sub = me.name;
  }
  return { sub, catalogToken, catalogUrl, registryUrl };
}

/** Why there is no session to use, in the words of what quilt3 wrote (or did not). */
function noSession(dir: string, configured: string | undefined, loggedIn: string[]): ToolError {
  if (loggedIn.length === 0) {
    return new ToolError('not_logged_in', `No quilt3 login session found (no token in ${dir}/auth.json).`, LOGIN_HINT);
  }
  if (configured) {
    return new ToolError(
      'not_logged_in',
      `quilt3 is configured for the registry ${configured} (config.yml), but auth.json has no login for it (only for ${loggedIn.map(norm).join(', ')}).`,
      'Run `quilt3 login` to log in to the configured catalog, or pass --registry-url to use another login.',
    );
  }
  return new ToolError(
    'not_logged_in',
    `auth.json has logins for several registries (${loggedIn.map(norm).join(', ')}) and quilt3 has no catalog configured, so it is unclear which to use.`,
    'Run `quilt3 config <catalog URL>`, or pass --registry-url to choose one.',
  );
}
