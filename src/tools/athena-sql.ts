/**
 * Pure helpers of athena_query_execute: which statements it runs (read-only ones), how Athena's
 * string values become JSON by column type, and the Markdown table of a result.
 */

import { nearestName } from './schema.js';

export const READ_KEYWORDS = ['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'EXPLAIN', 'VALUES'] as const;

/** `syntax`: the statement does not start with a statement keyword at all (a typo), rather than with a write. */
export type StatementCheck = { ok: true; statement: string; keyword: string } | { ok: false; reason: string; keyword?: string; syntax?: boolean };

/** Statements Trino and Athena know besides the read ones: a statement starting with one of these is a write or a command. */
const OTHER_STATEMENTS = [
  'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'CREATE', 'DROP', 'ALTER', 'UNLOAD', 'MSCK', 'GRANT', 'REVOKE', 'DENY', 'CALL', 'SET',
  'RESET', 'USE', 'PREPARE', 'EXECUTE', 'DEALLOCATE', 'DESCRIBE', 'COMMENT', 'TRUNCATE', 'REFRESH', 'START', 'COMMIT', 'ROLLBACK',
  'ANALYZE', 'OPTIMIZE', 'VACUUM', 'REPAIR', 'LOAD', 'TABLE', 'REPLACE', 'UPSERT', 'RENAME', 'KILL',
];
const STATEMENTS: ReadonlySet<string> = new Set([...READ_KEYWORDS, ...OTHER_STATEMENTS]);

/** The message for a statement whose first word is no statement keyword. */
function notAStatement(word: string): string {
  const near = word ? nearestName(word.slice(0, 16), READ_KEYWORDS) : undefined;
  const guess = near ? ` (did you mean ${near}?)` : '';
  return `Syntax error: ${word ? `"${word}"` : 'what it starts with'} is not a SQL statement${guess}; the query was not sent to Athena.`;
}

// Everything below is a single left-to-right scan (plus indexOf for quotes and comments), so the
// check stays linear in the length of the query whatever it contains; no backtracking regexes.

const isSpace = (sql: string, i: number) => {
  const c = sql.charCodeAt(i);
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && /\s/.test(sql[i] ?? ''));
};

/**
 * Index after whitespace and comments starting at `i`. Like Trino, a `--` comment ends at `\r`
 * or `\n` and a `/* *\/` comment does not nest (an unterminated one runs to the end).
 */
function skipTrivia(sql: string, i: number): number {
  for (;;) {
    while (i < sql.length && isSpace(sql, i)) i++;
    const c = sql.charCodeAt(i);
    if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      i += 2;
      for (let d = sql.charCodeAt(i); i < sql.length && d !== 10 && d !== 13; d = sql.charCodeAt(++i));
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else return i;
  }
}

/** Index after the quoted text opening at `i` (`'...'`, `"..."`, `` `...` ``; a doubled quote is an escaped one). */
function skipQuoted(sql: string, i: number): number {
  const q = sql[i] ?? '';
  let j = i + 1;
  for (;;) {
    const close = sql.indexOf(q, j);
    if (close < 0) return sql.length;
    if (sql[close + 1] !== q) return close + 1;
    j = close + 2;
  }
}

/** Index of the first `;` outside strings, quoted identifiers and comments, or -1. */
function statementEnd(sql: string): number {
  let i = 0;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (c === 39 /* ' */ || c === 34 /* " */ || c === 96 /* ` */) i = skipQuoted(sql, i);
    else if ((c === 45 || c === 47) && sql.charCodeAt(i + 1) === (c === 45 ? 45 : 42)) i = skipTrivia(sql, i);
    else if (c === 59 /* ; */) return i;
    else i++;
  }
  return -1;
}

/**
 * One token of `sql[start, end)`: a word (keyword, identifier or number: a run of ASCII letters,
 * digits and `_`), a quoted identifier, a string literal, one punctuation character, or the end.
 */
type Token = { kind: 'word' | 'quoted' | 'string' | 'punct' | 'end'; start: number; end: number };

const isWordChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

/** Reads the token at or after `from` into `out` (reused, so long scans allocate nothing) and returns it. */
function readToken(sql: string, from: number, out: Token): Token {
  const i = skipTrivia(sql, from);
  out.start = i;
  if (i >= sql.length) {
    out.kind = 'end';
    out.end = i;
    return out;
  }
  const c = sql.charCodeAt(i);
  if (c === 39 /* ' */ || c === 34 /* " */ || c === 96 /* ` */) {
    out.kind = c === 39 ? 'string' : 'quoted';
    out.end = skipQuoted(sql, i);
  } else if (isWordChar(c)) {
    let j = i + 1;
    while (j < sql.length && isWordChar(sql.charCodeAt(j))) j++;
    out.kind = 'word';
    out.end = j;
  } else {
    out.kind = 'punct';
    out.end = i + 1;
  }
  return out;
}

const nextToken = (sql: string, from: number): Token => readToken(sql, from, { kind: 'end', start: 0, end: 0 });

const isPunct = (sql: string, t: Token, p: string) => t.kind === 'punct' && sql[t.start] === p;

/** Whether the word token `t` ends with `upper` (an upper-case keyword), ignoring case; `whole`: is exactly it. */
function wordEndsWith(sql: string, t: Token, upper: string, whole: boolean): boolean {
  const len = t.end - t.start;
  if (t.kind !== 'word' || len < upper.length || (whole && len !== upper.length)) return false;
  for (let k = 1; k <= upper.length; k++) {
    const c = sql.charCodeAt(t.end - k);
    if ((c >= 97 && c <= 122 ? c - 32 : c) !== upper.charCodeAt(upper.length - k)) return false;
  }
  return true;
}

const isWord = (sql: string, t: Token, upper: string) => wordEndsWith(sql, t, upper, true);

/** The (upper-cased) word of a token, shortened for messages; '' when it is not a word. */
const wordOf = (sql: string, t: Token) => (t.kind === 'word' ? sql.slice(t.start, Math.min(t.end, t.start + 64)).toUpperCase() : '');

/** The token after the `)` matching the `(` token `open`, or undefined when it is never closed. */
function afterParens(sql: string, open: Token): Token | undefined {
  let depth = 1;
  for (let t = nextToken(sql, open.end); t.kind !== 'end'; t = readToken(sql, t.end, t)) {
    if (t.kind !== 'punct') continue;
    const c = sql.charCodeAt(t.start);
    if (c === 40 /* ( */) depth++;
    else if (c === 41 /* ) */ && --depth === 0) return nextToken(sql, t.end);
  }
  return undefined;
}

const TOP_LEVEL: ReadonlySet<string> = new Set(READ_KEYWORDS);
const EXPLAINED: ReadonlySet<string> = new Set(READ_KEYWORDS.filter((k) => k !== 'EXPLAIN'));
/** What may follow a WITH clause: a query (`TABLE t` is short for `SELECT * FROM t`). */
const AFTER_WITH: ReadonlySet<string> = new Set(['SELECT', 'VALUES', 'TABLE']);

type Verdict = { ok: true; keyword: string } | { ok: false; keyword: string; reason: string; syntax?: boolean };

const refusedStart = (keyword: string) =>
  `athena_query_execute runs read-only statements (${READ_KEYWORDS.join(', ')}); this one starts with ` +
  `${keyword ? `"${keyword}"` : 'something else'}, so it was not sent to Athena.`;

/**
 * Decides whether the statement is a read by what it actually runs: the statement a WITH clause
 * prefixes (after skipping the named subqueries) and the statement EXPLAIN explains (EXPLAIN ANALYZE
 * runs it). Iterative, so deeply nested input cannot exhaust the stack.
 */
function classify(sql: string): Verdict {
  let t = nextToken(sql, 0);
  let first: string | undefined;
  let explain = false;
  let afterWith = false;
  for (;;) {
    // A query may start with parentheses: (SELECT ...) UNION (SELECT ...).
    while (isPunct(sql, t, '(')) t = readToken(sql, t.end, t);
    const word = wordOf(sql, t);
    first ??= word;

    if (word === 'EXPLAIN' && !explain && !afterWith) {
      // EXPLAIN [ANALYZE [VERBOSE]] [(FORMAT ..., TYPE ...)] statement
      explain = true;
      t = nextToken(sql, t.end);
      if (isWord(sql, t, 'ANALYZE')) t = nextToken(sql, t.end);
      if (isWord(sql, t, 'VERBOSE')) t = nextToken(sql, t.end);
      if (isPunct(sql, t, '(')) {
        const option = nextToken(sql, t.end);
        // Options rather than a parenthesised query, which the loop skips into.
        if (isWord(sql, option, 'FORMAT') || isWord(sql, option, 'TYPE')) {
          t = afterParens(sql, t) ?? { kind: 'end', start: sql.length, end: sql.length };
        }
      }
      continue;
    }

    if (word === 'WITH') {
      let n = nextToken(sql, t.end);
      if (isWord(sql, n, 'RECURSIVE') || isWord(sql, n, 'FUNCTION')) {
        // Keywords unless they are themselves the name of the first subquery (`WITH recursive AS (...)`).
        const after = nextToken(sql, n.end);
        if (after.kind === 'quoted' || (after.kind === 'word' && !isWord(sql, after, 'AS'))) {
          if (isWord(sql, n, 'FUNCTION')) {
            return {
              ok: false,
              keyword: 'WITH FUNCTION',
              reason:
                'Inline function definitions (WITH FUNCTION ...) are refused: athena_query_execute only runs plain ' +
                'read-only queries, so it was not sent to Athena.',
            };
          }
          n = after;
        }
      }
      // name [(column, ...)] AS (query) [, ...]
      for (;;) {
        let ok = n.kind === 'word' || n.kind === 'quoted';
        if (ok) n = nextToken(sql, n.end);
        if (ok && isPunct(sql, n, '(')) {
          const after = afterParens(sql, n);
          ok = after !== undefined;
          if (after) n = after;
        }
        ok &&= isWord(sql, n, 'AS');
        if (ok) n = nextToken(sql, n.end);
        const after = ok && isPunct(sql, n, '(') ? afterParens(sql, n) : undefined;
        if (!after) {
          return {
            ok: false,
            keyword: 'WITH',
            reason:
              'athena_query_execute could not read this WITH clause (expected name AS (query) or name (columns) AS ' +
              '(query), separated by commas, then the query), so it could not check that the statement is a read ' +
              'and did not send it to Athena.',
          };
        }
        n = after;
        if (!isPunct(sql, n, ',')) break;
        n = nextToken(sql, n.end);
      }
      afterWith = true;
      t = n;
      continue;
    }

    const allowed = afterWith ? AFTER_WITH : explain ? EXPLAINED : TOP_LEVEL;
    if (allowed.has(word)) return { ok: true, keyword: first };
    const keyword = [explain ? 'EXPLAIN' : '', afterWith ? 'WITH ...' : '', word].filter(Boolean).join(' ');
    if (!afterWith && !STATEMENTS.has(word)) return { ok: false, keyword, reason: notAStatement(word), syntax: true };
    if (!afterWith) return { ok: false, keyword, reason: refusedStart(keyword) };
    return {
      ok: false,
      keyword,
      reason:
        'athena_query_execute runs read-only statements; a WITH clause must be followed by SELECT, VALUES, TABLE or ' +
        `a parenthesised query, and this one is followed by ${word ? `"${word}"` : 'something else'}, so it was not sent to Athena.`,
    };
  }
}

/**
 * Whether `t` names `upper` (ignoring case): as a word, or as a quoted identifier when `quoted`. A word
 * that starts with a digit only has to end with it, as Trino may read `1.5table` as `1.5` `table`.
 */
function isName(sql: string, t: Token, upper: string, quoted: boolean): boolean {
  if (t.kind === 'quoted') {
    if (!quoted || t.end - t.start > 2 * upper.length + 2) return false;
    const q = sql[t.start] ?? '';
    return sql.slice(t.start + 1, t.end - 1).split(q + q).join(q).toUpperCase() === upper;
  }
  const c = sql.charCodeAt(t.start);
  return wordEndsWith(sql, t, upper, !(c >= 48 && c <= 57));
}

/**
 * Refuses table functions (`TABLE(...)`) and `system.query` anywhere outside strings, quoted
 * identifiers and comments: they can pass SQL through to another engine, where no check applies.
 */
function passThroughCheck(sql: string): { reason: string; keyword: string } | undefined {
  // The current token and the two before it, in three reused objects.
  let before = nextToken(sql, sql.length);
  let prev = nextToken(sql, sql.length);
  for (let t = nextToken(sql, 0); t.kind !== 'end'; ) {
    if (isPunct(sql, t, '(') && isName(sql, prev, 'TABLE', false)) {
      return {
        keyword: 'TABLE',
        reason:
          'Table functions (TABLE(...)) are refused because they can pass SQL through to another engine, where ' +
          'athena_query_execute cannot check that it only reads; query the tables directly instead.',
      };
    }
    if (isName(sql, t, 'QUERY', true) && isPunct(sql, prev, '.') && isName(sql, before, 'SYSTEM', true)) {
      return {
        keyword: 'system.query',
        reason:
          'system.query is refused because it passes SQL through to another engine, where athena_query_execute ' +
          'cannot check that it only reads; query the tables directly instead.',
      };
    }
    const spare = before;
    before = prev;
    prev = t;
    t = readToken(sql, prev.end, spare);
  }
  return undefined;
}

/**
 * Accepts one read statement (SELECT, WITH ... SELECT, SHOW, DESCRIBE, EXPLAIN, VALUES after leading
 * comments) and returns it without a trailing semicolon; anything else is refused before any AWS call.
 * A guard against mistakes, not a sandbox: what a query can reach is up to the IAM policy in use.
 */
export function checkReadStatement(sql: string): StatementCheck {
  const end = statementEnd(sql);
  const statement = (end < 0 ? sql : sql.slice(0, end)).trim();
  if (skipTrivia(statement, 0) >= statement.length) return { ok: false, reason: 'The query is empty.' };
  if (end >= 0 && skipTrivia(sql, end + 1) < sql.length) {
    return { ok: false, reason: 'Only one statement can run at a time; this query has more than one (separated by ";").' };
  }
  const verdict = classify(statement);
  if (!verdict.ok) return { ok: false, keyword: verdict.keyword, reason: verdict.reason, ...(verdict.syntax ? { syntax: true } : {}) };
  const passThrough = passThroughCheck(statement);
  if (passThrough) return { ok: false, ...passThrough };
  return { ok: true, statement, keyword: verdict.keyword };
}

/** `decimal(10,2)` -> `decimal`. */
const baseType = (type: string) => type.toLowerCase().replace(/\(.*$/, '').trim();

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'integer', 'int']);
const FLOAT_TYPES = new Set(['double', 'float', 'real']);

/**
 * One value of a result row as JSON: numbers for integer, floating and decimal columns when the
 * number is exact in JSON (large bigints and long decimals stay strings), booleans for boolean,
 * null for SQL NULL, strings for everything else (dates, timestamps, arrays, maps, rows).
 */
export function convertValue(value: string | undefined, type: string): string | number | boolean | null {
  if (value === undefined) return null;
  const t = baseType(type);
  if (INTEGER_TYPES.has(t) || t === 'bigint') {
    if (!/^-?\d+$/.test(value)) return value;
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  if (FLOAT_TYPES.has(t)) {
    const n = Number(value);
    return Number.isFinite(n) && value.trim() !== '' ? n : value;
  }
  if (t === 'decimal') {
    if (!/^-?\d+(\.\d+)?$/.test(value)) return value;
    const digits = value.replace(/^-/, '').replace('.', '').replace(/^0+/, '');
    return digits.length <= 15 ? Number(value) : value;
  }
  if (t === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

/**
 * A value as a Markdown table cell, whole (the text carries the rows it returns): "|" and
 * backslashes escaped, line breaks written as a backslash and "n", so that a row stays one line.
 */
export function markdownCell(v: unknown): string {
  const s = v === null ? 'null' : typeof v === 'string' ? v : JSON.stringify(v);
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '\\n');
}
