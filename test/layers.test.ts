/**
 * The house's rules, from the imports of src/ (static, dynamic and type-only alike):
 *  - the root of src/ holds the spine only (index, server, context, config);
 *  - each folder imports only folders below it in LAYERS (and the spine's config and context);
 *    folders on one rung (tools and resources; transports and cli) are siblings that never import
 *    each other; core/ imports nothing of the project but core/;
 *  - server.ts is imported only by transports (and index); index by nobody;
 *  - no module imports itself through others (no circles, type-only ones included).
 * A layer that reaches up fails here with the import that does it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Module (path relative to src/, without .ts) -> the project modules it imports. */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sources(SRC)) {
    const from = path.relative(SRC, file).replace(/\.ts$/, '');
    const text = readFileSync(file, 'utf8');
    const targets = new Set<string>();
    for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)) {
      targets.add(path.relative(SRC, path.resolve(path.dirname(file), m[1]!)).replace(/\.js$/, ''));
    }
    graph.set(from, targets);
  }
  return graph;
}

const layerOf = (mod: string) => (mod.includes('/') ? mod.split('/')[0]! : mod);

/** Bottom to top; a folder may import the rungs below its own. */
const LAYERS: readonly (readonly string[])[] = [['core'], ['aws'], ['catalog'], ['local'], ['auth'], ['packages'], ['search'], ['tools', 'resources'], ['transports', 'cli']];
const rung = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));
const SPINE = ['config', 'context', 'index', 'server'];

/** Why this import breaks the layering, or undefined when it does not. */
function breach(from: string, to: string): string | undefined {
  const a = layerOf(from);
  const b = layerOf(to);
  if (a === b) return undefined;
  if (a === 'core') return 'core/ imports nothing of the project';
  if (b === 'index') return 'nothing imports the entry';
  if (b === 'server') return a === 'transports' || a === 'index' ? undefined : 'only transports use server.ts';
  if (SPINE.includes(a) || b === 'config' || b === 'context') return undefined;
  const ra = rung.get(a);
  const rb = rung.get(b);
  if (ra === undefined || rb === undefined) return `${ra === undefined ? a : b} is not in LAYERS`;
  if (rb === ra) return 'siblings do not import each other';
  return rb > ra ? 'reaches up' : undefined;
}

describe('the layers of src/', () => {
  const graph = importGraph();
  const edges = [...graph].flatMap(([from, tos]) => [...tos].map((to) => ({ from, to })));

  it('every import goes down the layers', () => {
    expect(edges.flatMap(({ from, to }) => {
      const why = breach(from, to);
      return why ? [`${from} -> ${to}: ${why}`] : [];
    })).toEqual([]);
  });

  it('tells a breach when it sees one', () => {
    expect(breach('packages/build', 'tools/define')).toBe('reaches up');
    expect(breach('resources/auth', 'tools/auth-status')).toBe('siblings do not import each other');
    expect(breach('core/log', 'config')).toBe('core/ imports nothing of the project');
    expect(breach('aws/list', 'packages/pyjson')).toBe('reaches up');
    expect(breach('search/s3', 'server')).toBe('only transports use server.ts');
    expect(breach('tools/object-read', 'aws/object-range')).toBeUndefined();
  });

  it('has no import circles', () => {
    // Tarjan's strongly connected components; any with more than one module is a circle.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const circles: string[][] = [];
    const visit = (v: string) => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      on.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1) circles.push(scc.sort());
      }
    };
    for (const v of graph.keys()) if (!idx.has(v)) visit(v);
    expect(circles).toEqual([]);
  });

  it('keeps only the spine at the root of src/', () => {
    expect([...graph.keys()].filter((m) => !m.includes('/')).sort()).toEqual(['config', 'context', 'index', 'server']);
  });
});
