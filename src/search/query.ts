/**
 * The query syntax the S3 scan understands, a subset of the catalog's: words (every one must
 * appear, case-insensitively), "quoted phrases" (the words next to each other, whatever separates
 * them in a key: "cell imaging" matches cell_imaging/ and cell-imaging.csv), AND, OR, NOT (also
 * &&, ||, !, +word, -word) and parentheses; a leading or trailing * is dropped (words match inside
 * keys anyway). What it cannot do (field:value filters, wildcards inside a word, ~ and ^
 * modifiers, ranges) is refused with a message rather than matched as text.
 */
import { ToolError } from '../core/errors.js';

export type QueryNode =
  | { op: 'and' | 'or'; of: QueryNode[] }
  | { op: 'not'; of: QueryNode }
  | { op: 'text'; text: string }
  | { op: 'all' };

type Token = { t: 'word' | 'phrase'; v: string } | { t: 'and' | 'or' | 'not' | '(' | ')' };

/** Lower case, every run of non-letters and non-digits one space: how keys and phrases are compared. */
export const normalize = (s: string) => ` ${s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim()} `;

const refuse = (what: string) =>
  new ToolError(
    'invalid_input',
    `The S3 scan (search without a catalog) cannot ${what}.`,
    'It understands words, "quoted phrases", AND, OR, NOT, -word and parentheses, matched in object keys and package names; a Quilt catalog (QUILT_CATALOG_URL) searches fields, metadata and contents.',
  );

function tokenize(query: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:"([^"]*)("?)|(\(|\))|(&&|\|\||!(?=\S)|[+-](?=\S))|([^\s()"]+))/gy;
  for (let m = re.exec(query); m && m[0]; m = re.exec(query)) {
    const [, phrase, closed, paren, symbol, word] = m;
    if (phrase !== undefined) {
      if (!closed) throw refuse('read an unclosed quote');
      out.push({ t: 'phrase', v: phrase });
    } else if (paren) out.push({ t: paren as '(' | ')' });
    else if (symbol) out.push({ t: symbol === '||' ? 'or' : symbol === '+' ? 'and' : symbol === '&&' ? 'and' : 'not' });
    else if (word === 'AND' || word === 'OR' || word === 'NOT') out.push({ t: word.toLowerCase() as 'and' | 'or' | 'not' });
    else if (word !== undefined) out.push({ t: 'word', v: word });
  }
  return out;
}

function leaf(token: { t: 'word' | 'phrase'; v: string }): QueryNode {
  if (token.t === 'phrase') {
    const text = normalize(token.v).trim();
    return text ? { op: 'text', text } : { op: 'all' };
  }
  const w = token.v;
  if (/^[\w.]+:/.test(w) && !/^[a-z]+:\/\//i.test(w)) throw refuse(`filter by field (${w.slice(0, 60)}): it sees no fields`);
  if (/[~^]/.test(w) || /^[[{]|[\]}]$/.test(w)) throw refuse(`apply ${w.slice(0, 60)} (fuzzy, boost or range syntax)`);
  const bare = w.replace(/^\*+|\*+$/g, '');
  if (/[*?]/.test(bare)) throw refuse(`match a wildcard inside a word (${w.slice(0, 60)})`);
  const text = bare.toLowerCase();
  return text ? { op: 'text', text } : { op: 'all' };
}

/** Parses a query into a tree: OR binds looser than AND (implicit between terms), NOT tightest. */
export function parseS3Query(query: string): QueryNode {
  const tokens = tokenize(query);
  let i = 0;
  const peek = () => tokens[i];
  function primary(): QueryNode {
    const tok = tokens[i++];
    if (!tok) throw refuse('read a query that ends with an operator');
    if (tok.t === 'not') return { op: 'not', of: primary() };
    if (tok.t === '(') {
      const inner = or();
      if (tokens[i++]?.t !== ')') throw refuse('read unbalanced parentheses');
      return inner;
    }
    if (tok.t === 'word' || tok.t === 'phrase') return leaf(tok);
    throw refuse(`read "${tok.t === ')' ? ')' : tok.t.toUpperCase()}" there`);
  }
  function and(): QueryNode {
    const of = [primary()];
    for (let t = peek(); t && t.t !== 'or' && t.t !== ')'; t = peek()) {
      if (t.t === 'and') i++;
      of.push(primary());
    }
    return of.length === 1 ? of[0]! : { op: 'and', of };
  }
  function or(): QueryNode {
    const of = [and()];
    while (peek()?.t === 'or') {
      i++;
      of.push(and());
    }
    return of.length === 1 ? of[0]! : { op: 'or', of };
  }
  if (tokens.length === 0) return { op: 'all' };
  const tree = or();
  if (i < tokens.length) throw refuse('read unbalanced parentheses');
  return tree;
}

/**
 * Whether `text` (a key or package name) matches: words anywhere in it, phrases as whole words
 * next to each other. `normalized` is normalize(text), computed once per text by the caller.
 */
export function matches(node: QueryNode, lower: string, normalized: string): boolean {
  switch (node.op) {
    case 'all':
      return true;
    case 'text':
      return node.text.includes(' ') ? normalized.includes(` ${node.text} `) : lower.includes(node.text);
    case 'not':
      return !matches(node.of, lower, normalized);
    case 'and':
      return node.of.every((n) => matches(n, lower, normalized));
    case 'or':
      return node.of.some((n) => matches(n, lower, normalized));
  }
}

/** A matcher for the S3 scan; throws a ToolError for syntax it cannot honour. */
export function s3Matcher(query: string): (text: string) => boolean {
  const tree = parseS3Query(query);
  return (text) => matches(tree, text.toLowerCase(), normalize(text));
}
