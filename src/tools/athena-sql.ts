/**
 * Pure helpers of athena_query_execute: which statements it runs (read-only ones), how Athena's
 * string values become JSON by column type, and the Markdown table of a result.
 */

export const READ_KEYWORDS = ['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'EXPLAIN', 'VALUES'] as const;

export type StatementCheck = { ok: true; statement: string; keyword: string } | { ok: false; reason: string; keyword?: string };

/** Index after whitespace and comments (`-- line`, `/* block *\/`) starting at `i`. */
function skipTrivia(sql: string, i: number): number {
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i] ?? '')) i++;
    if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else return i;
  }
}

/** Index of the first `;` outside strings, quoted identifiers and comments, or -1. */
function statementEnd(sql: string): number {
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      // Quotes are escaped by doubling them, which this loop handles as two adjacent literals.
      const close = sql.indexOf(c, i + 1);
      if (close < 0) return -1;
      i = close + 1;
    } else if (sql.startsWith('--', i) || sql.startsWith('/*', i)) {
      i = skipTrivia(sql, i);
    } else if (c === ';') {
      return i;
    } else i++;
  }
  return -1;
}

function keywordAt(sql: string, i: number): { word: string; end: number } {
  const m = /^[A-Za-z_]+/.exec(sql.slice(i, i + 64));
  return { word: (m?.[0] ?? '').toUpperCase(), end: i + (m?.[0].length ?? 0) };
}

/** Skips a balanced `( ... )` at `i` (EXPLAIN's options); returns the index after it. */
function skipParens(sql: string, i: number): number {
  let depth = 0;
  for (; i < sql.length; i++) {
    if (sql[i] === '(') depth++;
    else if (sql[i] === ')' && --depth === 0) return i + 1;
  }
  return i;
}

function classify(sql: string, from: number, depth: number): { keyword: string; ok: boolean } {
  let i = skipTrivia(sql, from);
  // A query may start with parentheses: (SELECT ...) UNION (SELECT ...).
  while (sql[i] === '(') i = skipTrivia(sql, i + 1);
  const { word, end } = keywordAt(sql, i);
  if (word === 'EXPLAIN' && depth === 0) {
    // EXPLAIN ANALYZE runs the statement it explains, so that statement must be a read too.
    let j = skipTrivia(sql, end);
    let k = keywordAt(sql, j);
    if (k.word === 'ANALYZE') {
      j = skipTrivia(sql, k.end);
      k = keywordAt(sql, j);
      if (k.word === 'VERBOSE') j = skipTrivia(sql, k.end);
    }
    if (sql[j] === '(') j = skipParens(sql, j);
    const inner = classify(sql, j, depth + 1);
    return { keyword: inner.ok ? 'EXPLAIN' : `EXPLAIN ${inner.keyword}`, ok: inner.ok };
  }
  return { keyword: word, ok: (READ_KEYWORDS as readonly string[]).includes(word) && word !== 'EXPLAIN' };
}

/**
 * Accepts one read statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES after leading comments)
 * and returns it without a trailing semicolon; anything else is refused before any AWS call.
 */
export function checkReadStatement(sql: string): StatementCheck {
  const end = statementEnd(sql);
  const statement = (end < 0 ? sql : sql.slice(0, end)).trim();
  if (skipTrivia(statement, 0) >= statement.length) return { ok: false, reason: 'The query is empty.' };
  if (end >= 0 && skipTrivia(sql, end + 1) < sql.length) {
    return { ok: false, reason: 'Only one statement can run at a time; this query has more than one (separated by ";").' };
  }
  const { keyword, ok } = classify(statement, 0, 0);
  if (!ok) {
    return {
      ok: false,
      keyword,
      reason:
        `athena_query_execute runs read-only statements (${READ_KEYWORDS.join(', ')}); this one starts with ` +
        `${keyword ? `"${keyword}"` : 'something else'}, so it was not sent to Athena.`,
    };
  }
  return { ok: true, statement, keyword };
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

const cell = (v: unknown): string => {
  const s = v === null ? 'null' : typeof v === 'string' ? v : JSON.stringify(v);
  const flat = s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
};

/** A compact Markdown table of the first `limit` rows. */
export function markdownTable(columns: readonly string[], rows: ReadonlyArray<Record<string, unknown>>, limit = 20): string {
  if (columns.length === 0) return '';
  const head = `| ${columns.map(cell).join(' | ')} |`;
  const sep = `|${columns.map(() => '---').join('|')}|`;
  const body = rows.slice(0, limit).map((r) => `| ${columns.map((c) => cell(r[c])).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}
