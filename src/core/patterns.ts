/**
 * Patterns that callers supply (include/exclude globs, a workflow's handle_pattern, the patterns of a
 * workflow's JSON Schemas). They run on the event loop every tenant shares, so none may backtrack:
 * globs run on a bit-parallel automaton written here, regular expressions on re2js (RE2: no
 * backreferences or lookarounds, matching linear in the text). Linear is not free, so the work is
 * also bounded: glob sets by a step budget, schema checks by a time budget (`withRegexBudget`).
 */
import type { Ajv, Options as AjvOptions } from 'ajv';
import { ToolError } from './errors.js';
import { lazy } from './lazy.js';

export const MAX_GLOB_LENGTH = 1000;
export const MAX_GLOBS = 100;
export const MAX_REGEX_LENGTH = 1000;
/** RE2 program size (about one instruction per character, `{n}` copies its operand n times). */
export const MAX_REGEX_PROGRAM = 2000;
/** Longest text a caller's regex is matched against: RE2 is linear, but hostile patterns cost ~20 µs a character. */
export const MAX_REGEX_SUBJECT = 100_000;
/** Steps (characters x 32-state words) one glob set may take: 0.5-1 s at the measured 5-10 ns a step. */
export const GLOB_STEP_BUDGET = 100_000_000;

export interface Matcher {
  test(s: string): boolean;
}

const quoted = (s: string) => `"${s.length > 200 ? `${s.slice(0, 200)}…` : s}"`;

// ---------------------------------------------------------------------------------------------
// Globs: `*` = [^/]*, `**` = .*, `**/` = (?:.*/)?, `?` = [^/], anything else literal; whole key,
// by code point. This is the language of the former regex translation, `.` included: it matched
// no line terminator, so neither does `**` here (a key with a newline is rare, but it must keep
// matching the same globs).

const LINE_TERMINATORS = new Set([0x0a, 0x0d, 0x2028, 0x2029]);
const SLASH = 0x2f;

type Token = { t: 'lit'; cp: number } | { t: 'one' } | { t: 'star' } | { t: 'any' } | { t: 'dirs' };

function tokenize(glob: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < glob.length; ) {
    const cp = glob.codePointAt(i)!;
    if (glob[i] === '*' && glob[i + 1] === '*') {
      const dirs = glob[i + 2] === '/';
      out.push({ t: dirs ? 'dirs' : 'any' });
      i += dirs ? 3 : 2;
    } else {
      out.push(glob[i] === '*' ? { t: 'star' } : glob[i] === '?' ? { t: 'one' } : { t: 'lit', cp });
      i += cp > 0xffff ? 2 : 1;
    }
    // Equal languages, fewer states: (.*/)?(.*/)? = (.*/)?, and .* absorbs (.*/)? on either side.
    const [a, b] = out.slice(-2);
    if (a && b && (a.t === 'any' || a.t === 'dirs') && (b.t === 'any' || b.t === 'dirs')) {
      out.splice(-2, 2, a.t === b.t ? a : { t: 'any' });
    } else if (a && b && a.t === 'star' && b.t === 'star') out.pop();
  }
  return out;
}

/** The automaton's tables, as bit masks over states (`words` 32-bit words each). */
interface GlobTables {
  words: number;
  final: number;
  /** Epsilon edges i -> i+1 and i -> i+2, and how many rounds make the closure. */
  eps1: Int32Array;
  eps2: Int32Array;
  rounds: number;
  start: Int32Array;
  /** Per kind of character: states entered by consuming one, and states that loop on it. */
  ascii: Kind[];
  other: Kind;
  lineEnd: Kind;
  literal: Map<number, Kind>;
}

interface Kind {
  enter: Int32Array;
  loop: Int32Array;
}

function buildGlob(glob: string): GlobTables {
  // A linear NFA: state 0 is the start; every consuming edge goes from a state to the next one.
  const enterClass: ('none' | 'one' | 'slash' | number)[] = ['none'];
  const loopClass: ('none' | 'star' | 'any')[] = ['none'];
  const eps1: number[] = [];
  const eps2: number[] = [];
  let cur = 0;
  const add = (enter: (typeof enterClass)[number], loop: (typeof loopClass)[number] = 'none') => {
    enterClass.push(enter);
    loopClass.push(loop);
    return ++cur;
  };
  for (const tok of tokenize(glob)) {
    if (tok.t === 'lit') add(tok.cp);
    else if (tok.t === 'one') add('one');
    else if (tok.t === 'star' || tok.t === 'any') {
      // A loop on the current state concatenates; a state that loops already gets a successor
      // ([^/]* and .* differ on '/' and on line ends, so two loops cannot merge).
      if (loopClass[cur] === 'none') loopClass[cur] = tok.t;
      else if (loopClass[cur] !== tok.t) {
        eps1.push(cur);
        add('none', tok.t);
      }
    } else {
      // (?:.*/)?: skip it, or loop on .* in a state of its own and leave on '/'.
      eps1.push(cur);
      eps2.push(cur);
      add('none', 'any');
      add('slash');
    }
  }
  const states = cur + 1;
  const words = Math.ceil(states / 32);
  const mask = (pred: (i: number) => boolean) => {
    const m = new Int32Array(words);
    for (let i = 0; i < states; i++) if (pred(i)) m[i >>> 5]! |= 1 << (i & 31);
    return m;
  };
  const e1 = new Set(eps1);
  const e2 = new Set(eps2);
  // The longest chain of epsilon edges bounds the closure rounds (tokenize keeps it at 2 or less).
  const chain = new Array<number>(states).fill(0);
  for (let i = states - 1; i >= 0; i--) {
    chain[i] = Math.max(e1.has(i) ? 1 + (chain[i + 1] ?? 0) : 0, e2.has(i) ? 1 + (chain[i + 2] ?? 0) : 0);
  }
  const kind = (enter: (c: (typeof enterClass)[number]) => boolean, loop: (c: (typeof loopClass)[number]) => boolean) => ({
    enter: mask((i) => enter(enterClass[i]!)),
    loop: mask((i) => loop(loopClass[i]!)),
  });
  const literal = new Map<number, Kind>();
  for (const c of enterClass) {
    if (typeof c === 'number' && c !== SLASH && !literal.has(c)) {
      const lineEnd = LINE_TERMINATORS.has(c);
      literal.set(c, kind((e) => e === 'one' || e === c, (l) => l === 'star' || (l === 'any' && !lineEnd)));
    }
  }
  const slash = kind((e) => e === 'slash' || e === SLASH, (l) => l === 'any');
  const other = kind((e) => e === 'one', (l) => l !== 'none');
  const lineEnd = kind((e) => e === 'one', (l) => l === 'star');
  const ascii = Array.from({ length: 128 }, (_, c) => (c === SLASH ? slash : (literal.get(c) ?? (LINE_TERMINATORS.has(c) ? lineEnd : other))));
  const t: GlobTables = {
    words,
    final: cur,
    eps1: mask((i) => e1.has(i)),
    eps2: mask((i) => e2.has(i)),
    rounds: Math.max(0, ...chain),
    start: mask((i) => i === 0),
    ascii,
    other,
    lineEnd,
    literal,
  };
  close(t, t.start);
  return t;
}

/** Adds the states reachable by epsilon edges (bits move up, so words are updated from the top). */
function close(t: GlobTables, d: Int32Array): void {
  for (let r = 0; r < t.rounds; r++) {
    for (let w = t.words - 1; w >= 0; w--) {
      let add = ((d[w]! & t.eps1[w]!) << 1) | ((d[w]! & t.eps2[w]!) << 2);
      if (w > 0) add |= ((d[w - 1]! & t.eps1[w - 1]!) >>> 31) | ((d[w - 1]! & t.eps2[w - 1]!) >>> 30);
      d[w]! |= add;
    }
  }
}

const kindOf = (t: GlobTables, cp: number): Kind =>
  cp < 128 ? t.ascii[cp]! : (t.literal.get(cp) ?? (LINE_TERMINATORS.has(cp) ? t.lineEnd : t.other));

/** Runs one glob over a whole key; adds the steps taken (characters x words) to `work`. */
function run(t: GlobTables, key: string, cur: Int32Array, next: Int32Array, work: { steps: number }): boolean {
  let chars = 0;
  try {
    if (t.words === 1) {
      // Most globs have under 32 states: one integer is the whole state set.
      let d = t.start[0]!;
      const e1 = t.eps1[0]!;
      const e2 = t.eps2[0]!;
      for (let i = 0; i < key.length; ) {
        const cp = key.charCodeAt(i) < 0xd800 ? key.charCodeAt(i) : key.codePointAt(i)!;
        i += cp > 0xffff ? 2 : 1;
        chars++;
        const k = kindOf(t, cp);
        d = ((d << 1) & k.enter[0]!) | (d & k.loop[0]!);
        if (d === 0) return false;
        for (let r = 0; r < t.rounds; r++) d |= ((d & e1) << 1) | ((d & e2) << 2);
      }
      return (d & (1 << t.final)) !== 0;
    }
    cur.set(t.start);
    for (let i = 0; i < key.length; ) {
      const cp = key.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      chars++;
      const k = kindOf(t, cp);
      let alive = 0;
      for (let w = 0; w < t.words; w++) {
        const carry = w > 0 ? cur[w - 1]! >>> 31 : 0;
        alive |= next[w] = (((cur[w]! << 1) | carry) & k.enter[w]!) | (cur[w]! & k.loop[w]!);
      }
      if (alive === 0) return false;
      if (t.rounds) close(t, next);
      cur.set(next);
    }
    return (cur[t.final >>> 5]! & (1 << (t.final & 31))) !== 0;
  } finally {
    work.steps += chars * t.words;
  }
}

function checkGlob(glob: string, what: string): void {
  if (glob.length > MAX_GLOB_LENGTH) {
    throw new ToolError('invalid_input', `The ${what} glob ${quoted(glob)} is longer than ${MAX_GLOB_LENGTH} characters.`, 'Use a shorter glob.');
  }
}

/** One glob as a matcher of whole keys; time linear in the key (times the glob's length / 32). */
export function compileGlob(glob: string, what = 'include/exclude'): Matcher {
  checkGlob(glob, what);
  const t = buildGlob(glob);
  const cur = new Int32Array(t.words);
  const next = new Int32Array(t.words);
  const work = { steps: 0 };
  return { test: (key) => run(t, key, cur, next, work) };
}

/**
 * A key matches the set when it matches any glob. The set stops (too_large) after GLOB_STEP_BUDGET
 * steps over all its keys: linear per key, a hundred long globs over a hundred thousand keys would
 * still hold the event loop for minutes.
 */
export function compileGlobs(globs: readonly string[], what: string): Matcher {
  if (globs.length > MAX_GLOBS) {
    throw new ToolError('invalid_input', `${globs.length} ${what} globs were given; at most ${MAX_GLOBS} are allowed.`);
  }
  for (const g of globs) checkGlob(g, what);
  const runs = globs.map((g) => {
    const t = buildGlob(g);
    return { t, cur: new Int32Array(t.words), next: new Int32Array(t.words) };
  });
  const work = { steps: 0 };
  return {
    test(key) {
      for (const { t, cur, next } of runs) {
        const hit = run(t, key, cur, next, work);
        if (work.steps > GLOB_STEP_BUDGET) {
          throw new ToolError(
            'too_large',
            `Matching the ${what} globs against the listed keys takes too long (over ${GLOB_STEP_BUDGET.toLocaleString('en-US')} steps).`,
            'Use fewer or shorter globs, or a narrower source_uri_prefix.',
          );
        }
        if (hit) return true;
      }
      return false;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Regular expressions on re2js. The syntax is RE2's, which Python's `re` (quilt3 evaluates
// handle_pattern and, through jsonschema, schema patterns with it) and ECMAScript mostly share;
// `\uXXXX` (both), `\u{...}` (ECMAScript) and `\Z` (Python) are rewritten to their RE2 spelling.

const loadRe2 = lazy(() => import('re2js'));
const loadAjv = lazy(() => import('ajv'));

type Re2Module = Awaited<ReturnType<typeof loadRe2>>;

function toRe2Syntax(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    if (p[i] !== '\\') {
      out += p[i];
      continue;
    }
    const next = p[i + 1] ?? '';
    const hex4 = /^[0-9a-fA-F]{4}/.exec(p.slice(i + 2, i + 6));
    const braced = next === 'u' && p[i + 2] === '{' ? /^\{([0-9a-fA-F]{1,6})\}/.exec(p.slice(i + 2, i + 10)) : null;
    if (next === 'u' && braced) {
      out += `\\x{${braced[1]}}`;
      i += 1 + braced[0].length;
    } else if (next === 'u' && hex4) {
      out += `\\x{${hex4[0]}}`;
      i += 5;
    } else if (next === 'Z') {
      out += '\\z';
      i += 1;
    } else {
      out += `\\${next}`;
      i += 1;
    }
  }
  return out;
}

/** What RE2 refused, in words a schema author can act on. */
function refusal(err: unknown, pattern: string): { code: 'unsupported' | 'invalid_input'; reason: string } {
  const e = err as { getDescription?: () => string; getPattern?: () => string | null; message?: string };
  const desc = e.getDescription?.() ?? e.message ?? String(err);
  const frag = e.getPattern?.() ?? '';
  const linear = 'patterns run on a linear-time (RE2) engine';
  const unsupported = (what: string, are = false) => ({ code: 'unsupported' as const, reason: `${what} ${are ? 'are' : 'is'} not supported: ${linear}` });
  if (/^\(\?[=!]/.test(frag)) return unsupported('lookahead');
  if (/^\(\?<[=!]/.test(frag)) return unsupported('lookbehind');
  if (/^\\[1-9k]/.test(frag) || (frag === '(?P' && pattern.includes('(?P='))) return unsupported('backreferences', true);
  if (/^\(\?>/.test(frag)) return unsupported('atomic groups', true);
  if (/^\(\?\(/.test(frag)) return unsupported('conditionals', true);
  if (desc.includes('nested repetition')) return unsupported(`possessive or nested quantifiers (\`${frag}\`)`, true);
  if (desc.includes('repeat count')) return { code: 'invalid_input', reason: `repeat counts above 1000 are not allowed (\`${frag}\`): ${linear}` };
  return { code: 'invalid_input', reason: `${desc}${frag ? ` at \`${frag.slice(0, 40)}\`` : ''} (${linear})` };
}

const RE2_HINT = 'Rewrite it without lookarounds, backreferences or possessive quantifiers (RE2 syntax: https://github.com/google/re2/wiki/Syntax).';

function compileWith(re2: Re2Module, pattern: string, what: string): Matcher {
  if (pattern.length > MAX_REGEX_LENGTH) {
    throw new ToolError('invalid_input', `${what} ${quoted(pattern)} is longer than ${MAX_REGEX_LENGTH} characters.`, 'Use a shorter pattern.');
  }
  let re: InstanceType<Re2Module['RE2JS']>;
  try {
    re = re2.RE2JS.compile(toRe2Syntax(pattern));
  } catch (err) {
    const { code, reason } = refusal(err, pattern);
    throw new ToolError(code, `${what} ${quoted(pattern)} cannot be used: ${reason}.`, RE2_HINT);
  }
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM) {
    throw new ToolError(
      'invalid_input',
      `${what} ${quoted(pattern)} cannot be used: it is too complex (an RE2 program of ${size} instructions; at most ${MAX_REGEX_PROGRAM}).`,
      'Use smaller repeat counts, e.g. maxLength instead of .{0,5000} in a JSON Schema.',
    );
  }
  return {
    test(s) {
      if (s.length > MAX_REGEX_SUBJECT) {
        throw new ToolError('too_large', `${what} ${quoted(pattern)} cannot be matched against a text of ${s.length} characters (at most ${MAX_REGEX_SUBJECT}).`);
      }
      const hit = re.test(s);
      if (budgetEnds !== Infinity && performance.now() > budgetEnds) {
        throw new ToolError('too_large', `Matching ${what} ${quoted(pattern)} took too long (the patterns of one check may take ${budgetMs} ms).`, 'Simplify the pattern, or check less data at once.');
      }
      return hit;
    },
  };
}

/**
 * A caller's regular expression on RE2, with search semantics (RegExp.prototype.test). `what`
 * names it in errors, e.g. 'Workflow "strict" handle_pattern'. Refuses (invalid_input or
 * unsupported) what RE2 cannot run, and patterns over MAX_REGEX_LENGTH or MAX_REGEX_PROGRAM.
 */
export async function compileTenantRegex(pattern: string, what: string): Promise<Matcher> {
  return compileWith(await loadRe2(), pattern, what);
}

let budgetEnds = Infinity;
let budgetMs = 0;

/**
 * Runs synchronous `fn` (e.g. a schema validation) with at most `ms` of regex matching after it
 * starts; the tenant regexes it calls stop with too_large past that. Synchronous, so no other
 * caller's work can run in between and a module-level deadline is safe.
 */
export function withRegexBudget<T>(ms: number, fn: () => T): T {
  const outer = [budgetEnds, budgetMs] as const;
  budgetEnds = Math.min(outer[0], performance.now() + ms);
  budgetMs = ms;
  try {
    return fn();
  } finally {
    [budgetEnds, budgetMs] = outer;
  }
}

/**
 * A fresh Ajv whose `pattern`, `patternProperties` and `propertyNames` patterns run on re2js
 * (Ajv's `code.regExp` engine hook). A pattern RE2 cannot run makes `compile` throw a ToolError
 * naming it. Ajv never generates standalone code here, the only use of the engine's `code`.
 */
export async function newTenantAjv(options: AjvOptions = {}): Promise<Ajv> {
  const [re2, { Ajv }] = await Promise.all([loadRe2(), loadAjv()]);
  const engine = (pattern: string, _flags: string) => {
    const m = compileWith(re2, pattern, 'The JSON Schema pattern');
    // Ajv dedupes compiled patterns by toString(): it must differ per pattern, as RegExp's does.
    return { test: (s: string) => m.test(s), toString: () => `/${pattern}/re2` };
  };
  engine.code = 'undefined /* quilt-mcp re2js engine: no standalone code */';
  return new Ajv({ ...options, code: { ...options.code, regExp: engine } });
}
