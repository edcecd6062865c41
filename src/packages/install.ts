/**
 * quilt3's `Package.install`: a revision's files into a local folder (default: the install
 * location's `<name>/`), then the revision recorded in the local registry, as quilt3 records it
 * (its manifest as quilt3 writes it, the same top hash; physical keys as they were).
 *
 * Each file is streamed from its physical key (S3, pinned to its version, or a local file inside
 * the roots) into a temporary file next to its destination, hashed on the way; only a file whose
 * bytes match the manifest's hash is renamed into place, so no name ever holds a partial or wrong
 * file. An existing file is kept unless `overwrite`; one that already holds the right bytes counts
 * as installed. Memory holds one small record per file (counted in the call's lease) and a 1 MiB
 * buffer per file in flight; progress is told by bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { withS3 } from '../aws/s3.js';
import { callSignal, cancelledError } from '../call-scope.js';
import { packageMemory, type MemoryLease } from '../memory.js';
import { inS3Slot, mapLocal } from '../concurrency.js';
import type { RuntimeContext } from '../context.js';
import { ToolError, toToolError } from '../errors.js';
import { formatBytes } from '../format.js';
import type { LocalAccess } from '../local/access.js';
import { hashFile } from '../local/hash-file.js';
import { fileWork } from '../local/file-workers.js';
import { isWithin } from '../local/paths.js';
import type { ToolExtras } from '../tools/define.js';
import { withPackageLock, pushEncoded } from './build.js';
import { ChunkedHasher } from './chunked-hash.js';
import { manifestWorkSlots } from './manifest-work.js';
import { isManifestEntry, validateLogicalKey, type EntryHash } from './manifest.js';
import { parsePhysicalKey } from './physical-keys.js';
import { readPointer, streamManifestBatches, type RegistryStore } from './registry.js';
import { openStored } from './update.js';

export interface InstallFile {
  /** Path below the destination folder ("/"-separated). */
  rel: string;
  physicalKey: string;
  size: number;
  hash: EntryHash;
}

export interface InstallResult {
  /** Files written now. */
  written: number;
  /** Files already there with the right bytes. */
  unchanged: number;
  /** Existing files with other bytes, left as they were (no overwrite). */
  kept: string[];
  files: number;
  bytes: number;
  /** The tag of the revision recorded in the local registry, or why it was not. */
  registered?: { registry: string; tag?: string | undefined; note?: string | undefined } | undefined;
}

/** What a failed file in an install is reported as. */
function fileError(rel: string, err: unknown): ToolError {
  const e = toToolError(err);
  return new ToolError(e.code, `File "${rel}": ${e.message}`, e.hint);
}

/**
 * The files of revision `hash` to install: every entry, or those under `sub` (a folder, keys
 * relative to it) or the one entry `sub` names (at its base name), as quilt3 install's `path`. The
 * manifest is read in a slot for manifest work (manifest-work.ts); the records kept are counted in
 * `memory`, which the caller holds until the install is over.
 */
export async function filesToInstall(reg: RegistryStore, name: string, hash: string, sub: string | undefined, memory: MemoryLease): Promise<InstallFile[]> {
  const ctx = reg.ctx;
  const dir = sub?.replace(/^\/+|\/+$/g, '') ?? '';
  const prefix = dir ? `${dir}/` : '';
  return manifestWorkSlots.run(
    ctx.principal.key,
    async () => {
      const files: InstallFile[] = [];
      let held = 0;
      for await (const batch of streamManifestBatches(reg, hash)) {
        for (const rec of batch) {
          if (!isManifestEntry(rec)) continue;
          const lk = rec.logical_key;
          let rel: string | undefined;
          if (!dir) rel = lk;
          else if (lk === dir) rel = lk.slice(lk.lastIndexOf('/') + 1);
          else if (lk.startsWith(prefix)) rel = lk.slice(prefix.length);
          if (rel === undefined) continue;
          const pk = rec.physical_keys[0];
          if (!pk) throw new ToolError('upstream_error', `The entry "${lk}" of ${name}@${hash.slice(0, 12)} has no physical key.`);
          // Keys come from the manifest: a "..", an empty segment or a backslash may not steer a write.
          validateLogicalKey(rel);
          if (process.platform === 'win32' && /[\\:*?"<>|]/.test(rel)) throw new ToolError('invalid_input', `The logical key "${lk}" cannot be a file name on Windows.`);
          held += 2 * (rel.length + pk.length) + 200;
          memory.hold(held);
          files.push({ rel, physicalKey: pk, size: rec.size, hash: rec.hash });
        }
      }
      if (dir && files.length === 0) {
        throw new ToolError('not_found', `${name}@${hash.slice(0, 12)} has no file or folder "${dir}".`, 'See its files with package_browse.');
      }
      return files;
    },
    callSignal(),
  );
}

/** The lease an install's records are counted in (memory.ts), released when the call ends. */
export const installLease = (name: string, hash: string) =>
  packageMemory.lease({ what: `Installing ${name}@${hash.slice(0, 12)}`, tooLargeHint: 'Install a folder of the package at a time (path).' });

/** An entry's hash of bytes as they stream. */
function entryHasher(h: EntryHash, size: number): { update(b: Uint8Array): void; matches(): boolean } {
  if (h.type === 'SHA256') {
    const sha = createHash('sha256');
    return { update: (b) => sha.update(b), matches: () => sha.digest('hex') === h.value.toLowerCase() };
  }
  const c = new ChunkedHasher(size);
  return {
    update: (b) => c.update(b),
    matches: () => {
      try {
        return c.digest() === h.value;
      } catch {
        return false;
      }
    },
  };
}

/** An S3 object's bytes, in pieces (pinned to the version its physical key names). */
async function* s3Bytes(ctx: RuntimeContext, pk: string, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const loc = parsePhysicalKey(pk);
  if (signal.aborted) throw cancelledError();
  const body = await inS3Slot(() =>
    withS3(ctx, { bucket: loc.bucket, key: loc.key, action: 'read', verb: 'read' }, async (client, { GetObjectCommand }) => {
      const out = await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: loc.versionId }));
      return out.Body as Readable;
    }),
  );
  const cut = () => body.destroy(cancelledError());
  signal.addEventListener('abort', cut, { once: true });
  try {
    for await (const piece of body as AsyncIterable<Uint8Array>) yield piece;
  } finally {
    signal.removeEventListener('abort', cut);
    body.destroy();
  }
}

const mismatch = (f: InstallFile, size: number) =>
  new ToolError(
    'conflict',
    `its bytes at ${f.physicalKey} do not match the package (${size === f.size ? 'another hash' : `${size > f.size ? 'more than' : size} bytes, not ${f.size}`}); it was not installed.`,
    'The source changed after the package was made: make a new revision from it, or install a revision that matches it.',
  );

/**
 * Writes one file: a temporary name, hashed on the way, renamed into place only when the hash
 * matches. A local source is copied by a file worker (file-workers.ts); an S3 one streams here.
 */
async function installFile(ctx: RuntimeContext, local: LocalAccess, f: InstallFile, target: string, signal: AbortSignal, onBytes: (n: number) => void): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target).slice(0, 64)}.${randomBytes(6).toString('hex')}.quilt-install`);
  if (/^file:/i.test(f.physicalKey)) {
    const src = await local.roots.resolve(f.physicalKey, 'A source file of the package', 'read');
    const r = await fileWork({ op: 'copy', src, tmp, size: f.size, hashType: f.hash.type }, signal).catch((err: unknown) => {
      const code = /^(ENOENT|EACCES|EPERM)\b/.exec(err instanceof Error ? err.message : '')?.[1];
      if (code) throw new ToolError(code === 'ENOENT' ? 'not_found' : 'access_denied', `${src} ${code === 'ENOENT' ? 'no longer exists' : `cannot be read (${code})`}.`);
      throw err;
    });
    const want = f.hash.type === 'SHA256' ? f.hash.value.toLowerCase() : f.hash.value;
    if (r.size !== f.size || r.hash !== want) {
      await fs.unlink(tmp).catch(() => undefined);
      throw mismatch(f, r.size ?? 0);
    }
    await fs.rename(tmp, target);
    onBytes(f.size);
    return;
  }
  const fh = await fs.open(tmp, 'wx', 0o666);
  let ok = false;
  try {
    const hasher = entryHasher(f.hash, f.size);
    let size = 0;
    for await (const piece of s3Bytes(ctx, f.physicalKey, signal)) {
      size += piece.length;
      if (size > f.size) break;
      hasher.update(piece);
      await fh.write(piece);
      onBytes(piece.length);
    }
    if (size !== f.size || !hasher.matches()) throw mismatch(f, size);
    await fh.close();
    await fs.rename(tmp, target);
    ok = true;
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await fs.unlink(tmp).catch(() => undefined);
    }
  }
}

/** Installs `files` into `dest` (a real path inside the roots). */
export async function installFiles(
  ctx: RuntimeContext,
  local: LocalAccess,
  files: readonly InstallFile[],
  dest: string,
  overwrite: boolean,
  extras: Pick<ToolExtras, 'progress' | 'signal'>,
): Promise<Omit<InstallResult, 'registered'>> {
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  let filesDone = 0;
  let told = 0;
  const tell = async (force = false) => {
    // At most ~100 notifications by bytes, however many files.
    if (!force && done - told < total / 100) return;
    told = done;
    await extras.progress(done, total, `${filesDone} of ${files.length} files, ${formatBytes(done)} of ${formatBytes(total)}`);
  };
  await fs.mkdir(dest, { recursive: true });
  /** Folders made (or found) inside dest whose real path was checked: a symlink inside dest may not lead out. */
  const checked = new Map<string, Promise<void>>();
  const ensureDir = (dir: string): Promise<void> => {
    let p = checked.get(dir);
    if (!p) {
      p = (async () => {
        await fs.mkdir(dir, { recursive: true });
        const real = await fs.realpath(dir);
        if (!(await isWithin(real, dest))) {
          throw new ToolError('access_denied', `${dir} leads out of the install folder ${dest} (a symlink to ${real}); nothing was written there.`, 'Remove the symlink, or install elsewhere.');
        }
      })();
      checked.set(dir, p);
    }
    return p;
  };
  let written = 0;
  let unchanged = 0;
  const kept: string[] = [];
  // Files in progress: after a failure the call ends only once they have (their temporary files removed).
  const running = new Set<Promise<void>>();
  const one = async (f: InstallFile): Promise<void> => {
    if (extras.signal.aborted) throw cancelledError();
    const target = path.join(dest, ...f.rel.split('/'));
    try {
      await ensureDir(path.dirname(target));
      const st = await fs.lstat(target).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (st && !overwrite) {
        const same =
          st.isFile() &&
          st.size === f.size &&
          f.hash.type === 'sha2-256-chunked' &&
          (await hashFile(target, f.size, extras.signal).catch((err: unknown) => {
            if (err instanceof ToolError && err.code === 'cancelled') throw err;
            return ''; // unreadable: kept, as a file with other bytes
          })) === f.hash.value;
        if (same) unchanged++;
        else kept.push(f.rel);
        done += f.size;
      } else {
        if (st?.isDirectory()) throw new ToolError('conflict', `${target} is a folder.`, 'Remove it, or install elsewhere.');
        await installFile(ctx, local, f, target, extras.signal, (n) => {
          done += n;
        });
        written++;
      }
    } catch (err) {
      throw fileError(f.rel, err);
    }
    filesDone++;
    await tell(filesDone === files.length);
  };
  try {
    await mapLocal(files, (f) => {
      const p = one(f);
      running.add(p);
      void p.then(
        () => running.delete(p),
        () => running.delete(p),
      );
      return p;
    });
  } catch (err) {
    await Promise.allSettled([...running]);
    throw err;
  }
  return { written, unchanged, kept, files: files.length, bytes: total };
}

/**
 * Records revision `hash` of `src` in the local registry, as quilt3 install does: its manifest
 * written as quilt3 writes it (same top hash), pointers after it. Nothing to do when latest is
 * already that revision.
 */
export async function registerRevision(src: RegistryStore, name: string, hash: string, localReg: RegistryStore): Promise<{ tag?: string | undefined; note?: string | undefined }> {
  return withPackageLock(localReg, name, async () => {
    const latest = (await readPointer(localReg, name, 'latest')) ?? null;
    if (latest?.hash === hash) return { note: `latest of ${name} in ${localReg.id} is already this revision.` };
    const base = await openStored(src, name, hash, { hold: true });
    try {
      const merged = await base.merge(base.header, [], []);
      try {
        if (merged.hash !== hash) {
          return { note: `its manifest hashes to ${merged.hash}, not ${hash} (written by another tool?), so it was not recorded in ${localReg.id}.` };
        }
        const pushed = await pushEncoded(localReg, name, hash, merged.encode(), latest);
        return { tag: pushed.tag };
      } finally {
        merged.release();
      }
    } finally {
      await base.close();
    }
  });
}
