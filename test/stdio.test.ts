/**
 * The stdio contract, at the byte level: only JSON-RPC on stdout, logs on stderr and as MCP log
 * notifications, and the process ends promptly when the client goes away.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isolatedEnv, SERVER_ENTRY } from './helpers/mcp.js';

interface Raw {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: () => string;
  send(msg: object): void;
  waitFor(pred: (msg: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function launch(env: Record<string, string>, nodeArgs: string[] = []): Raw {
  const child = spawn(process.execPath, [...nodeArgs, SERVER_ENTRY], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  const waiters: Array<{ pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }> = [];
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        for (const w of [...waiters]) {
          if (w.pred(msg)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(msg);
          }
        }
      } catch {
        // not JSON: the test below fails on it
      }
    }
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return {
    child,
    lines,
    stderr: () => err,
    send: (msg) => child.stdin.write(`${JSON.stringify(msg)}\n`),
    waitFor: (pred, ms = 10_000) =>
      new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        setTimeout(() => reject(new Error(`timeout; stdout so far: ${lines.join('\n')}\nstderr: ${err}`)), ms).unref();
      }),
    exited,
  };
}

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
};

async function handshake(raw: Raw) {
  raw.send(INIT);
  await raw.waitFor((m) => m.id === 1);
  raw.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
}

describe('stdio transport', () => {
  it('writes nothing but JSON-RPC to stdout and exits within 1 s when stdin closes', async () => {
    const raw = launch(isolatedEnv({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' }));
    await handshake(raw);
    raw.send({ jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'debug' } });
    await raw.waitFor((m) => m.id === 2);
    raw.send({ jsonrpc: '2.0', id: 3, method: 'tools/list' });
    const list = await raw.waitFor((m) => m.id === 3);
    expect((list.result as { tools: unknown[] }).tools.length).toBeGreaterThan(5);
    raw.send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'bucket_objects_list', arguments: { bucket: 'some-bucket' } } });
    const res = await raw.waitFor((m) => m.id === 4, 20_000);
    expect((res.result as { isError: boolean }).isError).toBe(true);
    // The failure was also logged to the client as an MCP log notification.
    expect(raw.lines.some((l) => l.includes('notifications/message') && l.includes('tool call failed'))).toBe(true);

    const closedAt = performance.now();
    raw.child.stdin.end();
    const { code, at } = await raw.exited;
    expect(at - closedAt).toBeLessThan(1000);
    expect(code).toBe(0);
    expect(raw.lines.length).toBeGreaterThan(3);
    for (const line of raw.lines.filter((l) => l !== '')) {
      const msg = JSON.parse(line) as { jsonrpc?: string };
      expect(msg.jsonrpc).toBe('2.0');
    }
    expect(raw.stderr()).toContain('quilt-mcp ready on stdio');
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits within 1 s on ${signal}`, async () => {
      const raw = launch(isolatedEnv());
      await handshake(raw);
      const sentAt = performance.now();
      raw.child.kill(signal);
      const { at, code } = await raw.exited;
      expect(at - sentAt).toBeLessThan(1000);
      expect(code).toBe(0);
    });
  }

  it('answers initialize and tools/list without loading the AWS SDK', async () => {
    const trace = path.join(mkdtempSync(path.join(os.tmpdir(), 'trace-')), 'imports.txt');
    const hook = fileURLToPath(new URL('./helpers/trace-imports.mjs', import.meta.url));
    const raw = launch(isolatedEnv({ TRACE_IMPORTS_FILE: trace }), ['--import', hook]);
    await handshake(raw);
    raw.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    await raw.waitFor((m) => m.id === 2);
    raw.child.stdin.end();
    await raw.exited;
    const loaded = readFileSync(trace, 'utf8');
    expect(loaded).toContain('@modelcontextprotocol/sdk');
    expect(loaded).not.toContain('@aws-sdk');
    expect(loaded).not.toContain('/jose/');
  });
});

describe('configuration errors', () => {
  it('exits with code 2 and names the bad variable', async () => {
    const raw = launch(isolatedEnv({ MCP_LOG_LEVEL: 'loud' }));
    const { code } = await raw.exited;
    expect(code).toBe(2);
    expect(raw.stderr()).toContain('MCP_LOG_LEVEL is invalid');
    expect(raw.lines).toEqual([]);
  });

  it('treats an MCPB placeholder the user left empty as unset', async () => {
    const raw = launch(isolatedEnv({ QUILT_CATALOG_URL: '${user_config.catalog_url}', AWS_REGION: '${user_config.aws_region}' }));
    await handshake(raw);
    raw.child.stdin.end();
    expect((await raw.exited).code).toBe(0);
  });
});

describe('choosing tools', () => {
  it('MCP_READ_ONLY offers only read tools, MCP_TOOLSETS only some toolsets (plus auth)', async () => {
    const { connectStdio } = await import('./helpers/mcp.js');
    const all = await connectStdio(isolatedEnv());
    const allNames = (await all.client.listTools()).tools.map((t) => t.name);
    await all.close();
    expect(allNames).toContain('bucket_objects_put');

    const ro = await connectStdio(isolatedEnv({ MCP_READ_ONLY: 'true' }));
    const roTools = (await ro.client.listTools()).tools;
    await ro.close();
    expect(roTools.map((t) => t.name)).not.toContain('bucket_objects_put');
    // Its write probe starts a multipart upload.
    expect(roTools.map((t) => t.name)).not.toContain('discover_permissions');
    expect(roTools.every((t) => t.annotations?.readOnlyHint === true)).toBe(true);
    expect(roTools.length).toBeGreaterThan(5);

    const search = await connectStdio(isolatedEnv({ MCP_TOOLSETS: 'search' }));
    const searchNames = (await search.client.listTools()).tools.map((t) => t.name);
    await search.close();
    expect(searchNames).toContain('search_catalog');
    expect(searchNames).toContain('auth_status');
    expect(searchNames).not.toContain('bucket_objects_list');
  });

  it('names a toolset it does not know', async () => {
    const raw = launch(isolatedEnv({ MCP_TOOLSETS: 'buckets,everything' }));
    expect((await raw.exited).code).toBe(2);
    expect(raw.stderr()).toContain('MCP_TOOLSETS is invalid');
  });
});
