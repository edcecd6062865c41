/**
 * The shipped server: `src/` and every runtime dependency bundled by esbuild into one folder of ES
 * modules, so the npm package, the container image and the MCP bundle (.mcpb) need no node_modules.
 *
 *   tsx scripts/bundle.ts [--out <dir>] [--mcpb]
 *
 * writes <dir>/server/index.mjs (the entry), <dir>/server/chunks/*.mjs and the bundled packages'
 * licenses in <dir>/server/THIRD_PARTY_LICENSES.txt, plus <dir>/metafile.json (which chunk holds
 * which inputs; not shipped, tests read it); with --mcpb also <dir>/quilt-mcp.mcpb,
 * packed from a staging folder that holds only the server, manifest.json, README.md, LICENSE and the
 * manifest's icon. <dir> defaults to bundle/ (tests pass a temp dir so parallel runs never collide).
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile, type Plugin } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MCPB_NAME = 'quilt-mcp.mcpb';
/** The entry inside the server folder; manifest.json and package.json's bin name it. */
export const SERVER_ENTRY = 'server/index.mjs';
/** The bundled packages' license texts, which their licenses (MIT, ISC, BSD, Apache-2.0) require. */
export const NOTICES = 'server/THIRD_PARTY_LICENSES.txt';

/**
 * src/version.ts reads ../package.json next to dist/ at run time; the .mcpb and the image ship no
 * package.json, so the bundle gets the version as a constant instead.
 */
function inlineVersion(version: string): Plugin {
  return {
    name: 'inline-version',
    setup(b) {
      const file = path.join(ROOT, 'src', 'version.ts');
      b.onLoad({ filter: /[\\/]version\.ts$/ }, (args) =>
        args.path === file ? { contents: `export const VERSION: string = ${JSON.stringify(version)};\n`, loader: 'ts' } : undefined,
      );
    },
  };
}

/**
 * CommonJS packages that src/ loads with import(). With splitting, esbuild gives such a chunk only a
 * `default` export, where Node also gives the named ones (`const { parse } = await import('yaml')`).
 * Each is imported through a small ES module that re-exports exactly the names Node would give.
 * The build fails when another CommonJS package is dynamically imported, so none slips through.
 */
const CJS_DYNAMIC = ['yaml', 'ajv', 'prom-client'];

function cjsNamedExports(names: string[]): Plugin {
  return {
    name: 'cjs-named-exports',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) =>
        args.kind === 'dynamic-import' && names.includes(args.path) ? { path: args.path, namespace: 'cjs-named-exports' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'cjs-named-exports' }, async (args) => {
        // Node's own answer (its CommonJS export detection), from the same node_modules.
        const ns = (await import(args.path)) as Record<string, unknown>;
        const keys = Object.keys(ns).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
        return {
          contents: `const m = require(${JSON.stringify(args.path)});\nexport default m;\nexport const { ${keys.join(', ')} } = m;\n`,
          loader: 'js',
          resolveDir: ROOT,
        };
      });
    },
  };
}

/** Dynamic imports of CommonJS inputs that cjsNamedExports does not cover. */
function uncoveredCjsImports(meta: Metafile): string[] {
  return Object.entries(meta.inputs).flatMap(([file, input]) =>
    input.imports
      .filter((i) => i.kind === 'dynamic-import' && meta.inputs[i.path]?.format === 'cjs')
      .map((i) => `${file} imports ${i.original ?? i.path} (CommonJS): add it to CJS_DYNAMIC in scripts/bundle.ts`),
  );
}

/** The worker entries' outputs, without extension, relative to the server folder, with the module that starts each. */
const WORKERS = [
  { entry: 'chunks/workflow-worker-main', source: 'src/packages/workflow-worker-main.ts', starter: 'src/packages/workflow-worker.ts' },
  { entry: 'chunks/file-worker-main', source: 'src/local/file-worker-main.ts', starter: 'src/local/file-workers.ts' },
];

/**
 * workflow-worker.ts and file-workers.ts start their workers from `./<name>-main.mjs` beside their
 * own chunk, so the chunk holding each must sit in its worker entry's folder; fail the build rather
 * than ship a server whose workers cannot start.
 */
function checkWorkerPlacement(meta: Metafile): void {
  for (const { entry, starter } of WORKERS) {
    const holders = Object.entries(meta.outputs).filter(([, o]) => Object.keys(o.inputs).some((i) => i.endsWith(starter)));
    const workerDir = path.posix.dirname(entry);
    for (const [file] of holders) {
      if (path.posix.basename(path.posix.dirname(file)) !== workerDir) {
        throw new Error(`${starter} was bundled into ${file}, not beside ${entry}.mjs: its worker would not be found`);
      }
    }
    if (holders.length === 0) throw new Error(`${starter} is not in the bundle`);
  }
}

export interface BundleResult {
  serverDir: string;
  entry: string;
  metafile: string;
  mcpb?: string;
}

export async function bundle(outDir: string, opts: { mcpb?: boolean } = {}): Promise<BundleResult> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const serverDir = path.join(outDir, 'server');
  rmSync(serverDir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    // Each worker is an entry of its own, next to the chunks that start it (the starter finds it
    // beside itself); checkWorkerPlacement verifies that.
    entryPoints: { index: 'src/index.ts', ...Object.fromEntries(WORKERS.map((w) => [w.entry, w.source])) },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    // Every dynamic import() (AWS SDK, jose, yaml, ajv, the transports) stays its own chunk, loaded on
    // first use as with dist/: `initialize` loads the entry and the MCP SDK only.
    splitting: true,
    outdir: serverDir,
    // .mjs: ESM without a package.json saying "type": "module" (the .mcpb and the image have none).
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    // The ES builds of dual packages (the AWS SDK's dist-es) rather than their CommonJS ones.
    mainFields: ['module', 'main'],
    // CommonJS dependencies that require() node builtins (yaml: "process", "buffer") need a real
    // require in an ES module, else esbuild's shim throws "Dynamic require ... is not supported".
    banner: { js: "import { createRequire as __quiltCreateRequire } from 'node:module';\nconst require = __quiltCreateRequire(import.meta.url);" },
    // No source maps: see README "Development". Readable stack traces come from unmangled names.
    sourcemap: false,
    minifyWhitespace: true,
    minifySyntax: true,
    // The packages' whole license files go to THIRD_PARTY_LICENSES.txt instead of scattered comments.
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    plugins: [inlineVersion(pkg.version), cjsNamedExports(CJS_DYNAMIC)],
  });
  const uncovered = uncoveredCjsImports(result.metafile);
  if (uncovered.length) throw new Error(uncovered.join('\n'));
  checkWorkerPlacement(result.metafile);
  const metafile = path.join(outDir, 'metafile.json');
  writeFileSync(metafile, JSON.stringify(result.metafile));
  writeFileSync(path.join(outDir, NOTICES), thirdPartyNotices(result.metafile));
  const entry = path.join(outDir, SERVER_ENTRY);
  // The npm bin and `./index.mjs` both work (npm sets the mode on install too; a copy keeps it).
  chmodSync(entry, statSync(entry).mode | 0o755);
  const out: BundleResult = { serverDir, entry, metafile };
  if (opts.mcpb) out.mcpb = await packMcpb(outDir);
  return out;
}

/** The license files of every package with code in the bundle, one copy per distinct text. */
function thirdPartyNotices(meta: Metafile): string {
  const dirs = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]!);
  }
  const byText = new Map<string, string[]>();
  for (const dir of [...dirs].sort()) {
    const abs = path.join(ROOT, dir);
    const pkg = JSON.parse(readFileSync(path.join(abs, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
    const files = readdirSync(abs).filter((f) => /^(licen[cs]e|notice|copying)/i.test(f)).sort();
    const text = files.length
      ? files.map((f) => readFileSync(path.join(abs, f), 'utf8').trim()).join('\n\n')
      : `${pkg.license ?? 'UNKNOWN'} (the package ships no license file; for Apache-2.0 the text is in LICENSE)`;
    const list = byText.get(text) ?? [];
    list.push(`${pkg.name}@${pkg.version}`);
    byText.set(text, list);
  }
  const rule = '='.repeat(78);
  const sections = [...byText].map(([text, names]) => `${rule}\n${[...new Set(names)].join(', ')}\n${'-'.repeat(78)}\n${text}\n`);
  return `quilt-mcp's server bundle contains code from these packages, under these licenses.\n\n${sections.join('\n')}`;
}

/** The .mcpb from a staging folder: exactly the server, manifest.json, README.md, LICENSE, icon. */
async function packMcpb(outDir: string): Promise<string> {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'manifest.json'), 'utf8')) as { icon?: string; server: { entry_point: string } };
  if (manifest.server.entry_point !== SERVER_ENTRY) throw new Error(`manifest.json server.entry_point must be ${SERVER_ENTRY}`);
  const stage = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-mcpb-'));
  try {
    cpSync(path.join(outDir, 'server'), path.join(stage, 'server'), { recursive: true });
    for (const f of ['manifest.json', 'README.md', 'LICENSE', ...(manifest.icon ? [manifest.icon] : [])]) {
      mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
      cpSync(path.join(ROOT, f), path.join(stage, f));
    }
    const file = path.join(outDir, MCPB_NAME);
    rmSync(file, { force: true });
    const mcpb = path.join(ROOT, 'node_modules', '.bin', 'mcpb');
    await promisify(execFile)(mcpb, ['pack', stage, file], { maxBuffer: 16 * 1024 * 1024 });
    return file;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;
  const outDir = path.resolve(out ?? path.join(ROOT, 'bundle'));
  const r = await bundle(outDir, { mcpb: args.includes('--mcpb') });
  console.log(`bundled server: ${path.relative(process.cwd(), r.entry)}${r.mcpb ? `\nMCP bundle: ${path.relative(process.cwd(), r.mcpb)}` : ''}`);
}
