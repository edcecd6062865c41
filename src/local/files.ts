/**
 * Writing local files so that a reader (or a crash) never sees half of one: each file is written
 * to a temporary name, flushed to disk (fsync), then renamed into place (or hard-linked, to create
 * without ever replacing), and the folder is flushed so the new name survives a crash too.
 * Cross-process compare-and-swap (a registry's `latest`) holds a lock folder for the few
 * milliseconds of read-compare-rename.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ToolError } from '../core/errors.js';

const tmpName = (target: string) => `.${path.basename(target).slice(0, 64)}.${randomBytes(6).toString('hex')}.tmp`;

/** Flushes a folder's entries (a rename or link in it) to disk; a file system that cannot (Windows) is skipped. */
export async function syncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EBADF', 'EACCES', 'ENOTSUP'].includes(code ?? '')) throw err;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Writes `bytes` to a new temporary file in `dir`, flushed; returns its path. */
async function writeTemp(dir: string, target: string, bytes: string | Uint8Array): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, tmpName(target));
  const fh = await fs.open(tmp, 'wx', 0o666);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return tmp;
}

const CROSS_DEVICE = new Set(['EXDEV']);
/** A file system without hard links (FAT, some network and FUSE mounts). */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

/**
 * Replaces `target` with `bytes` atomically: a temporary file in `tmpDir` (the same file system,
 * else next to the target), flushed, renamed over the target, the folder flushed.
 */
export async function replaceFile(target: string, bytes: string | Uint8Array, tmpDir: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  let tmp = await writeTemp(tmpDir, target, bytes);
  try {
    try {
      await fs.rename(tmp, target);
    } catch (err) {
      if (!CROSS_DEVICE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await fs.unlink(tmp).catch(() => undefined);
      tmp = await writeTemp(path.dirname(target), target, bytes);
      await fs.rename(tmp, target);
    }
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(path.dirname(target));
}

/**
 * Creates `target` holding `bytes`, never replacing an existing file: the content is written and
 * flushed under a temporary name, then hard-linked to the target (atomic, and fails when the
 * target exists). Returns false when it existed. Without hard links, an exclusive create.
 */
export async function createFile(target: string, bytes: string | Uint8Array, tmpDir: string): Promise<boolean> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = await writeTemp(tmpDir, target, bytes);
  try {
    try {
      await fs.link(tmp, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') return false;
      if (!NO_LINKS.has(code)) throw err;
      return await createExclusive(target, bytes);
    }
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
  await syncDir(path.dirname(target));
  return true;
}

async function createExclusive(target: string, bytes: string | Uint8Array): Promise<boolean> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(target, 'wx', 0o666);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await syncDir(path.dirname(target));
  return true;
}

/** How old a lock folder must be to be taken for one a crashed process left. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The file in a lock folder that names its holder: host and process id. */
const OWNER = 'owner';
const ME = `${os.hostname()} ${process.pid}`;

/**
 * Whether the lock's holder is a process of this host that no longer runs (killed while holding it).
 * A holder on another host (a shared folder), of this process, or not named yet cannot be judged:
 * those locks wait for STALE_LOCK_MS.
 */
async function holderGone(lock: string): Promise<boolean> {
  const m = /^(\S+) (\d+)$/.exec(await fs.readFile(path.join(lock, OWNER), 'utf8').catch(() => ''));
  if (!m || m[1] !== os.hostname() || Number(m[2]) === process.pid) return false;
  try {
    process.kill(Number(m[2]), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs `fn` holding the lock `name` in `dir`, across processes. The lock is a folder that names its
 * holder, made in one step: a folder with the holder's name written in it is renamed to the lock's
 * name (atomic, and refused while the lock exists). A lock made with mkdir and then named could
 * be left unnamed by a kill in between, and the call sent again waited for its age (crash trials,
 * test/faults/crash-local.test.ts). A lock whose holder was killed is taken over at once, and any
 * lock older than STALE_LOCK_MS too. Waiting longer than LOCK_WAIT_MS is a `timeout`.
 */
export async function withLock<T>(dir: string, name: string, what: string, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(dir, { recursive: true });
  const lock = path.join(dir, `${name}.lock`);
  const staged = path.join(dir, `.${name}.${process.pid}-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(staged);
  const deadline = Date.now() + LOCK_WAIT_MS;
  try {
    await fs.writeFile(path.join(staged, OWNER), ME);
    for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
      try {
        await fs.rename(staged, lock);
        break;
      } catch (err) {
        // Held: ENOTEMPTY or EEXIST where the lock exists, EPERM on Windows.
        if (!['ENOTEMPTY', 'EEXIST', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
        const st = await fs.stat(lock).catch(() => undefined);
        if (!st) {
          // Gone between the rename and the stat (or EPERM meant something else: give up in time).
          if (Date.now() > deadline) throw err;
          await sleep(wait);
          continue;
        }
        if (Date.now() - st.mtimeMs > STALE_LOCK_MS || (await holderGone(lock))) {
          await fs.rm(lock, { recursive: true, force: true });
          continue;
        }
        if (Date.now() > deadline) {
          throw new ToolError('timeout', `${what} is locked by another process (${lock}).`, `Retry; if no other quilt-mcp or quilt3 is writing, remove ${lock}.`);
        }
        await sleep(wait);
      }
    }
  } finally {
    // Still there when the lock was not taken.
    await fs.rm(staged, { recursive: true, force: true }).catch(() => undefined);
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true }).catch(() => undefined);
  }
}
