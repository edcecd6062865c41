/**
 * Decides whether bytes are text and in which encoding, for reading a window of an object.
 * A window may start or end inside a multi-byte UTF-8 character: those partial bytes are left
 * out and the offsets say so, so the next read continues exactly where this one stopped.
 */

export type Decoded =
  | { kind: 'text'; encoding: string; text: string; /** bytes skipped at the start */ skippedStart: number; /** bytes used from the window */ usedBytes: number }
  | { kind: 'binary'; reason: string };

const MAGIC: Array<[number[], string]> = [
  [[0x89, 0x50, 0x4e, 0x47], 'PNG image'],
  [[0xff, 0xd8, 0xff], 'JPEG image'],
  [[0x47, 0x49, 0x46, 0x38], 'GIF image'],
  [[0x25, 0x50, 0x44, 0x46], 'PDF document'],
  [[0x1f, 0x8b], 'gzip-compressed data'],
  [[0x50, 0x4b, 0x03, 0x04], 'ZIP archive'],
  [[0x50, 0x41, 0x52, 0x31], 'Parquet file'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'zstd-compressed data'],
  [[0x42, 0x5a, 0x68], 'bzip2-compressed data'],
  [[0x89, 0x48, 0x44, 0x46], 'HDF5 file'],
];

const startsWith = (b: Uint8Array, sig: number[]) => sig.every((x, i) => b[i] === x);

/** Binary by content-type, even before looking at bytes. */
export function binaryContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const t = contentType.toLowerCase();
  return /^(image|audio|video)\//.test(t) || /(zip|gzip|x-tar|parquet|pdf|x-hdf|octet-stream.*compressed)/.test(t);
}

/** Number of bytes at the end that form an incomplete UTF-8 sequence. */
function incompleteUtf8Tail(b: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back] ?? 0;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/** Continuation bytes at the start of a window that began inside a character. */
function leadingContinuations(b: Uint8Array): number {
  let n = 0;
  while (n < 3 && n < b.length && ((b[n] ?? 0) & 0xc0) === 0x80) n++;
  return n;
}

/**
 * @param atStart the window begins at offset 0 (a BOM can only be there)
 * @param atEnd the window reaches the end of the object (nothing to trim at the end)
 */
export function decodeText(bytes: Uint8Array, { atStart, atEnd }: { atStart: boolean; atEnd: boolean }): Decoded {
  if (atStart) {
    for (const [sig, what] of MAGIC) if (startsWith(bytes, sig)) return { kind: 'binary', reason: what };
    if (startsWith(bytes, [0xef, 0xbb, 0xbf])) {
      return decodeUtf8(bytes, 3, atEnd, 'utf-8-bom');
    }
    if (startsWith(bytes, [0xff, 0xfe]) || startsWith(bytes, [0xfe, 0xff])) {
      const le = bytes[0] === 0xff;
      const usable = bytes.length - ((bytes.length - 2) % 2);
      const text = new TextDecoder(le ? 'utf-16le' : 'utf-16be').decode(bytes.subarray(2, usable));
      return { kind: 'text', encoding: le ? 'utf-16le' : 'utf-16be', text, skippedStart: 2, usedBytes: usable };
    }
  }
  const sample = bytes.subarray(0, 8192);
  let control = 0;
  for (const byte of sample) {
    if (byte === 0) return { kind: 'binary', reason: 'contains NUL bytes' };
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c && byte !== 0x1b) control++;
  }
  if (sample.length > 0 && control / sample.length > 0.1) return { kind: 'binary', reason: 'mostly control characters' };
  return decodeUtf8(bytes, atStart ? 0 : leadingContinuations(bytes), atEnd);
}

function decodeUtf8(bytes: Uint8Array, skip: number, atEnd: boolean, label = 'utf-8'): Decoded {
  const end = atEnd ? bytes.length : bytes.length - incompleteUtf8Tail(bytes);
  const body = bytes.subarray(skip, end);
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
    const ascii = label === 'utf-8' && body.every((b) => b < 0x80);
    return { kind: 'text', encoding: ascii ? 'ascii' : label, text, skippedStart: skip, usedBytes: end };
  } catch {
    // Not UTF-8 but not binary either: the usual legacy single-byte encoding.
    const text = new TextDecoder('windows-1252').decode(bytes);
    return { kind: 'text', encoding: 'windows-1252', text, skippedStart: 0, usedBytes: bytes.length };
  }
}
