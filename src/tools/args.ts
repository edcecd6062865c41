/** Argument schemas shared by several tools, so each is described the same way everywhere. */
import { z } from 'zod';

// No minLength: the parsers refuse an empty name or URI with a message that says what to give.
export const bucketArg = z.string().describe('Bucket name');

export const objectUriArg = z.string().describe('s3://bucket/key[?versionId=...]');

export const cursorArg = z.string().optional().describe('next_cursor of the previous call');

export const isoDate = (d: Date | undefined): string | undefined => (d ? d.toISOString() : undefined);

/**
 * The text's line for the next page. The value is the structured answer's next_* field, so the
 * sentence needs no copy of its own there.
 */
export const moreLine = (what: string, arg: string, value: string | undefined, extra = '') =>
  value === undefined ? undefined : `More ${what}: call again with ${arg}="${value}"${extra}.`;

/** The lines of a text answer, the notes (every one also a field of the structured answer) last. */
export function lines(...parts: Array<string | readonly (string | undefined)[] | undefined>): string {
  return parts.flatMap((p) => (p === undefined ? [] : typeof p === 'string' ? [p] : p.filter((x): x is string => x !== undefined))).join('\n');
}
