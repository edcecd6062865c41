/**
 * Cursors handed to clients are sealed: `<payload>.<tag>`, where the payload is base64url JSON and
 * the tag an HMAC-SHA256 over the tool that issued it, the caller it was issued to and the payload.
 * A forged or altered cursor, or one replayed by another caller or to another tool, is refused
 * before anything in it is used, so a cursor can never widen what the caller's token grants.
 *
 * The key comes from MCP_CURSOR_SECRET, else MCP_JWT_SECRET (replicas that share a JWT secret
 * accept each other's cursors), else a random per-process key (a cursor then only works on the
 * process that issued it, which the error says).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ToolError } from './errors.js';

/** Which tool issued a cursor: a cursor of one is never accepted by another. */
export type CursorKind = 'search' | 'package_browse' | 'package_list' | 'package_revisions' | 'athena_results' | 'resources_list';

/** Largest cursor accepted (the search cursor carries the catalog's own cursors). */
const MAX_CURSOR_CHARS = 8192;
const TAG_BYTES = 16;

export class CursorKey {
  private readonly key: Buffer;
  /** True when the key is shared with other replicas (configured), false when random per process. */
  readonly shared: boolean;

  constructor(secret: string | undefined) {
    this.shared = secret !== undefined;
    const ikm = secret !== undefined ? Buffer.from(secret, 'utf8') : randomBytes(32);
    this.key = Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), 'quilt-mcp cursor v1', 32));
  }

  tag(kind: CursorKind, binding: string, payload: string): Buffer {
    return createHmac('sha256', this.key).update(`${kind}\n${binding}\n${payload}`).digest().subarray(0, TAG_BYTES);
  }
}

/** Seals and opens cursors for one caller (`binding` names the caller and what it may reach). */
export interface Cursors {
  seal(kind: CursorKind, value: Record<string, unknown>): string;
  /** The cursor's content, or a ToolError when it is not one this server issued to this caller for this tool. */
  open(kind: CursorKind, cursor: string): Record<string, unknown>;
}

export function cursorsFor(key: CursorKey, binding: string): Cursors {
  const refuse = (why: string) =>
    new ToolError(
      'invalid_input',
      `The cursor was refused: ${why}`,
      key.shared
        ? 'Pass next_cursor from the previous result unchanged, with the same other arguments, or start again without a cursor.'
        : 'Pass next_cursor from the previous result unchanged, or start again without a cursor. (Cursors are checked with a key of this server process; behind a load balancer, set the same MCP_CURSOR_SECRET on every replica.)',
    );
  return {
    seal(kind, value) {
      const payload = Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      return `${payload}.${key.tag(kind, binding, payload).toString('base64url')}`;
    },
    open(kind, cursor) {
      if (cursor.length > MAX_CURSOR_CHARS) throw refuse('it is too long to be one this server issued.');
      const dot = cursor.lastIndexOf('.');
      const payload = dot < 0 ? '' : cursor.slice(0, dot);
      const tag = Buffer.from(dot < 0 ? '' : cursor.slice(dot + 1), 'base64url');
      const expected = key.tag(kind, binding, payload);
      if (tag.length !== expected.length || !timingSafeEqual(tag, expected)) {
        throw refuse('it was not issued by this server to this caller for this tool, or it was altered.');
      }
      try {
        const value: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
        if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
      } catch {
        // a valid tag over something that is not JSON would be a bug of ours; refuse it the same way
      }
      throw refuse('its content is not readable.');
    },
  };
}
