/**
 * `npm run bench:hostile`: what a caller without a token can cost a JWT-mode server over HTTP.
 *  1. server CPU per tokenless tools/list and initialize (read from /proc, so Linux only);
 *  2. server RSS while 200 tokenless connections hold slow bodies, and while 200 send 1 MiB bodies.
 * Run after `npm run build`.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { isolatedEnv } from '../test/helpers/mcp.js';
import { rawPost, startHttpServer, TEST_SECRET } from '../test/helpers/http.js';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

const HEAD = 'POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n';

async function cpuPer(pid: number, url: string, body: unknown, n: number): Promise<number> {
  for (let i = 0; i < 20; i++) await (await rawPost(url, body)).text();
  const before = cpuMs(pid);
  for (let i = 0; i < n; i++) await (await rawPost(url, body)).text();
  return (cpuMs(pid) - before) / n;
}

async function hold(port: number, count: number, open: (s: net.Socket) => void, ms: number, pid: number): Promise<{ before: number; peak: number }> {
  const before = rssMiB(pid);
  let peak = before;
  const sockets = Array.from({ length: count }, () => {
    const s = net.connect(port, '127.0.0.1', () => open(s));
    s.on('error', () => undefined);
    s.resume();
    return s;
  });
  const poll = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 25);
  await new Promise((r) => setTimeout(r, ms));
  clearInterval(poll);
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  return { before, peak };
}

async function main() {
  const server = await startHttpServer(isolatedEnv({ MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: TEST_SECRET, MCP_LOG_LEVEL: 'notice' }));
  const pid = server.child.pid ?? 0;
  try {
    console.log(`quilt-mcp: what a tokenless caller costs (node ${process.version})\n`);
    const n = 500;
    const list = await cpuPer(pid, server.url, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, n);
    const init = await cpuPer(
      pid,
      server.url,
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '0' } } },
      n,
    );
    console.log(`1. Server CPU per tokenless request (${n} each, sequential)`);
    console.log(`   tools/list (cached answer): ${list.toFixed(2)} ms`);
    console.log(`   initialize:                 ${init.toFixed(2)} ms\n`);

    const slow = await hold(server.port, 200, (s) => s.write(`${HEAD}content-length: 60000\r\n\r\n{"jsonrpc":"2.0","pad":"${'x'.repeat(30_000)}`), 3_000, pid);
    const large = await hold(
      server.port,
      200,
      (s) => {
        s.write(`${HEAD}content-length: ${1024 * 1024}\r\n\r\n`);
        s.write('x'.repeat(1024 * 1024));
      },
      3_000,
      pid,
    );
    console.log('2. Server RSS while 200 tokenless connections hold bodies (3 s)');
    console.log(`   slow 60 KB bodies (half sent): ${slow.before.toFixed(1)} -> peak ${slow.peak.toFixed(1)} MiB (+${(slow.peak - slow.before).toFixed(1)})`);
    console.log(`   1 MiB bodies sent at once:     ${large.before.toFixed(1)} -> peak ${large.peak.toFixed(1)} MiB (+${(large.peak - large.before).toFixed(1)})`);
  } finally {
    await server.stop();
  }
}

await main();
