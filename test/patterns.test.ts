/**
 * Callers' patterns (src/core/patterns.ts) and workflow schemas (src/packages/workflow.ts): globs mean
 * what they meant before, hostile globs and regexes finish at once, RE2 refusals name the pattern,
 * and schemas compile in isolation (own Ajv each, bounded cache).
 */
import { describe, expect, it } from 'vitest';
import { ToolError } from '../src/core/errors.js';
import { parsePackageName } from '../src/packages/names.js';
import { compileSchema, parseSchemaText, schemaCacheStats } from '../src/packages/workflow-checks.js';
import { compileGlob, compileGlobs, compileTenantRegex, MAX_REGEX_SUBJECT, newTenantAjv, withRegexBudget } from '../src/core/patterns.js';

/** The former translation (backtracking RegExp), kept as the reference for what a glob means. */
function oldGlobToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'u');
}

const timed = <T>(fn: () => T): { value: T; ms: number } => {
  const t = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t };
};

async function refusedWith(p: Promise<unknown> | (() => unknown)): Promise<ToolError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(ToolError);
    return err as ToolError;
  }
  throw new Error('expected a refusal');
}

describe('globs', () => {
  const table: [string, string, boolean][] = [
    ['**/*.csv', 'a.csv', true],
    ['**/*.csv', 'x/y/z.csv', true],
    ['**/*.csv', 'x/y/z.csv.bak', false],
    ['**/*.csv', 'x/.csv', true],
    ['data/**', 'data/a/b.txt', true],
    ['data/**', 'data/', true],
    ['data/**', 'data', false],
    ['data/**', 'other/data/a', false],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['a?c', 'ac', false],
    ['a?c', 'a😀c', true],
    ['*.txt', 'y.txt', true],
    ['*.txt', 'x/y.txt', false],
    ['*.txt', '.txt', true],
    ['**.txt', 'x/y.txt', true],
    ['*/*.txt', 'x/y.txt', true],
    ['file.csv', 'fileXcsv', false],
    ['file.csv', 'file.csv', true],
    ['(a)+b', '(a)+b', true],
    ['(a)+b', 'aab', false],
    ['[ab]{2}$^|\\', '[ab]{2}$^|\\', true],
    ['[ab]', 'a', false],
    ['**/', 'a/b/', true],
    ['**/', '', true],
    ['**/x', 'x', true],
    ['**/x', 'a/b/x', true],
    ['**/x', 'ax', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/xb', false],
    ['***', 'a/b', true],
    ['*', 'a\nb', true],
    ['**', 'a\nb', false], // the old `.` matched no line end; kept
    ['?', '\n', true],
    ['big.bin', 'big.bin', true],
    ['**/*.log', 'nested/skip.log', true],
    ['*a*a*a*a*a*a*a*b', 'a'.repeat(60), false],
    ['*a*a*a*a*a*a*a*b', `${'a'.repeat(60)}b`, true],
  ];

  it('match exactly what they matched before', () => {
    for (const [glob, key, expected] of table) {
      expect(compileGlob(glob).test(key), `${glob} vs ${JSON.stringify(key)}`).toBe(expected);
      // The reference backtracks for seconds on the last rows (that is the bug); skip it there.
      if (key.length < 40) expect(oldGlobToRegExp(glob).test(key), `reference: ${glob} vs ${JSON.stringify(key)}`).toBe(expected);
    }
  });

  it('agree with the former translation on random globs and keys', () => {
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const pick = (a: string[], n: number) => Array.from({ length: n }, () => a[rnd(a.length)]).join('');
    const globChars = ['*', '*', '*', '?', '/', 'a', 'b', '.', '\n', '😀'];
    const keyChars = ['/', 'a', 'b', '.', '\n', '😀', 'c'];
    // Keys built from the glob (so that many match), then sometimes changed in one place.
    const instance = (g: string) =>
      g.replace(/\*\*\/|\*\*|\*|\?/g, (t) => (t === '?' ? pick(['a', '\n', '😀'], 1) : t === '*' ? pick(['a', 'b', '\n'], rnd(3)) : t === '**' ? pick(['a', '/'], rnd(4)) : rnd(2) ? '' : `${pick(['a', '/'], rnd(3))}/`));
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      // Long globs too: more than 32 states take several words.
      const glob = pick(globChars, i % 10 === 0 ? 40 + rnd(80) : rnd(9));
      let key = i % 2 ? instance(glob) : pick(keyChars, rnd(9));
      if (rnd(4) === 0 && key.length) key = key.slice(0, rnd(key.length)) + pick(keyChars, 1) + key.slice(rnd(key.length) + 1);
      const want = oldGlobToRegExp(glob).test(key);
      if (want) matched++;
      expect(compileGlob(glob).test(key), `${JSON.stringify(glob)} vs ${JSON.stringify(key)}`).toBe(want);
    }
    expect(matched).toBeGreaterThan(2000);
  });

  it('finish at once however many stars', () => {
    const aaa = 'a'.repeat(1000);
    const cases: [string, boolean][] = [
      ['*a*a*a*a*a*a*a*b', false],
      [`${'*a'.repeat(20)}*b`, false],
      [`${'**a'.repeat(20)}b`, false],
      [`*a${'?'.repeat(998)}`, true], // 1,000 states: 32 words
    ];
    for (const [glob, expected] of cases) {
      const m = compileGlob(glob);
      const { value, ms } = timed(() => m.test(aaa));
      expect(value, glob).toBe(expected);
      expect(ms, glob).toBeLessThan(1_000); // backtracking takes minutes; 10x headroom on busy cores
    }
  });

  it('bound their length and number, and the work of one set', async () => {
    expect((await refusedWith(() => compileGlob('*'.repeat(1001)))).message).toContain('longer than 1000 characters');
    expect((await refusedWith(() => compileGlobs(Array.from({ length: 101 }, () => '*'), 'include'))).message).toContain('at most 100');
    // 32-word automata over 1,024-character keys: the set gives up after its step budget.
    const set = compileGlobs([`*a${'?'.repeat(998)}`], 'include');
    const key = 'ab'.repeat(512);
    const t = performance.now();
    const err = await refusedWith(() => {
      for (let i = 0; i < 100_000; i++) set.test(key);
    });
    expect(err.code).toBe('too_large');
    expect(err.message).toContain('include globs');
    expect(performance.now() - t).toBeLessThan(10_000); // ~0.7 s on a quiet core: 10x headroom under load
  });
});

describe('tenant regexes', () => {
  it('run hostile patterns in linear time', async () => {
    const text = `${'a'.repeat(10_000)}!`;
    for (const p of ['(a+)+$', '(a|a)*b', '(.*a){20}']) {
      const m = await compileTenantRegex(p, 'The pattern');
      const { value, ms } = timed(() => m.test(text));
      expect(value, p).toBe(p === '(.*a){20}');
      expect(ms, p).toBeLessThan(1_000); // backtracking takes minutes; 10x headroom on busy cores
    }
  });

  it('search like RegExp.prototype.test, and read Python named groups', async () => {
    const team = await compileTenantRegex('(?P<team>[a-z]+)/.+', 'handle_pattern');
    expect(team.test('lab/run1')).toBe(true);
    expect(team.test('/run1')).toBe(false);
    const lab = await compileTenantRegex('^lab/', 'handle_pattern');
    expect([lab.test('lab/x'), lab.test('xlab/x')]).toEqual([true, false]);
    expect((await compileTenantRegex('run', 'handle_pattern')).test('lab/run1')).toBe(true);
    expect((await compileTenantRegex('caf\\u00e9$', 'handle_pattern')).test('team/café')).toBe(true);
    expect((await compileTenantRegex('x\\Z', 'handle_pattern')).test('a/x')).toBe(true);
  });

  it('refuse what RE2 cannot run, naming the pattern and the reason', async () => {
    const cases: [string, string][] = [
      ['^(?=lab/)[a-z/]+$', 'lookahead is not supported: patterns run on a linear-time (RE2) engine'],
      ['^lab/(?!tmp)', 'lookahead is not supported'],
      ['(?<=a)b', 'lookbehind is not supported'],
      ['(a)\\1', 'backreferences are not supported'],
      ['(?P<n>a)(?P=n)', 'backreferences are not supported'],
      ['a++', 'possessive or nested quantifiers'],
      ['[a-', 'missing closing ]'],
    ];
    for (const [p, reason] of cases) {
      const err = await refusedWith(compileTenantRegex(p, 'Workflow "w" handle_pattern'));
      expect(['invalid_input', 'unsupported']).toContain(err.code);
      expect(err.message).toContain(`Workflow "w" handle_pattern "${p}"`);
      expect(err.message).toContain(reason);
    }
    const long = await refusedWith(compileTenantRegex(`(a)\\1${'x'.repeat(2000)}`, 'P'));
    expect(long.message).toContain('longer than 1000 characters');
    expect(long.message.length).toBeLessThan(400);
    expect((await refusedWith(compileTenantRegex('.{1000}.{1000}.{1000}', 'P'))).message).toContain('too complex');
  });

  it('bound the text they are matched against', async () => {
    const m = await compileTenantRegex('b', 'P');
    expect(m.test('a'.repeat(MAX_REGEX_SUBJECT))).toBe(false);
    expect((await refusedWith(() => m.test('a'.repeat(MAX_REGEX_SUBJECT + 1)))).code).toBe('too_large');
  });
});

describe('workflow schemas', () => {
  const schema = (text: string) => parseSchemaText(text, 'Schema "s"');

  it('compile in isolation: two schemas with the same $id, again and again', async () => {
    const a = schema(JSON.stringify({ $id: 'https://example.com/meta', type: 'object', required: ['a'] }));
    const b = schema(JSON.stringify({ $id: 'https://example.com/meta', type: 'object', required: ['b'] }));
    for (let round = 0; round < 3; round++) {
      const va = await compileSchema(a);
      const vb = await compileSchema(b);
      expect([va({ a: 1 }), va({ b: 1 }), vb({ a: 1 }), vb({ b: 1 })]).toEqual([true, false, false, true]);
    }
  });

  it('keep at most 64 compiled schemas', async () => {
    for (let i = 0; i < 1000; i++) await compileSchema({ $id: `https://example.com/s${i}`, type: 'object', properties: { n: { const: i } } });
    expect(schemaCacheStats().size).toBe(64);
    const again = await compileSchema({ type: 'string', pattern: '^x' });
    expect(await compileSchema({ type: 'string', pattern: '^x' })).toBe(again);
  }, 60_000);

  it('run patterns on RE2, each its own', async () => {
    const v = await compileSchema({ type: 'object', properties: { s: { type: 'string', pattern: '(a+)+$' }, t: { type: 'string', pattern: '^t' } }, patternProperties: { '^n_': { type: 'number' } }, propertyNames: { pattern: '^[a-z_]+$' } });
    const { value, ms } = timed(() => v({ s: `${'a'.repeat(50_000)}!` }));
    expect(value).toBe(false);
    expect(ms).toBeLessThan(1_000); // backtracking takes minutes; 10x headroom on busy cores
    expect(v({ s: 'xa', t: 'tx' })).toBe(true);
    expect(v({ s: 'xa', t: 'xa' })).toBe(false); // a second pattern is not taken for the first
    expect(v({ n_1: 'one' })).toBe(false);
    expect(v({ Upper: 1 })).toBe(false);
  });

  it('refuse a pattern RE2 cannot run, naming it', async () => {
    const err = await refusedWith(compileSchema({ type: 'object', patternProperties: { '^(?!tmp)': { type: 'string' } } }));
    expect(err.code).toBe('unsupported');
    expect(err.message).toContain('"^(?!tmp)"');
    expect(err.message).toContain('lookahead is not supported');
  });

  it('refuse $async, $ref and oversized text', async () => {
    expect((await refusedWith(() => schema('{"$async": true, "type": "object"}'))).message).toContain('"$async"');
    expect((await refusedWith(() => schema('{"properties": {"a": {"$async": true}}}'))).message).toContain('"$async"');
    expect((await refusedWith(() => schema('{"$ref": "#/definitions/x"}'))).message).toContain('$ref is not supported');
    expect((await refusedWith(() => schema(`{"description": "${'x'.repeat(256 * 1024)}"}`))).message).toContain('larger than 256 KiB');
    expect(schema('{"$async": false, "type": "object"}')).toEqual({ $async: false, type: 'object' });
  });

  it('stop matching past the time budget of one check', async () => {
    // Linear, but on random a/b text the DFA never settles: about 3 µs a character, 6 s for all.
    const ajv = await newTenantAjv({ strict: false });
    const v = ajv.compile({ type: 'array', items: { type: 'string', pattern: 'a[ab]{20}$' } });
    let x = 123456789;
    const bit = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 7) & 1);
    // Each matches (at its very end), so every one is scanned whole.
    const data = Array.from({ length: 2000 }, () => `${Array.from({ length: 1000 }, () => (bit() ? 'a' : 'b')).join('')}a${'b'.repeat(20)}`);
    expect(v(data.slice(0, 2))).toBe(true);
    const t = performance.now();
    const err = await refusedWith(() => withRegexBudget(200, () => v(data)));
    expect(err.code).toBe('too_large');
    expect(err.message).toContain('"a[ab]{20}$"');
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

describe('package names', () => {
  it('are at most 256 characters', async () => {
    expect(parsePackageName(`a/${'b'.repeat(254)}`)).toHaveLength(256);
    expect((await refusedWith(() => parsePackageName(`a/${'b'.repeat(255)}`))).message).toContain('at most 256');
  });
});
