/** Python's string order (by code point) for JavaScript strings (UTF-16 units). */

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Compares the code points at the first differing UTF-16 index i of a and b. */
export function compareCodePointsAt(a: string, b: string, i: number): number {
  // If both share a high surrogate just before i and either continues it into a pair, the code
  // point starts one unit earlier (Python sees one character there, not two).
  const at = i > 0 && isHigh(a.charCodeAt(i - 1)) && (isLow(a.charCodeAt(i)) || isLow(b.charCodeAt(i))) ? i - 1 : i;
  // codePointAt gives a pair's code point, or the lone surrogate itself, as Python has it.
  const pa = a.codePointAt(at) ?? -1;
  const pb = b.codePointAt(at) ?? -1;
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** Python's string order: by code point, not by UTF-16 unit (they differ above U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca < 0xd800 && cb < 0xd800) return ca < cb ? -1 : 1;
    return compareCodePointsAt(a, b, i);
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
