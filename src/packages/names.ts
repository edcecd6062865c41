/** Package names and revision references, validated as quilt3 validates them. */
import { ToolError } from '../core/errors.js';

// quilt3: `^[\w-]+/[\w-]+$`, where Python's Unicode \w is letters, numbers and "_".
export const PACKAGE_NAME = /^[\p{L}\p{N}_-]+\/[\p{L}\p{N}_-]+$/u;
export const TOP_HASH = /^[0-9a-f]{64}$/;
/** A unique prefix of a top hash, as quilt3 accepts it (at least 6 hex digits). */
export const SHORT_HASH = /^[0-9a-f]{6,63}$/;

/** Names meet callers' patterns (a workflow's handle_pattern), so their length is bounded. */
export const MAX_PACKAGE_NAME = 256;

export function parsePackageName(name: string): string {
  const n = name.trim();
  if (n.length > MAX_PACKAGE_NAME) {
    throw new ToolError('invalid_input', `The package name "${n.slice(0, 60)}…" is ${n.length} characters long; at most ${MAX_PACKAGE_NAME} are allowed.`);
  }
  if (!PACKAGE_NAME.test(n)) {
    throw new ToolError(
      'invalid_input',
      `"${name}" is not a package name.`,
      'Package names have two parts of letters, digits, "_" or "-", like "team/dataset".',
    );
  }
  return n;
}

export function parseTopHash(hash: string): string {
  const h = hash.trim().toLowerCase();
  if (!TOP_HASH.test(h)) throw new ToolError('invalid_input', `"${hash}" is not a package top hash (64 hex characters).`);
  return h;
}
