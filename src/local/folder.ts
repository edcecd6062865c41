/**
 * The files of a local folder as quilt3's `Package.set_dir` takes them: every file below it
 * (`Path.rglob('*')`: hidden ones too, symlinked files as their targets, symlinked folders not
 * entered), minus what the folder's `.quiltignore` ignores (quiltignore.ts), each with its
 * logical key (the path relative to the folder, "/"-separated) and size. A symlink may not lead
 * outside the granted roots.
 */
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { mapBounded } from '../concurrency.js';
import { ToolError } from '../errors.js';
import type { Matcher } from '../patterns.js';
import { QuiltIgnore } from './quiltignore.js';
import type { LocalRoots } from './roots.js';

export interface LocalFile {
  /** Path relative to the folder, "/"-separated: the logical key below the folder's prefix. */
  rel: string;
  /** The file's real path (a symlink's target), what its physical key names. */
  path: string;
  size: number;
}

export interface FolderOptions {
  include?: Matcher | undefined;
  exclude?: Matcher | undefined;
  /** Refuse a folder with more files than this. */
  max: number;
  signal?: AbortSignal | undefined;
}

const STATS_AT_ONCE = 16;

/** `folder`: a real path, already checked against the roots. */
export async function listFolder(roots: LocalRoots, folder: string, opts: FolderOptions): Promise<LocalFile[]> {
  let ignore: QuiltIgnore | undefined;
  try {
    ignore = new QuiltIgnore(await fs.readFile(path.join(folder, '.quiltignore'), 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EISDIR') throw err;
  }
  const files: LocalFile[] = [];
  const tooMany = () =>
    new ToolError('too_large', `More than ${opts.max} files are in ${folder}.`, 'Package a folder further down, narrow it with include/exclude or a .quiltignore, or raise max_objects (up to 100000).');

  const visit = async (dir: string, relDir: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') throw new ToolError('access_denied', `Permission denied to list ${dir}.`, 'Check the folder\'s permissions, or leave it out with a .quiltignore.');
      throw err;
    }
    const subdirs: Array<[string, string]> = [];
    const found = await mapBounded(entries, STATS_AT_ONCE, async (e): Promise<LocalFile | undefined> => {
      const abs = path.join(dir, e.name);
      const rel = relDir ? `${relDir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!ignore?.ignoresFolder(abs)) subdirs.push([abs, rel]);
        return undefined;
      }
      if (!e.isFile() && !e.isSymbolicLink()) return undefined; // sockets, pipes, devices: not files
      if (ignore?.ignoresFile(abs)) return undefined;
      let st;
      try {
        st = await fs.stat(abs);
      } catch {
        return undefined; // a broken symlink, or a file gone meanwhile
      }
      if (!st.isFile()) return undefined; // a symlinked folder is not entered (as rglob)
      const real = e.isSymbolicLink() ? await roots.check(abs, `The file ${rel} (a symlink)`, 'read') : abs;
      return { rel, path: real, size: st.size };
    });
    for (const f of found) {
      if (!f) continue;
      if ((opts.include && !opts.include.test(f.rel)) || opts.exclude?.test(f.rel)) continue;
      if (files.length >= opts.max) throw tooMany();
      files.push(f);
    }
    subdirs.sort((a, b) => (a[1] < b[1] ? -1 : 1));
    for (const [abs, rel] of subdirs) await visit(abs, rel);
  };
  await visit(folder, '');
  return files;
}
