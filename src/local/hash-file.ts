/**
 * A local file's sha2-256-chunked hash, read once in 1 MiB pieces (file-jobs.ts) in a file worker
 * thread (file-workers.ts): memory stays at a buffer whatever the file's size, the event loop stays
 * free, and a cancelled call stops at the next piece.
 */
import { fileWork } from './file-workers.js';

/**
 * The hash of the `size` bytes at `path` (a file that changed size meanwhile is refused);
 * `chunks` receives each chunk's sha256 (the part checksums of an upload, upload.ts).
 */
export async function hashFile(path: string, size: number, signal: AbortSignal | undefined, chunks?: Buffer[]): Promise<string> {
  const r = await fileWork({ op: 'hash', path, size, chunks: chunks !== undefined }, signal);
  if (chunks && r.chunks) chunks.push(...r.chunks.map((c) => Buffer.from(c)));
  return r.hash;
}
