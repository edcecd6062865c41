/**
 * `npm run bench:ship`: what the shipped artifacts cost a user, measured.
 *  1. sizes: the npm tarball (packed and unpacked), the installed package, the .mcpb;
 *  2. first launch from the tarball with an empty npm cache (`npm exec --cache <empty> --package
 *     <tgz> -- quilt-mcp`, driven to `initialize`), offline;
 *  3. spawn to `initialize` answered: the bundle vs dist/ (tsc output with node_modules), median
 *     and p95 of BENCH_RUNS (default 20) spawns each, interleaved.
 * With --compare-npx also 2. for a tarball of dist/ with today's runtime dependencies (HEAD's
 * package.json), which npm must fetch from the registry: needs the network, takes a while.
 * Run after `npm run build && npm run bundle` (the npm script does both).
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isolatedEnv, SERVER_ENTRY as DIST_ENTRY } from '../test/helpers/mcp.js';
import { MCPB_NAME, SERVER_ENTRY } from './bundle.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env.BENCH_RUNS ?? 20);
const BUNDLE_ENTRY = path.join(ROOT, 'bundle', SERVER_ENTRY);
const INIT = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '0' } } })}\n`;

function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { median: at(0.5), p95: at(0.95) };
}
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const kb = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(0)} kB`);

/** Apparent size and file count of a tree. */
function treeSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const t = treeSize(p);
      bytes += t.bytes;
      files += t.files;
    } else if (e.isFile()) {
      bytes += statSync(p).size;
      files++;
    }
  }
  return { bytes, files };
}

/** Spawn to the initialize response, on raw stdio. */
function toInitialize(command: string, args: string[], env: Record<string, string>, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<number> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`no initialize answer in ${timeoutMs} ms: ${err.slice(-2000)}`));
    }, timeoutMs);
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"id":1')) {
        const t = performance.now() - started;
        clearTimeout(timer);
        child.stdin.end();
        child.once('exit', () => resolve(t));
      }
    });
    child.on('error', reject);
    child.stdin.write(INIT);
  });
}

async function pack(cwd: string): Promise<{ file: string; size: number; unpackedSize: number; entryCount: number }> {
  const dest = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd, maxBuffer: 16 * 1024 * 1024 });
  const [info] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number }>;
  return { ...info!, file: path.join(dest, info!.filename) };
}

/** First launch through npm exec with an empty cache: npm installs the tarball (and any dependencies). */
async function npxFirstLaunch(tgz: string, offline: boolean): Promise<number> {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-cache-'));
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-cwd-'));
  // The machine's network trust and proxy settings reach npm (a registry behind a TLS-inspecting
  // proxy needs NODE_EXTRA_CA_CERTS); everything else stays isolated.
  const network = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => /^(NODE_EXTRA_CA_CERTS|SSL_CERT_(FILE|DIR)|(HTTPS?|NO)_PROXY)$/i.test(k)),
  );
  const env = isolatedEnv({ MCP_LOG_LEVEL: 'error', npm_config_update_notifier: 'false', ...network });
  // --loglevel=http: when the registry is slow, the timeout's message shows the last fetches.
  const args = ['exec', '--cache', cache, '--yes', '--loglevel=http', ...(offline ? ['--offline'] : []), '--package', tgz, '--', 'quilt-mcp'];
  // An empty cwd, so npm cannot find this repo's own bin; this node first on PATH for the #! line.
  const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`;
  return toInitialize('npm', args, { ...env, PATH }, { cwd, timeoutMs: 180_000 });
}

/** A tarball as today's (HEAD's) package.json would make it: dist/ plus runtime dependencies. */
async function headStyleTarball(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-head-'));
  const { stdout } = await run('git', ['show', 'HEAD:package.json'], { cwd: ROOT });
  const pkg = JSON.parse(stdout) as Record<string, unknown>;
  delete pkg.scripts;
  delete pkg.devDependencies;
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  for (const f of ['README.md', 'manifest.json']) cpSync(path.join(ROOT, f), path.join(dir, f));
  return (await pack(dir)).file;
}

async function main() {
  console.log(`quilt-mcp shipped artifacts (node ${process.version}, ${os.cpus().length} cores)\n`);

  const tgz = await pack(ROOT);
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-install-'));
  const cache = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-cache-'));
  await run('npm', ['install', '--prefix', prefix, '--cache', cache, '--offline', '--no-audit', '--no-fund', tgz.file]);
  const installed = treeSize(path.join(prefix, 'node_modules'));
  const mcpb = statSync(path.join(ROOT, 'bundle', MCPB_NAME)).size;
  const bundleDir = treeSize(path.dirname(BUNDLE_ENTRY));
  console.log('1. Sizes');
  console.log(`   npm tarball:        ${kb(tgz.size)} (${tgz.entryCount} files, ${kb(tgz.unpackedSize)} unpacked)`);
  console.log(`   installed:          ${kb(installed.bytes)} in ${installed.files} files (node_modules of an empty folder)`);
  console.log(`   bundled server:     ${kb(bundleDir.bytes)} in ${bundleDir.files} files`);
  console.log(`   MCP bundle (.mcpb): ${kb(mcpb)}\n`);

  const first = await npxFirstLaunch(tgz.file, true);
  console.log('2. First launch from the tarball, empty npm cache, offline (npm exec ... -- quilt-mcp to initialize)');
  console.log(`   bundle tarball:     ${ms(first)}`);
  if (process.argv.includes('--compare-npx')) {
    const head = await headStyleTarball();
    const headFirst = await npxFirstLaunch(head, false);
    console.log(`   dist + dependencies (HEAD's package.json, fetched from the registry): ${ms(headFirst)}`);
  }
  console.log('');

  const env = isolatedEnv({ MCP_LOG_LEVEL: 'error' });
  const b: number[] = [];
  const d: number[] = [];
  // One warm-up each (file cache), then interleaved so drift hits both alike.
  await toInitialize(process.execPath, [BUNDLE_ENTRY], env);
  await toInitialize(process.execPath, [DIST_ENTRY], env);
  for (let i = 0; i < runs; i++) {
    b.push(await toInitialize(process.execPath, [BUNDLE_ENTRY], env));
    d.push(await toInitialize(process.execPath, [DIST_ENTRY], env));
  }
  const bs = stats(b);
  const ds = stats(d);
  console.log(`3. Spawn to initialize answered (${runs} spawns each, interleaved)`);
  console.log(`   bundle (bundle/${SERVER_ENTRY}): median ${ms(bs.median)}, p95 ${ms(bs.p95)}`);
  console.log(`   dist/index.js + node_modules:     median ${ms(ds.median)}, p95 ${ms(ds.p95)}`);
  console.log(`   -> bundle/dist ${(bs.median / ds.median).toFixed(2)}x`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
