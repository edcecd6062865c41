/**
 * What a model is offered and how its calls are checked: the tool list's size and portability
 * (the real MCP Inspector's --strict lint), strict arguments (an unknown one is refused with the
 * accepted names, over stdio and over both HTTP paths), and hidden tools that say which setting
 * hid them.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nearestName } from '../src/tools/schema.js';
import { connectHttp, jwtEnv, rawPost, signToken, startHttpServer, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { call, connectStdio, isolatedEnv, s3Env, SERVER_ENTRY } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';
import { measureTools } from './helpers/tool-budget.js';

const EVERY_TOOLSET = 'buckets,packages,search,catalog,athena,diagnostics,admin';
/** The model-visible budget of the default desktop tool list (issue 25). */
const TOKEN_BUDGET = 4000;

let s3: LocalS3;
let sts: LocalSts;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['surface-bucket'] });
  sts = await startSts();
}, 60_000);

afterAll(async () => {
  await s3?.close();
  await sts?.close();
});

async function listTools(env: Record<string, string>): Promise<Tool[]> {
  const h = await connectStdio(env);
  try {
    return (await h.client.listTools()).tools;
  } finally {
    await h.close();
  }
}

/** Every object schema in a JSON Schema, with its path. */
function objects(schema: unknown, path = ''): Array<{ path: string; node: Record<string, unknown> }> {
  if (!schema || typeof schema !== 'object') return [];
  const node = schema as Record<string, unknown>;
  const out = node.type === 'object' && node.properties ? [{ path: path || '(root)', node }] : [];
  for (const [k, v] of Object.entries((node.properties as Record<string, unknown>) ?? {})) out.push(...objects(v, `${path}.${k}`));
  if (node.items) out.push(...objects(node.items, `${path}[]`));
  for (const b of (node.anyOf as unknown[]) ?? []) out.push(...objects(b, path));
  return out;
}

function typeArrays(schema: unknown, path = ''): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const node = schema as Record<string, unknown>;
  const here = Array.isArray(node.type) ? [path || '(root)'] : [];
  return [...here, ...Object.entries(node).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x, i) => typeArrays(x, `${path}.${k}[${i}]`)) : typeArrays(v, `${path}.${k}`)))];
}

describe('the tool list', () => {
  it(`default desktop tools/list fits ${TOKEN_BUDGET} model-visible tokens and offers no operator diagnostics`, async () => {
    const tools = await listTools(isolatedEnv());
    const names = tools.map((t) => t.name);
    for (const diag of ['jwt_diagnostics', 'validate_jwt_token', 'session_diagnostics']) expect(names).not.toContain(diag);
    const m = measureTools(tools);
    expect(m.tokens, `model-visible tokens (${m.tokenizer}): ${JSON.stringify(m.perTool)}`).toBeLessThanOrEqual(TOKEN_BUDGET);
    // Every tool still says what it does and what each argument means.
    for (const t of tools) {
      expect(t.description?.length, t.name).toBeGreaterThan(40);
      for (const [arg, s] of Object.entries((t.inputSchema.properties ?? {}) as Record<string, { description?: string }>)) {
        expect(s.description?.length ?? 0, `${t.name}.${arg}`).toBeGreaterThan(0);
      }
    }
  });

  it('input schemas refuse unknown names at every level and use no type arrays or $schema lines', async () => {
    const tools = await listTools(isolatedEnv({ MCP_TOOLSETS: EVERY_TOOLSET }));
    expect(tools.length).toBeGreaterThan(30);
    for (const t of tools) {
      expect(t.inputSchema.additionalProperties, t.name).toBe(false);
      for (const o of objects(t.inputSchema)) expect(o.node.additionalProperties, `${t.name} ${o.path}`).toBe(false);
      expect(typeArrays(t.inputSchema), t.name).toEqual([]);
      expect(typeArrays(t.outputSchema), t.name).toEqual([]);
      expect(t.inputSchema, t.name).not.toHaveProperty('$schema');
    }
  });

  it('JWT mode offers the operator diagnostics', async () => {
    const tools = await listTools(jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, { MCP_JWT_TOKEN: await signToken({ sub: 'op' }) }));
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['jwt_diagnostics', 'validate_jwt_token', 'session_diagnostics']));
  });

  it('passes `mcp-inspector --cli --strict` (the MCP Inspector 2.12.0 schema lint) with no finding, every toolset on', async () => {
    const bin = fileURLToPath(new URL('../node_modules/.bin/mcp-inspector', import.meta.url));
    const env = isolatedEnv({ MCP_TOOLSETS: EVERY_TOOLSET, MCP_LOG_LEVEL: 'error' });
    const args = ['--cli', '--strict', '--method', 'tools/list', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), process.execPath, SERVER_ENTRY];
    const { stdout, stderr } = await promisify(execFile)(bin, args, { env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 16 * 1024 * 1024 });
    expect(JSON.parse(stdout).tools.length).toBeGreaterThan(30);
    // With findings it prints each as "Warning:"/"Error:" and a count ("0 errors, 24 warnings across 15 tools.").
    expect(stderr).not.toMatch(/^(Warning|Error): tool/m);
    expect(stderr).not.toMatch(/\d+ errors?, \d+ warnings?/);
  }, 120_000);
});

describe('unknown arguments are refused, never dropped', () => {
  it('names the unknown argument, the nearest accepted one and all of them', () => {
    expect(nearestName('maxKeys', ['bucket', 'max_keys'])).toBe('max_keys');
    expect(nearestName('bucket_name', ['bucket', 'prefix'])).toBe('bucket');
    expect(nearestName('hash', ['bucket', 'name', 'hash_or_tag'])).toBe('hash_or_tag');
    expect(nearestName('entries', ['bucket', 'name', 'add', 'remove'])).toBeUndefined();
  });

  it('over stdio: package_update with `entries` (its argument is `add`) commits nothing and says so', async () => {
    const h = await connectStdio(s3Env(s3.endpoint));
    try {
      const before = s3.requests.length;
      const r = await call(h.client, 'package_update', { bucket: 'surface-bucket', name: 'team/x', entries: [{ logical_key: 'a.txt', text: 'a' }] });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('Unknown argument "entries"');
      expect(r.text).toContain('Accepted: bucket, name, add, remove, message, meta, workflow, base, copy.');
      expect(s3.requests.length).toBe(before);
      // Inside an item too, with where it is.
      const nested = await call(h.client, 'bucket_objects_put', { bucket: 'surface-bucket', items: [{ key: 'a.txt', txt: 'a' }] });
      expect(nested.isError).toBe(true);
      expect(nested.text).toMatch(/Unknown argument "txt" \(did you mean "text"\?\); nothing was done\. Accepted: key, text, base64, content_type, metadata\. at items\[0\]/);
      expect(s3.requests.length).toBe(before);
      const none = await call(h.client, 'auth_status', { verbose: true });
      expect(none.text).toContain('Unknown argument "verbose"; nothing was done. It takes no arguments.');
    } finally {
      await h.close();
    }
  });

  it('over HTTP, on the direct path and through the SDK server alike (JWT mode and desktop mode)', async () => {
    const jwt = await startHttpServer(jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }));
    const desktop = await startHttpServer(s3Env(s3.endpoint));
    try {
      const token = await signToken({ sub: 'alice', role_arn: 'arn:aws:iam::123456789012:role/r', buckets: ['surface-bucket'] });
      const servers: Array<[HttpServer, string]> = [
        [jwt, token],
        [desktop, desktop.localToken ?? ''],
      ];
      // A call without a token is told how to send one, the placeholder intact (redaction took
      // "<token>" for an XML credential and printed "Bearer <token>[redacted]").
      const tokenless = await rawPost(jwt.url, TOOLS_CALL('bucket_objects_list', { bucket: 'surface-bucket' }));
      expect(tokenless.status).toBe(401);
      expect(((await tokenless.json()) as { error_description: string }).error_description).toBe('This server requires a JWT: send Authorization: Bearer <token>.');
      for (const [server, bearer] of servers) {
        const res = await rawPost(server.url, TOOLS_CALL('bucket_objects_list', { bucket: 'surface-bucket', maxKeys: 5 }), { authorization: `Bearer ${bearer}` });
        const body = (await res.json()) as { result: { isError: boolean; content: Array<{ text: string }> } };
        expect(body.result.isError).toBe(true);
        expect(body.result.content[0]!.text).toContain('Unknown argument "maxKeys" (did you mean "max_keys"?)');
        // The same call with the right name runs.
        const client = await connectHttp(server.url, bearer);
        const ok = await call(client, 'bucket_objects_list', { bucket: 'surface-bucket', max_keys: 5 });
        expect(ok.isError, ok.text).toBe(false);
        await client.close();
      }
    } finally {
      await jwt.stop();
      await desktop.stop();
    }
  }, 60_000);
});

describe('a hidden tool says which setting hid it', () => {
  it('MCP_READ_ONLY, MCP_TOOLSETS, the admin toolset and desktop-mode diagnostics', async () => {
    const cases: Array<[Record<string, string>, string, Record<string, unknown>, RegExp]> = [
      [{ MCP_READ_ONLY: 'true' }, 'bucket_objects_put', { bucket: 'b', items: [] }, /bucket_objects_put is not offered: this server runs with MCP_READ_ONLY=true/],
      [{ MCP_TOOLSETS: 'search' }, 'bucket_objects_list', { bucket: 'b' }, /runs with MCP_TOOLSETS=search, without "buckets"/],
      [{}, 'tabulator_table_delete', { bucket: 'b', table: 't' }, /offered only when MCP_TOOLSETS names admin/],
      [{}, 'jwt_diagnostics', {}, /desktop mode, where no JWT is used[\s\S]*Fix: auth_status/],
    ];
    for (const [env, tool, args, message] of cases) {
      const h = await connectStdio(isolatedEnv(env));
      try {
        expect((await h.client.listTools()).tools.map((t) => t.name)).not.toContain(tool);
        const r = await call(h.client, tool, args);
        expect(r.isError).toBe(true);
        expect(r.text).toMatch(message);
      } finally {
        await h.close();
      }
    }
  }, 60_000);
});
