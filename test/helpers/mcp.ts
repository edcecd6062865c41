/**
 * Launches the built server the way Claude Desktop does (a child process over stdio) and talks to
 * it with the real MCP SDK client.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

// QUILT_MCP_TEST_ENTRY=bundle/server/index.mjs runs the suite against the bundled server instead
// (after `npm run build:bundle`); import traces then name chunks, so those assertions fail by design.
export const SERVER_ENTRY = process.env.QUILT_MCP_TEST_ENTRY
  ? path.resolve(process.env.QUILT_MCP_TEST_ENTRY)
  : fileURLToPath(new URL('../../dist/index.js', import.meta.url));

/** An environment with nothing from the developer's machine: empty HOME, no AWS variables. */
export function isolatedEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-home-'));
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    AWS_CONFIG_FILE: path.join(home, '.aws', 'config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, '.aws', 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    NODE_OPTIONS: process.env.NODE_OPTIONS,
    MCP_LOG_LEVEL: 'debug',
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Env for a server whose AWS is the local S3 (and optionally the local STS). */
export function s3Env(endpoint: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  return isolatedEnv({
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    ...extra,
  });
}

export interface Harness {
  client: Client;
  stderr(): string;
  pid: number | null;
  close(): Promise<void>;
}

/** `nodeArgs` go before the entry (benchmarks pass `--cpu-prof`, which NODE_OPTIONS may not hold). */
export async function connectStdio(env: Record<string, string>, args: string[] = [], nodeArgs: string[] = []): Promise<Harness> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [...nodeArgs, SERVER_ENTRY, ...args],
    env,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const client = new Client({ name: 'quilt-mcp-tests', version: '0.0.0' });
  await client.connect(transport);
  return {
    client,
    stderr: () => stderr,
    pid: transport.pid,
    close: () => client.close(),
  };
}

export interface ToolCall {
  isError: boolean;
  text: string;
  // Tests read fields of many tools' results.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  raw: CallToolResult;
}

export async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<ToolCall> {
  const raw = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = raw.content
    .filter((c): c is { type: 'text'; text: string } => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
  return { isError: Boolean(raw.isError), text, data: raw.structuredContent, raw };
}

/** What a bucket_object_text answer says, read from its text alone (the tool has no structured half). */
export interface ObjectText {
  uri: string;
  encoding: string;
  /** The object's bytes [first, stop) of size. */
  first: number;
  stop: number;
  size: number;
  content: string;
  next_offset: number | undefined;
}

export function objectText(r: ToolCall): ObjectText {
  const nl = r.text.indexOf('\n');
  const head = /^(s3:\/\/.*?): ([\w-]+)(?:, [^,]+)?, bytes (\d+)-(\d+) of (\d+)(?:, version \S+)?:$/.exec(r.text.slice(0, nl < 0 ? undefined : nl));
  if (r.isError || !head) throw new Error(`not a bucket_object_text answer: ${r.text.slice(0, 300)}`);
  let content = nl < 0 ? '' : r.text.slice(nl + 1);
  const tail = /\n\[truncated: \d+ more bytes; continue with offset=(\d+)\]$/.exec(content);
  if (tail) content = content.slice(0, tail.index);
  return {
    uri: head[1]!,
    encoding: head[2]!,
    first: Number(head[3]),
    stop: Number(head[4]),
    size: Number(head[5]),
    content,
    next_offset: tail ? Number(tail[1]) : undefined,
  };
}
