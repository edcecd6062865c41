/**
 * Local paths as people and clients give them (`/abs/path`, `~/data`, `file:///abs/path`, on
 * Windows `C:\data`, `\\server\share\data`, `\\?\C:\data`), made absolute and normalized, and the
 * test that one resolved path lies inside another. Parsing is pure (platform and home are
 * arguments, as in config.ts), so Windows and macOS forms are tested on Linux; resolving goes to
 * the file system of the machine it runs on.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ToolError } from '../core/errors.js';

export interface PathPlatform {
  platform: NodeJS.Platform;
  homedir: string;
}

const pathsOf = (p: PathPlatform) => (p.platform === 'win32' ? path.win32 : path.posix);

function invalid(raw: string, why: string, hint = 'Give an absolute path (e.g. /Users/me/data or C:\\data), ~/data, or a file:/// URI.'): ToolError {
  const shown = raw.length > 200 ? `${raw.slice(0, 200)}...` : raw;
  return new ToolError('invalid_input', `"${shown}" is not a local path this server can use: ${why}.`, hint);
}

/** `file:` URI -> native path (RFC 8089 as browsers and Python's url2pathname read it). */
function fromFileUri(raw: string, p: PathPlatform): string {
  const m = /^file:(?:\/\/([^/?#]*))?(\/[^?#]*)?$/i.exec(raw);
  if (!m) throw invalid(raw, 'a file URI has no query or fragment, and its path starts with "/"');
  const host = m[1] ?? '';
  const rawPath = m[2] ?? '';
  if (/%2f|%5c|%00/i.test(rawPath)) throw invalid(raw, 'its path has an encoded "/", "\\" or NUL');
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw invalid(raw, 'its path is not valid percent-encoding');
  }
  if (p.platform === 'win32') {
    if (host && host.toLowerCase() !== 'localhost') return `\\\\${host}${decoded.replace(/\//g, '\\')}`;
    // file:///C:/data -> C:\data
    const drive = /^\/([A-Za-z])(?::|\|)(\/.*)?$/.exec(decoded);
    if (!drive) throw invalid(raw, 'on Windows a file URI names a drive (file:///C:/...) or a share (file://server/share/...)');
    return `${drive[1]!.toUpperCase()}:${(drive[2] ?? '/').replace(/\//g, '\\')}`;
  }
  if (host && host.toLowerCase() !== 'localhost') throw invalid(raw, `it names another host ("${host}")`);
  if (!decoded) throw invalid(raw, 'it has no path');
  return decoded;
}

/**
 * An absolute, normalized native path (`.` and `..` resolved as text, symlinks not yet), from what
 * a person or client gave. Relative paths are refused: the server's working directory means
 * nothing to the person (Claude Desktop starts it wherever it likes).
 */
export function parseLocalPath(input: string, p: PathPlatform): string {
  const raw = input.trim();
  if (!raw) throw invalid(input, 'it is empty');
  if (raw.includes('\0')) throw invalid('(a path with NUL)', 'it contains a NUL character');
  const P = pathsOf(p);
  let abs: string;
  if (/^file:/i.test(raw)) abs = fromFileUri(raw, p);
  else if (raw === '~' || /^~[/\\]/.test(raw)) {
    if (!p.homedir) throw invalid(raw, 'the home directory is not known');
    abs = P.join(p.homedir, raw.slice(1));
  } else if (raw.startsWith('~')) throw invalid(raw, '"~user" paths are not supported', 'Write the full path of that user\'s folder.');
  else abs = raw;
  if (p.platform === 'win32') {
    // Win32 long-path prefixes: \\?\C:\x and \\?\UNC\server\share\x.
    abs = abs.replace(/^[\\/]{2}[?.][\\/]UNC[\\/]/i, '\\\\').replace(/^[\\/]{2}[?.][\\/](?=[A-Za-z]:)/, '');
    const drive = /^[A-Za-z]:[\\/]/.test(abs);
    const unc = /^[\\/]{2}[^\\/?.][^\\/]*[\\/][^\\/]+/.test(abs);
    if (!drive && !unc) throw invalid(raw, 'it is not absolute (it needs a drive, like C:\\, or a share, like \\\\server\\share)');
  } else if (!abs.startsWith('/')) {
    throw invalid(raw, 'it is relative');
  }
  return P.resolve(abs);
}

/** `file:///...` URI of an absolute native path, as quilt3 writes local physical keys (see physical-keys.ts). */
export function fileUriOf(abs: string, p: Pick<PathPlatform, 'platform'> = { platform: process.platform }): string {
  if (p.platform === 'win32') {
    const slashed = abs.replace(/\\/g, '/');
    if (slashed.startsWith('//')) {
      const [host = '', ...rest] = slashed.slice(2).split('/');
      return `file://${host}/${rest.map(pyQuote).join('/')}`;
    }
    return `file:///${slashed.slice(0, 2)}${slashed.slice(2).split('/').map(pyQuote).join('/')}`;
  }
  return `file://${abs.split('/').map(pyQuote).join('/')}`;
}

/** Python's urllib.parse.quote of one path segment (safe "/" is the separator, handled by the caller). */
function pyQuote(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The real path of `abs`: symlinks resolved. A path that does not exist yet (a folder to install
 * into) resolves through its deepest existing ancestor, the missing rest appended, so a symlink
 * anywhere above it is followed all the same.
 */
export async function realPath(abs: string, P: path.PlatformPath = path): Promise<string> {
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    try {
      const real = await fs.realpath(at);
      return missing.length ? P.join(real, ...missing.reverse()) : real;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      const parent = P.dirname(at);
      if (parent === at) return abs;
      missing.push(P.basename(at));
      at = parent;
    }
  }
}

/** Whether `inner` is `outer` or below it, comparing resolved paths as text (case folded on Windows). */
export function isWithinText(inner: string, outer: string, platform: NodeJS.Platform = process.platform): boolean {
  const P = platform === 'win32' ? path.win32 : path.posix;
  const fold = (s: string) => (platform === 'win32' ? s.toLowerCase() : s);
  const a = fold(inner);
  const b = fold(outer.endsWith(P.sep) && outer.length > 1 ? outer.slice(0, -1) : outer);
  if (a === b) return true;
  return a.startsWith(b.endsWith(P.sep) ? b : b + P.sep);
}

type Identity = { dev: bigint; ino: bigint };

async function identity(p: string): Promise<Identity | undefined> {
  try {
    const s = await fs.stat(p, { bigint: true });
    return { dev: s.dev, ino: s.ino };
  } catch {
    return undefined;
  }
}

/**
 * Whether `inner` (a real path) is `outer` (a real path) or below it. As text first; then, since a
 * case-insensitive file system (macOS, Windows) or a Windows short name can spell one folder two
 * ways, by identity: some existing ancestor of `inner` is the very folder `outer` is (device and
 * inode).
 */
export async function isWithin(inner: string, outer: string): Promise<boolean> {
  if (isWithinText(inner, outer)) return true;
  const root = await identity(outer);
  if (!root || (root.dev === 0n && root.ino === 0n)) return false;
  for (let at = inner; ; ) {
    const id = await identity(at);
    if (id && id.dev === root.dev && id.ino === root.ino) return true;
    const parent = path.dirname(at);
    if (parent === at) return false;
    at = parent;
  }
}
