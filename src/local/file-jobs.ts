/**
 * The byte work on local files: hashing a file (sha2-256-chunked, with its chunks' sha256s when an
 * upload needs them) and copying one while hashing what is written. Run by the file workers
 * (file-workers.ts) off the event loop, or in place where no worker can start (tests on src/).
 * Memory is one 1 MiB buffer (two while copying); `cancelled` is asked between pieces.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import { cancelledError } from '../call-scope.js';
import { ToolError } from '../errors.js';
import { ChunkedHasher } from '../packages/chunked-hash.js';

export const PIECE = 1024 * 1024;

export type FileJob =
  | { op: 'hash'; path: string; size: number; chunks: boolean }
  /** Copies `src` to the new file `tmp` (created, never replaced), hashing the bytes written. */
  | { op: 'copy'; src: string; tmp: string; size: number; hashType: 'sha2-256-chunked' | 'SHA256' };

export type FileResult = { hash: string; chunks?: Uint8Array[] | undefined; size?: number | undefined };

function changed(path: string, err: ToolError): ToolError {
  return new ToolError('conflict', `${path} changed while it was being read (${err.message})`, 'Retry once nothing is writing to it.');
}

/** Hashes a file of `size` bytes; a file of another size is refused. */
async function hashJob(job: Extract<FileJob, { op: 'hash' }>, cancelled: () => boolean): Promise<FileResult> {
  const chunks: Buffer[] | undefined = job.chunks ? [] : undefined;
  const hasher = new ChunkedHasher(job.size, chunks);
  const fh = await fs.open(job.path, 'r');
  try {
    // One byte more than expected tells a file that grew.
    const buf = Buffer.allocUnsafe(Math.min(PIECE, Math.max(job.size, 1)) + 1);
    for (let pos = 0; ; ) {
      if (cancelled()) throw cancelledError();
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return { hash: hasher.digest(), chunks };
  } catch (err) {
    if (err instanceof ToolError && err.code === 'conflict') throw changed(job.path, err);
    throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Files up to this size are copied by the kernel (copy_file_range where the system has it: one
 * copy instead of two through this process) and then hashed as written; larger ones stream
 * through here, so a cancelled call stops within a piece rather than after a long copy.
 */
const KERNEL_COPY_MAX = 1024 * 1024 * 1024;

/**
 * Copies `src` to the new file `tmp` and hashes what was written. Returns the hash and the size
 * (the caller compares both with the manifest); on any failure the new file is removed.
 */
async function copyJob(job: Extract<FileJob, { op: 'copy' }>, cancelled: () => boolean): Promise<FileResult> {
  if (job.size > KERNEL_COPY_MAX) return streamCopy(job, cancelled);
  let ok = false;
  try {
    if (cancelled()) throw cancelledError();
    await fs.copyFile(job.src, job.tmp, fsConstants.COPYFILE_EXCL);
    const { size } = await fs.stat(job.tmp);
    let hash = '';
    if (size === job.size) {
      hash = job.hashType === 'sha2-256-chunked' ? (await hashJob({ op: 'hash', path: job.tmp, size, chunks: false }, cancelled)).hash : await plainSha256(job.tmp, cancelled);
    }
    ok = true;
    return { hash, size };
  } finally {
    if (!ok) await fs.unlink(job.tmp).catch(() => undefined);
  }
}

async function plainSha256(path: string, cancelled: () => boolean): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(PIECE);
    for (let pos = 0; ; ) {
      if (cancelled()) throw cancelledError();
      const { bytesRead } = await fh.read(buf, 0, PIECE, pos);
      if (bytesRead === 0) return h.digest('hex');
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** Copies while hashing, the next piece read while the last one is written. */
async function streamCopy(job: Extract<FileJob, { op: 'copy' }>, cancelled: () => boolean): Promise<FileResult> {
  const chunked = job.hashType === 'sha2-256-chunked' ? new ChunkedHasher(job.size) : undefined;
  const plain = chunked ? undefined : createHash('sha256');
  const src = await fs.open(job.src, 'r');
  let out: fs.FileHandle | undefined;
  let ok = false;
  try {
    out = await fs.open(job.tmp, 'wx', 0o666);
    const bufs = [Buffer.allocUnsafe(PIECE), Buffer.allocUnsafe(PIECE)];
    let size = 0;
    let writing: Promise<unknown> = Promise.resolve();
    for (let i = 0; ; i++) {
      if (cancelled()) throw cancelledError();
      const buf = bufs[i % 2]!;
      const { bytesRead } = await src.read(buf, 0, PIECE, size);
      if (bytesRead === 0) break;
      size += bytesRead;
      // Past the size the manifest names: stop; the caller refuses the file.
      if (size > job.size) break;
      const piece = buf.subarray(0, bytesRead);
      if (chunked) chunked.update(piece);
      else plain!.update(piece);
      // The previous write has finished before its buffer is read into again.
      await writing;
      writing = out.write(piece, 0, bytesRead);
    }
    await writing;
    let hash = '';
    if (size === job.size) {
      try {
        hash = chunked ? chunked.digest() : plain!.digest('hex');
      } catch {
        hash = '';
      }
    }
    ok = true;
    return { hash, size };
  } finally {
    await src.close();
    await out?.close().catch(() => undefined);
    if (!ok) await fs.unlink(job.tmp).catch(() => undefined);
  }
}

export function runFileJob(job: FileJob, cancelled: () => boolean): Promise<FileResult> {
  return job.op === 'hash' ? hashJob(job, cancelled) : copyJob(job, cancelled);
}
