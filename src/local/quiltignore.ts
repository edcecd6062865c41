/**
 * `.quiltignore`, as quilt3's `quiltignore_filter` reads it (util.py): each non-empty line is a
 * shell-style wildcard (Python's fnmatch: `*` matches anything, `/` included; `?` one character;
 * `[seq]`, `[!seq]`), tried as "star, slash, line" against every file's absolute path and every folder's
 * absolute path with and without a trailing "/" (a matching folder drops everything below it).
 * Lines are not trimmed and `#` is no comment, exactly as quilt3 does; case is folded and `/` and
 * `\` are one separator on Windows (os.path.normcase).
 *
 * Matching is a two-pointer wildcard match (linear in the path for each star backtrack), not a
 * regular expression, so no pattern can make it slow.
 */
type Token = { star: true } | { star: false; test: (c: string) => boolean };

function classTest(body: string): (c: string) => boolean {
  let negate = false;
  let chars = Array.from(body);
  if (chars[0] === '!') {
    negate = true;
    chars = chars.slice(1);
  }
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i < chars.length; i++) {
    const a = chars[i]!;
    if (chars[i + 1] === '-' && i + 2 < chars.length) {
      const lo = a.codePointAt(0)!;
      const hi = chars[i + 2]!.codePointAt(0)!;
      // Python drops a reversed range ("z-a"), which then matches nothing.
      if (lo <= hi) ranges.push([lo, hi]);
      i += 2;
    } else ranges.push([a.codePointAt(0)!, a.codePointAt(0)!]);
  }
  return (c) => {
    const cp = c.codePointAt(0)!;
    const hit = ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
    return negate ? !hit : hit;
  };
}

/** fnmatch.translate's reading of a pattern, as tokens that each match one character or (star) any run. */
function tokenize(pattern: string): Token[] {
  const p = Array.from(pattern);
  const out: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (out[out.length - 1]?.star !== true) out.push({ star: true });
    } else if (c === '?') out.push({ star: false, test: () => true });
    else if (c === '[') {
      // The closing "]": a "!" and then a "]" right after "[" are part of the set.
      let j = i + 1;
      if (p[j] === '!') j++;
      if (p[j] === ']') j++;
      while (j < p.length && p[j] !== ']') j++;
      if (j >= p.length) out.push({ star: false, test: (x) => x === '[' });
      else {
        const body = p.slice(i + 1, j).join('');
        out.push({ star: false, test: classTest(body) });
        i = j;
      }
    } else out.push({ star: false, test: (x) => x === c });
  }
  return out;
}

function matchTokens(tokens: readonly Token[], s: readonly string[]): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    const t = tokens[p];
    if (t && !t.star && t.test(s[i]!)) {
      p++;
      i++;
    } else if (t?.star) {
      starP = p++;
      starI = i;
    } else if (starP >= 0) {
      p = starP + 1;
      i = ++starI;
    } else return false;
  }
  while (tokens[p]?.star) p++;
  return p === tokens.length;
}

export class QuiltIgnore {
  private readonly rules: Token[][];

  /** `text`: the .quiltignore file's content; `win32`: Windows' case folding and separators. */
  constructor(
    text: string,
    private readonly win32 = process.platform === 'win32',
  ) {
    this.rules = text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => tokenize(this.norm(`*/${line}`)));
  }

  private norm(s: string): string {
    return this.win32 ? s.toLowerCase().replace(/\//g, '\\') : s;
  }

  private matches(name: string): boolean {
    const chars = Array.from(this.norm(name));
    return this.rules.some((r) => matchTokens(r, chars));
  }

  /** A file, by its absolute path (native separators). */
  ignoresFile(absPath: string): boolean {
    return this.matches(absPath);
  }

  /** A folder below the packaged one, by its absolute path (POSIX form, as quilt3's as_posix()). */
  ignoresFolder(absPath: string): boolean {
    const posix = this.win32 ? absPath.replace(/\\/g, '/') : absPath;
    return this.matches(`${posix}/`) || this.matches(posix);
  }
}

/** Python's fnmatch.fnmatch on POSIX (case-sensitive), for tests against Python's own answers. */
export function fnmatch(name: string, pattern: string): boolean {
  return matchTokens(tokenize(pattern), Array.from(name));
}
