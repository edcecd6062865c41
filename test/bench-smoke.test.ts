/**
 * The benchmarks still run: `npm run bench`, `npm run bench:load`, `npm run bench:latency` and
 * `npm run bench:local` in smoke mode (BENCH_SMOKE=1: a few iterations, a few tenants, seconds of
 * load, small data); and `npm run playground` prints an entry that works. This fails only when a
 * benchmark errors or the load test gets a wrong answer, never on a figure: timings on a shared CI
 * machine mean nothing.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Each smoke run takes 10-30 s on 2 cores; this only bounds a benchmark that hangs. */
const TIMEOUT_MS = 300_000;

function runBench(script: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', script)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SMOKE: '1', BENCH_ONLY: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('benchmarks in smoke mode', () => {
  it(
    'npm run bench runs every section',
    async () => {
      const { code, out } = await runBench('bench.ts');
      expect(code, out).toBe(0);
      for (const section of ['1. Cold start', '2. Tool call round trip over stdio', '3. JWT path', '4. tools/call over HTTP', '5. search_catalog']) {
        expect(out, out).toContain(section);
      }
    },
    TIMEOUT_MS,
  );

  it(
    'npm run bench:load runs one and two processes with no wrong answer',
    async () => {
      const { code, out } = await runBench('bench-load.ts');
      expect(code, out).toBe(0);
      expect(out).toContain('1. One process');
      expect(out).toContain('2. Two processes');
      expect(out).not.toMatch(/wrong answers [1-9]/);
    },
    TIMEOUT_MS,
  );

  it(
    'npm run bench:latency runs every tool through the latency proxy',
    async () => {
      const { code, out } = await runBench('bench-latency.ts');
      expect(code, out).toBe(0);
      for (const tool of ['package_create, 20 text entries', 'package_update', 'package_create_from_s3', 'package_browse', 'package_list', 'package_diff', 'resources/list']) {
        expect(out, out).toContain(`| ${tool}`);
      }
    },
    TIMEOUT_MS,
  );

  it(
    'npm run bench:local runs its three measures',
    async () => {
      const { code, out } = await runBench('bench-local.ts');
      expect(code, out).toBe(0);
      for (const part of ['1. Hashing a folder', '2. A folder of', '3. Install of']) expect(out, out).toContain(part);
    },
    TIMEOUT_MS,
  );

  it(
    'npm run playground prints a Claude Desktop entry and an Inspector command that work',
    async () => {
      const { code, out } = await runBench('playground.ts', { PLAYGROUND_SMOKE: '1' });
      expect(code, out).toBe(0);
      expect(out).toContain('"mcpServers"');
      expect(out).toContain('npx @modelcontextprotocol/inspector');
      for (const tool of ['package_list', 'bucket_object_text', 'package_push']) expect(out).toContain(`smoke ${tool}: ok`);
    },
    TIMEOUT_MS,
  );
});
