/**
 * The catalog's HTTP client against a real local server: timeouts, cancellation, retries,
 * redirects and oversized answers each end in their own clear error, and nothing keeps a socket
 * or a timer once the call is over.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson } from '../src/catalog/http.js';
import { ToolError } from '../src/core/errors.js';

let server: http.Server;
let base: string;
const hits = new Map<string, number>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/hang') return; // never answers
    if (path === '/ok') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    if (path === '/flaky') {
      // 503 once, then an answer: retried.
      if (hits.get(path) === 1) return void res.writeHead(503).end('busy');
      return void res.writeHead(200).end('{"second":true}');
    }
    if (path === '/redirect') return void res.writeHead(302, { location: 'http://elsewhere.invalid/' }).end();
    if (path === '/huge') {
      res.writeHead(200);
      const piece = Buffer.alloc(1 << 20, 0x20);
      let sent = 0;
      const more = () => {
        while (sent < 20 && res.write(piece)) sent++;
        if (sent < 20) res.once('drain', more);
        else res.end();
      };
      res.on('close', () => (sent = 20));
      return more();
    }
    res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function errorOf(p: Promise<unknown>): Promise<ToolError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ToolError) return err;
    throw err;
  }
  throw new Error('expected a ToolError');
}

describe('catalog HTTP', () => {
  it('answers JSON and retries a 5xx', async () => {
    expect(await requestJson(`${base}/ok`, { service: 'Quilt catalog' })).toEqual({ ok: true });
    expect(await requestJson(`${base}/flaky`, { service: 'Quilt catalog' })).toEqual({ second: true });
    expect(hits.get('/flaky')).toBe(2);
  });

  it('gives up after its timeout, naming the service and the wait', async () => {
    const started = performance.now();
    const e = await errorOf(requestJson(`${base}/hang`, { service: 'Quilt catalog', timeoutMs: 200, retries: 0 }));
    expect(e.code).toBe('timeout');
    expect(e.message).toMatch(/The Quilt catalog at http:\/\/127\.0\.0\.1:\d+\/hang did not answer within 0 s/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('stops at once when the caller cancels, and does not retry', async () => {
    const before = hits.get('/hang') ?? 0;
    const cancel = new AbortController();
    // Cancelled once the catalog has the request (a fixed 50 ms could pass before it arrived, under load).
    const arrived = setInterval(() => (hits.get('/hang') ?? 0) > before && (clearInterval(arrived), cancel.abort()), 5);
    const e = await errorOf(requestJson(`${base}/hang`, { service: 'Quilt catalog', timeoutMs: 10_000, retries: 2, signal: cancel.signal }));
    expect(e.code).toBe('timeout');
    expect(e.message).toBe('The request to the Quilt catalog was cancelled.');
    expect(hits.get('/hang')).toBe(before + 1);
    // Already cancelled: nothing is sent.
    const again = await errorOf(requestJson(`${base}/hang`, { service: 'Quilt catalog', signal: cancel.signal }));
    expect(again.message).toMatch(/was cancelled/);
    expect(hits.get('/hang')).toBe(before + 1);
  });

  it('refuses redirects and answers larger than any catalog answer', async () => {
    const r = await errorOf(requestJson(`${base}/redirect`, { service: 'Quilt catalog', headers: { authorization: 'Bearer secret-token' } }));
    expect(r.message).toMatch(/answered with a redirect \(HTTP 302\); quilt-mcp does not follow redirects/);
    expect(r.text).not.toContain('secret-token');
    const h = await errorOf(requestJson(`${base}/huge`, { service: 'Quilt catalog' }));
    expect(h.message).toMatch(/answered with more than 16 MiB/);
  });

  it('names an unreachable service', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const e = await errorOf(requestJson(`http://127.0.0.1:${port}/x`, { service: 'Quilt registry', retries: 0 }));
    expect(e.code).toBe('unreachable');
    expect(e.message).toMatch(/Could not reach the Quilt registry at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});
