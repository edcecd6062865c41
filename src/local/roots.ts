/**
 * The folders a person granted (desktop mode only), and the check every local read and write goes
 * through: the path is resolved (`~`, `..`, symlinks, case and short names: paths.ts) and must lie
 * inside one of them, else it is refused with the rule that refused it.
 *
 * Roots come from three places: QUILT_MCP_ROOTS and the folders given as arguments (config.ts);
 * quilt3's local registry and install location, granted by default (they are quilt3's own folders);
 * and the client's MCP roots (`roots/list`), asked for once the client has said hello and again on
 * every `notifications/roots/list_changed`, so a root the client removes stops working at once.
 */
import { ToolError } from '../errors.js';
import { isWithin, parseLocalPath, realPath, type PathPlatform } from './paths.js';

export interface Root {
  /** Absolute native path, as given (resolved through symlinks when checked). */
  path: string;
  /** Where the grant comes from, for messages: "QUILT_MCP_ROOTS", "client root", "quilt3 local registry"... */
  source: string;
}

export type LocalAction = 'read' | 'write';

/** Longest a check waits for the client's first (or refreshed) roots list. */
const CLIENT_WAIT_MS = 5_000;

/**
 * The client's roots (`roots/list`), refreshed on list_changed. A check waits for a list being
 * fetched, so a call made right after a change is judged by the new list.
 */
export class ClientRoots {
  private current: Promise<Root[]> = Promise.resolve([]);
  private asked = false;

  constructor(private readonly platform: PathPlatform) {}

  /** Whether the client offered roots (and they were asked for). */
  get supported(): boolean {
    return this.asked;
  }

  /** Asks the client again; `fetch` gives its `roots` (file:// URIs). Failures leave no client roots. */
  refresh(fetch: () => Promise<Array<{ uri: string; name?: string | undefined }>>, onError: (why: string) => void): void {
    this.asked = true;
    this.current = fetch().then(
      (roots) =>
        roots.flatMap((r) => {
          try {
            return [{ path: parseLocalPath(r.uri, this.platform), source: `client root${r.name ? ` "${r.name}"` : ''}` }];
          } catch (err) {
            onError(`client root ${r.uri} ignored: ${(err as Error).message}`);
            return [];
          }
        }),
      (err: unknown) => {
        onError(`roots/list failed: ${(err as Error).message}`);
        return [];
      },
    );
  }

  async roots(): Promise<Root[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<Root[]>((resolve) => {
      timer = setTimeout(() => resolve([]), CLIENT_WAIT_MS);
      timer.unref();
    });
    try {
      return await Promise.race([this.current, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export class LocalRoots {
  constructor(
    private readonly fixed: readonly Root[],
    private readonly client: ClientRoots | undefined,
    readonly platform: PathPlatform,
  ) {}

  /** Every root in force now: the fixed ones, then the client's. */
  async list(): Promise<Root[]> {
    return [...this.fixed, ...(this.client ? await this.client.roots() : [])];
  }

  /** A path argument, parsed and checked: its real path. */
  async resolve(raw: string, what: string, action: LocalAction): Promise<string> {
    return this.check(parseLocalPath(raw, this.platform), what, action);
  }

  /** The real path of `abs` (absolute), refused unless it lies inside a root. */
  async check(abs: string, what: string, action: LocalAction): Promise<string> {
    const real = await realPath(abs);
    const roots = await this.list();
    for (const r of roots) {
      if (await isWithin(real, await realPath(r.path))) return real;
    }
    const shown = real === abs ? abs : `${abs} (really ${real})`;
    const granted = roots.length ? roots.map((r) => `${r.path} (${r.source})`).join('; ') : 'none';
    throw new ToolError(
      'access_denied',
      `${what} ${shown} is outside the folders this server may ${action === 'read' ? 'read' : 'write'}: a local path must lie inside a granted root, after "~", "..", and symlinks are resolved. Roots: ${granted}.`,
      'Grant the folder: add it to QUILT_MCP_ROOTS (a comma-separated list of folders) or the bundle\'s "Folders" setting, or share it as a root from the client; or use a path inside a root.',
    );
  }
}
