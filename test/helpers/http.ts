/**
 * The built server in HTTP mode as a child process (port 0, the port read from its log line), an
 * MCP client over Streamable HTTP with a bearer token, and JWT signing for tests.
 */
import { setMaxListeners } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SignJWT } from 'jose';
import { isolatedEnv, SERVER_ENTRY } from './mcp.js';

export interface HttpServer {
  url: string;
  port: number;
  /** Desktop mode: this run's access token, read from the server's stderr. */
  localToken: string | undefined;
  child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * The port a spawned server listens on, from the "listening on http://host:port/" line it prints
 * on stderr; rejects when it exits first or takes longer than `timeoutMs`. `text` collects what the
 * child printed (stderr, and stdout where the caller adds it) for error messages.
 */
export function listeningPort(child: ChildProcess, timeoutMs: number, text: { value: string }, keep = Number.POSITIVE_INFINITY): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${text.value}`)), timeoutMs);
    child.stderr?.on('data', (c: Buffer) => {
      text.value += c.toString();
      if (text.value.length > keep) text.value = text.value.slice(-keep / 2);
      const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(text.value);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${text.value}`));
    });
  });
}

export async function startHttpServer(env: Record<string, string>, { port: wanted = 0 }: { port?: number } = {}): Promise<HttpServer> {
  const child = spawn(process.execPath, [SERVER_ENTRY, '--http', '--port', String(wanted)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const err = { value: '' };
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  const port = await listeningPort(child, 10_000, err);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    localToken: /access token: (\S+)/.exec(err.value)?.[1],
    child,
    stderr: () => err.value + (stdout ? `\n[stdout]${stdout}` : ''),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function connectHttp(url: string, token?: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : {},
  });
  const client = new Client({ name: 'quilt-mcp-tests', version: '0.0.0' });
  await client.connect(transport);
  // The SDK client gives every request its one long-lived signal, and the test process's fetch
  // keeps one listener on it per request until garbage collection: a client that probes thousands
  // of times (test/security/memory.test.ts) printed thousands of leak warnings. Not a leak.
  const signal = (transport as unknown as { _abortController?: AbortController })._abortController?.signal;
  if (signal) setMaxListeners(0, signal);
  return client;
}

/** A port free right now (for a server whose URL must be known before it starts, e.g. MCP_RESOURCE_URL). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop';

/**
 * JWT mode as deployed, with AWS pointed at the local S3 and STS: the server's own key (SERVERKEY)
 * only calls STS; every data call uses the token's role.
 */
export function jwtEnv(endpoints: { s3: string; sts: string }, extra: Record<string, string | undefined> = {}): Record<string, string> {
  return isolatedEnv({
    MCP_REQUIRE_JWT: 'true',
    MCP_JWT_SECRET: TEST_SECRET,
    MCP_LOG_LEVEL: 'info',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'SERVERKEY',
    AWS_SECRET_ACCESS_KEY: 'server-secret',
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_STS: endpoints.sts,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    ...extra,
  });
}

export async function signToken(
  claims: Record<string, unknown>,
  { secret = TEST_SECRET, expiresIn = 3600, header = {} }: { secret?: string; expiresIn?: number; header?: Record<string, unknown> } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
    .sign(new TextEncoder().encode(secret));
}

/** POST one raw JSON-RPC message (no MCP client), to see status codes and headers. */
export async function rawPost(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export const TOOLS_CALL = (name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name, arguments: args },
});
