/**
 * Shared pieces of the benchmarks: percentiles, a keep-alive HTTP client (node:http, the lightest
 * client Node has, so the client's own cost is the same small constant for every server measured),
 * child servers, and a process's CPU time and RSS from /proc (Linux).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { listeningPort } from '../test/helpers/http.js';

/** BENCH_SMOKE=1: a few iterations of everything, to prove the benchmarks run (CI); no figure means anything. */
export const SMOKE = process.env.BENCH_SMOKE === '1';

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { n: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1] ?? Number.NaN };
}

export const fmt = (x: number, unit = 'ms') => `${x.toFixed(x < 10 ? 2 : 1)} ${unit}`;

export interface Reply {
  status: number;
  text: string;
}

/** POSTs over keep-alive connections (at most `maxSockets` at once; more requests queue in the agent). */
export class KeepAliveClient {
  private readonly agent: http.Agent;
  private readonly url: URL;

  constructor(url: string, maxSockets = 64) {
    this.url = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  post(body: string, headers: Record<string, string> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'content-length': String(Buffer.byteLength(body)),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The JSON-RPC message of a response, whether it came as JSON or as a server-sent event. */
export function rpcMessage(text: string): { result?: Record<string, unknown>; error?: { message: string } } {
  if (text.startsWith('event:') || text.startsWith('data:')) {
    const data = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .pop();
    return JSON.parse(data?.slice(6) ?? '{}') as ReturnType<typeof rpcMessage>;
  }
  return JSON.parse(text) as ReturnType<typeof rpcMessage>;
}

export interface ChildServer {
  url: string;
  port: number;
  child: ChildProcess;
  /** SIGTERM, then the exit code once it has exited (null when a signal ended it). */
  stop(): Promise<number | null>;
}

/** Starts `node entry ...args`, which prints "listening on http://host:port/" on stderr; `stdin` gives it a pipe. */
export async function spawnServer(entry: string, args: string[], env: Record<string, string>, execArgv: string[] = [], { stdin = false } = {}): Promise<ChildServer> {
  const child = spawn(process.execPath, [...execArgv, entry, ...args], { env, stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  const port = await listeningPort(child, 15_000, { value: '' }, 100_000);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    child,
    stop: () =>
      new Promise<number | null>((resolve) => {
        // A process killed by a signal has no exit code, but its signal code: either means gone.
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time (user + system) a process has used, in ms. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}
