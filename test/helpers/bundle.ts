/**
 * The shipped (esbuild) server, built into a temp dir per test file so parallel test files never
 * race on one output folder, and a way to tell which sources a run loaded: a trace of the bundle's
 * chunk files (test/helpers/trace-imports.mjs) expanded through esbuild's metafile into the inputs
 * (node_modules paths included) each chunk holds.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Metafile } from 'esbuild';
import { bundle, type BundleResult } from '../../scripts/bundle.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface BuiltBundle extends BundleResult {
  outDir: string;
  /** Trace lines (module URLs, one a line) with each bundle chunk replaced by the inputs it holds. */
  expandTrace(trace: string): string;
}

export async function buildBundle(opts: { mcpb?: boolean } = {}): Promise<BuiltBundle> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bundle-'));
  const result = await bundle(outDir, opts);
  const meta = JSON.parse(readFileSync(result.metafile, 'utf8')) as Metafile;
  // Keyed by the path inside the server folder (chunks/x-HASH.mjs), so a copy of the folder (an
  // unpacked .mcpb, an installed package) maps too. Metafile paths are relative to the repo.
  const inputsOf = new Map<string, string[]>(
    Object.entries(meta.outputs).map(([out, o]) => [
      path.relative(result.serverDir, path.resolve(ROOT, out)).split(path.sep).join('/'),
      Object.keys(o.inputs),
    ]),
  );
  return {
    ...result,
    outDir,
    expandTrace: (trace) =>
      trace
        .split('\n')
        .flatMap((url) => {
          const m = /\/server\/((?:chunks\/)?[^/]+\.mjs)$/.exec(url.startsWith('file:') ? new URL(url).pathname : '');
          return (m && inputsOf.get(m[1]!)) || [url];
        })
        .join('\n'),
  };
}
