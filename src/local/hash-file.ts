/**
 * A local file's sha2-256-chunked hash, read once in 1 MiB pieces into one reused buffer: memory
 * stays at the buffer whatever the file's size, each piece is an await (the event loop runs other
 * callers' work in between), and a cancelled call stops at the next piece.
 */
import { promises as fs } from 'node:fs';
import { cancelledError } from '../call-scope.js';
import { ToolError } from '../errors.js';
import { ChunkedHasher } from '../packages/chunked-hash.js';

export const PIECE = 1024 * 1024;

/**
 * The hash of the `size` bytes at `path` (a file that changed size meanwhile is refused);
 * `chunks` receives each chunk's sha256 (the part checksums of an upload, upload.ts).
 */
export async function hashFile(path: string, size: number, signal: AbortSignal | undefined, chunks?: Buffer[]): Promise<string> {
  const hasher = new ChunkedHasher(size, chunks);
  const fh = await fs.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(PIECE, Math.max(size, 1)) + 1);
    for (let pos = 0; ; ) {
      if (signal?.aborted) throw cancelledError();
      // One byte more than expected tells a file that grew.
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      hasher.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return hasher.digest();
  } catch (err) {
    if (err instanceof ToolError && err.code === 'conflict') {
      throw new ToolError('conflict', `${path} changed while it was being read (${err.message})`, 'Retry once nothing is writing to it.');
    }
    throw err;
  } finally {
    await fh.close();
  }
}
