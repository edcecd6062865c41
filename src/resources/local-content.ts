/**
 * A package entry's content when its physical key is a local file (a local registry, desktop
 * mode): small text inline, anything else as its metadata and path (there is no link to hand out:
 * the file is on this machine). The path is checked against the caller's roots; JWT mode has none.
 */
import { promises as fs } from 'node:fs';
import type { RuntimeContext } from '../context.js';
import { guessContentType } from '../content-type.js';
import { ToolError } from '../errors.js';
import { formatBytes } from '../format.js';
import { localAccess } from '../local/access.js';
import { decodeText } from '../text-detect.js';
import type { TextContent } from './define.js';
import { INLINE_TEXT_BYTES } from './content.js';

export async function localContent(ctx: RuntimeContext, uri: string, physicalKey: string, describe: Record<string, unknown>): Promise<TextContent[]> {
  const path = await localAccess(ctx, 'A local file of a package').roots.resolve(physicalKey, 'The entry\'s file', 'read');
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ToolError(code === 'ENOENT' ? 'not_found' : 'access_denied', `The entry's file ${path} ${code === 'ENOENT' ? 'no longer exists' : `cannot be read (${code})`}.`);
  }
  try {
    const { size } = await fh.stat();
    let why: string;
    if (size > INLINE_TEXT_BYTES) why = `it is ${formatBytes(size)} (${size} bytes), more than the ${INLINE_TEXT_BYTES} bytes a resource shows inline`;
    else {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      const decoded = decodeText(buf.subarray(0, bytesRead), { atStart: true, atEnd: true });
      if (decoded.kind === 'text') return [{ uri, mimeType: guessContentType(path, true), text: decoded.text }];
      why = `it is not text (${decoded.reason})`;
    }
    const data = { uri, ...describe, path, size, inline: false, why_not_inline: `Not shown inline: ${why}.`, note: 'The file is on this machine, at path.' };
    return [{ uri, mimeType: 'application/json', text: JSON.stringify(data, null, 2) }];
  } finally {
    await fh.close();
  }
}
