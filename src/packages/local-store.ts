/**
 * A registry in a local folder, byte for byte as quilt3 lays out its local registry: the folder
 * holds `.quilt/named_packages/<name>/{latest,<unix seconds>}` (the top hash, no newline) and
 * `.quilt/packages/<top hash>` (the manifest), keys mapped to paths under it.
 *
 * S3's conditional writes are played with the file system: If-None-Match creates by hard link, so
 * an existing file (a timestamp pointer) is never replaced; If-Match compares the file's bytes (an
 * "ETag" here is their sha256) under a lock folder and renames the new bytes over it. Every file is
 * written whole under a temporary name in `.quilt/.tmp/` and renamed into place after an fsync
 * (local/files.ts), so a crash leaves either the old file or the new one. Data written for a
 * package (text entries) is content-addressed under `.quilt/data/`, so no revision's bytes are ever
 * replaced.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ListedObject } from '../aws/list.js';
import type { BucketAction, RuntimeContext } from '../context.js';
import { ToolError, toToolError } from '../errors.js';
import { createFile, replaceFile, syncDir, withLock } from '../local/files.js';
import { fileUriOf, isWithin } from '../local/paths.js';
import { compareCodePoints } from './pyjson.js';
import { NAMED, PackageAggregator, smallText } from './s3-store.js';
import { DENIED, type ListPackagesOptions, type ObjectText, type PackageListing, type RegistryStore, type WriteCondition } from './store.js';

/** Where temporary files and locks live: inside `.quilt/` (quilt3 lists only named_packages and packages). */
const TMP = '.quilt/.tmp';
/** Data this server writes into a local registry (text entries), by content. */
export const DATA = '.quilt/data/';

const etagOf = (bytes: string | Uint8Array) => `"${createHash('sha256').update(bytes).digest('hex')}"`;

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? '';

function localError(err: unknown, verb: string, where: string): ToolError {
  if (err instanceof ToolError) return err;
  const code = codeOf(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') return new ToolError('not_found', `${where} does not exist.`);
  if (code === 'EACCES' || code === 'EPERM') return new ToolError('access_denied', `Permission denied to ${verb} ${where}.`, 'Check the folder\'s permissions.');
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ToolError('too_large', `No space left to ${verb} ${where}.`, 'Free some disk space and retry.');
  if (code === 'EROFS') return new ToolError('access_denied', `${where} is on a read-only file system.`);
  if (code === 'ABORT_ERR' || (err as Error).name === 'AbortError') return new ToolError('cancelled', 'The call was cancelled (the client cancelled it or went away).');
  const e = toToolError(err);
  return new ToolError(e.code, `Could not ${verb} ${where}: ${(err as Error).message}`, e.hint);
}

export class LocalStore implements RegistryStore {
  readonly kind = 'local' as const;
  readonly bucket = undefined;
  readonly id: string;
  readonly uri: string;

  /** `dir`: the registry folder's real path (checked against the roots by openRegistry). */
  constructor(
    readonly ctx: RuntimeContext,
    readonly dir: string,
    name?: string,
  ) {
    this.uri = fileUriOf(dir);
    this.id = name ?? this.uri;
  }

  authorize(_action: BucketAction): void {
    // The folder was checked against the caller's roots when the registry was opened.
  }

  /** The path of a key; keys are registry keys (checked segment by segment), never caller paths. */
  private pathOf(key: string): string {
    const segs = key.split('/');
    if (segs.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0'))) {
      throw new ToolError('invalid_input', `"${key}" is not a key a local registry can hold.`);
    }
    return path.join(this.dir, ...segs);
  }

  /** A path about to be read or written, its folder's real path inside the registry (a symlink inside it may not lead out). */
  private async inside(p: string): Promise<void> {
    const parent = path.dirname(p);
    let real: string;
    try {
      real = await fs.realpath(parent);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return; // created below the registry's own (checked) folder
      throw err;
    }
    if (!(await isWithin(real, this.dir))) {
      throw new ToolError('access_denied', `${p} leads out of the registry ${this.uri} (through a symlink, to ${real}).`, 'Remove the symlink from the registry folder.');
    }
  }

  private where(key: string): string {
    return fileUriOf(path.join(this.dir, key));
  }

  async readText(key: string, signal: AbortSignal | undefined, limit: { bytes: number; what: string }): Promise<ObjectText | undefined | typeof DENIED> {
    const p = this.pathOf(key);
    try {
      await this.inside(p);
      signal?.throwIfAborted();
      const st = await fs.stat(p);
      if (!st.isFile()) return undefined;
      const body = createReadStream(p, { signal });
      const text = await smallText(body, st.size, this.where(key), limit);
      return { text, lastModified: st.mtime, etag: etagOf(text), versionId: undefined };
    } catch (err) {
      if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') return undefined;
      throw localError(err, 'read', this.where(key));
    }
  }

  async put(key: string, body: string | Uint8Array, _contentType: string, condition?: WriteCondition) {
    const p = this.pathOf(key);
    const tmp = path.join(this.dir, TMP);
    try {
      await fs.mkdir(path.dirname(p), { recursive: true });
      await this.inside(p);
      if (condition && 'ifNoneMatch' in condition) {
        if (!(await createFile(p, body, tmp))) throw new ToolError('conflict', `${this.where(key)} was changed by someone else at the same moment.`);
      } else if (condition) {
        await this.compareAndSwap(key, p, condition.ifMatch, async () => replaceFile(p, body, tmp));
      } else {
        await replaceFile(p, body, tmp);
      }
      return { etag: etagOf(body), versionId: undefined };
    } catch (err) {
      throw localError(err, 'write', this.where(key));
    }
  }

  /** Runs `fn` while the file at `p` still holds what `etag` names (else `conflict`), across processes. */
  private async compareAndSwap<T>(key: string, p: string, etag: string, fn: () => Promise<T>, missing?: () => T): Promise<T> {
    const lockName = createHash('sha256').update(key).digest('hex').slice(0, 32);
    return withLock(path.join(this.dir, TMP, 'locks'), lockName, this.where(key), async () => {
      let now: Buffer;
      try {
        now = await fs.readFile(p);
      } catch (err) {
        if (codeOf(err) === 'ENOENT' && missing) return missing();
        if (codeOf(err) === 'ENOENT') throw new ToolError('conflict', `${this.where(key)} was changed by someone else at the same moment.`);
        throw err;
      }
      if (etagOf(now) !== etag) throw new ToolError('conflict', `${this.where(key)} was changed by someone else at the same moment.`);
      return fn();
    });
  }

  async remove(key: string, ifMatch?: string): Promise<boolean> {
    const p = this.pathOf(key);
    try {
      await this.inside(p);
      const unlink = async () => {
        try {
          await fs.unlink(p);
        } catch (err) {
          if (codeOf(err) !== 'ENOENT') throw err;
        }
        await syncDir(path.dirname(p)).catch(() => undefined);
        return true;
      };
      if (!ifMatch) return await unlink();
      return await this.compareAndSwap(key, p, ifMatch, unlink, () => false);
    } catch (err) {
      throw localError(err, 'delete', this.where(key));
    }
  }

  /**
   * The files under `prefix` in S3's key order: each folder's entries sorted by name, a folder's
   * name followed by "/", so a depth-first walk yields keys in code point order. Symlinks and
   * temporary files are not registry keys and are skipped.
   */
  private async *walk(rel: string, namePrefix: string, startAfter: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<{ key: string; path: string }> {
    signal?.throwIfAborted();
    const dirPath = rel ? path.join(this.dir, ...rel.split('/').filter(Boolean)) : this.dir;
    let entries;
    try {
      entries = await fs.readdir(dirPath, { withFileTypes: true });
    } catch (err) {
      if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') return;
      throw err;
    }
    const items = entries
      .filter((e) => e.name.startsWith(namePrefix) && (e.isFile() || e.isDirectory()) && !(rel === '.quilt/' && e.name === '.tmp'))
      .map((e) => ({ e, key: `${rel}${e.name}${e.isDirectory() ? '/' : ''}` }))
      .sort((a, b) => compareCodePoints(a.key, b.key));
    for (const { e, key } of items) {
      if (startAfter !== undefined && compareCodePoints(key, startAfter) <= 0 && !(e.isDirectory() && startAfter.startsWith(key))) continue;
      if (e.isDirectory()) yield* this.walk(key, '', startAfter, signal);
      else yield { key, path: path.join(dirPath, e.name) };
    }
  }

  private keysUnder(prefix: string, startAfter: string | undefined, signal: AbortSignal | undefined) {
    const cut = prefix.lastIndexOf('/') + 1;
    return this.walk(prefix.slice(0, cut), prefix.slice(cut), startAfter, signal);
  }

  async list(prefix: string, { max = Infinity, signal }: { max?: number | undefined; action?: BucketAction; signal?: AbortSignal | undefined }): Promise<{ keys: ListedObject[]; truncated: boolean }> {
    const keys: ListedObject[] = [];
    try {
      for await (const k of this.keysUnder(prefix, undefined, signal)) {
        if (keys.length >= max) return { keys, truncated: true };
        keys.push({ key: k.key });
      }
    } catch (err) {
      throw localError(err, 'list', this.where(prefix));
    }
    return { keys, truncated: false };
  }

  async listPackages({ prefix = '', max = Infinity, limit = Infinity, startAfter, signal }: ListPackagesOptions): Promise<PackageListing> {
    const agg = new PackageAggregator(limit);
    try {
      for await (const k of this.keysUnder(`${NAMED}${prefix}`, startAfter, signal)) {
        if (agg.scanned >= max) return agg.done(true);
        const modified = k.key.endsWith('/latest') ? (await fs.stat(k.path).catch(() => undefined))?.mtime : undefined;
        if (agg.add(k.key, modified)) return agg.done(false);
      }
    } catch (err) {
      throw localError(err, 'list', this.where(NAMED));
    }
    return agg.done(false);
  }

  async open(key: string, verb: string): Promise<{ body: Readable; size: number | undefined }> {
    const p = this.pathOf(key);
    try {
      await this.inside(p);
      const fh = await fs.open(p, 'r');
      const { size } = await fh.stat();
      // 64 KiB pieces, as an S3 body comes: the manifest readers give the event loop back per piece.
      return { body: fh.createReadStream({ highWaterMark: 64 * 1024 }), size };
    } catch (err) {
      throw localError(err, verb, this.where(key));
    }
  }

  readError(err: unknown, verb: string, key: string): ToolError {
    return localError(err, verb, this.where(key));
  }

  physicalKey(key: string): string {
    return fileUriOf(this.pathOf(key));
  }

  /** `.quilt/data/<sha256 of the bytes><the logical key's extension>`: written once, never replaced. */
  dataKey(_name: string, logicalKey: string, sha256Hex: string): string {
    const ext = /\.[A-Za-z0-9]{1,12}$/.exec(logicalKey)?.[0] ?? '';
    return `${DATA}${sha256Hex}${ext}`;
  }
}
