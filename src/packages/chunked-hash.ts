/**
 * quilt3's `sha2-256-chunked` checksum: base64(sha256(sha256(chunk 1) || sha256(chunk 2) || ...)),
 * with the chunk size chosen from the object size so there are at most 10,000 chunks (S3's
 * multipart part limit; the construction is S3's composite checksum over those parts).
 */
import { createHash, type Hash } from 'node:crypto';
import { ToolError } from '../errors.js';

const MIN_CHUNK = 8 * 1024 * 1024;
const MAX_CHUNKS = 10_000;

/** 8 MiB, doubled while an object of `size` bytes would need more than 10,000 chunks. */
export function chunkSizeFor(size: number): number {
  let chunk = MIN_CHUNK;
  while (Math.ceil(size / chunk) > MAX_CHUNKS) chunk *= 2;
  return chunk;
}

function changedSize(declared: number, seen: number): ToolError {
  return new ToolError(
    'conflict',
    `The object changed size while being read (expected ${declared} bytes, read ${seen}${seen > declared ? ' or more' : ''}).`,
    'Retry; if the object is being rewritten, wait until the write finishes.',
  );
}

/** Incremental: hashes bytes as they arrive and never holds a chunk in memory. */
export class ChunkedHasher {
  private readonly chunkSize: number;
  private readonly outer: Hash = createHash('sha256');
  private chunk: Hash = createHash('sha256');
  private inChunk = 0;
  private seen = 0;

  /**
   * `chunks`, when given, receives each chunk's sha256 in order: the SHA-256 checksums of the parts
   * of an S3 upload in chunk-sized parts, whose composite checksum is then this hash (upload.ts).
   */
  constructor(
    private readonly size: number,
    private readonly chunks?: Buffer[],
  ) {
    if (!Number.isSafeInteger(size) || size < 0) throw new ToolError('invalid_input', `Object size ${size} is not a non-negative integer.`);
    this.chunkSize = chunkSizeFor(size);
  }

  update(data: Uint8Array): void {
    this.seen += data.length;
    // Stop early rather than read the rest of an object that has grown.
    if (this.seen > this.size) throw changedSize(this.size, this.seen);
    let off = 0;
    while (off < data.length) {
      const take = Math.min(this.chunkSize - this.inChunk, data.length - off);
      this.chunk.update(off === 0 && take === data.length ? data : data.subarray(off, off + take));
      this.inChunk += take;
      off += take;
      if (this.inChunk === this.chunkSize) this.closeChunk();
    }
  }

  private closeChunk(): void {
    const digest = this.chunk.digest();
    this.chunks?.push(digest);
    this.outer.update(digest);
    this.chunk = createHash('sha256');
    this.inChunk = 0;
  }

  /** Base64 value; throws if the bytes seen differ from the declared size. */
  digest(): string {
    if (this.seen !== this.size) throw changedSize(this.size, this.seen);
    if (this.inChunk > 0) this.closeChunk();
    return this.outer.digest('base64');
  }
}

export async function chunkedHashOfStream(stream: AsyncIterable<Uint8Array>, size: number): Promise<string> {
  const h = new ChunkedHasher(size);
  for await (const piece of stream) h.update(piece);
  return h.digest();
}

export function chunkedHashOf(data: Uint8Array): string {
  const h = new ChunkedHasher(data.length);
  h.update(data);
  return h.digest();
}
