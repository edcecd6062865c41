/**
 * The HTTP transport in desktop mode: loopback only, a per-start access token, DNS-rebinding
 * protection. (The MCP conformance suite runs against it in test/conformance.test.ts.)
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, rawPost, startHttpServer, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { call, objectText, s3Env } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let s3: LocalS3;
let server: HttpServer;

beforeAll(async () => {
  s3 = await startS3({ buckets: ['desk-bucket'] });
  await s3.put('desk-bucket', 'a.txt', 'desktop over http');
  server = await startHttpServer(s3Env(s3.endpoint));
});
afterAll(async () => {
  await server?.stop();
  await s3?.close();
});

const auth = () => ({ authorization: `Bearer ${server.localToken}` });

describe('desktop mode over HTTP', () => {
  it('binds 127.0.0.1 and serves a client with the access token printed at start', async () => {
    expect(server.stderr()).toContain('listening on http://127.0.0.1:');
    expect(server.localToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const client = await connectHttp(server.url, server.localToken);
    const r = await call(client, 'bucket_object_text', { uri: 's3://desk-bucket/a.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(objectText(r).content).toBe('desktop over http');
    await client.close();
  });

  it('refuses every request without the access token: it would serve the user\'s own AWS credentials to anyone local', async () => {
    for (const body of [TOOLS_CALL('bucket_list'), { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 1, method: 'ping' }]) {
      const none = await rawPost(server.url, body);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="quilt-mcp"$/);
      expect(((await none.json()) as { error_description: string }).error_description).toContain('access token printed');
      const wrong = await rawPost(server.url, body, { authorization: `Bearer ${'x'.repeat(32)}` });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // Each start has its own token.
    const other = await startHttpServer(s3Env(s3.endpoint));
    try {
      expect(other.localToken).not.toBe(server.localToken);
      expect((await rawPost(other.url, TOOLS_CALL('bucket_list'), auth())).status).toBe(401);
    } finally {
      await other.stop();
    }
    // The token never reaches the log lines (only the one line that announces it).
    expect(server.stderr().split(server.localToken ?? '').length - 1).toBe(1);
  });

  it('rejects a foreign Host or Origin (DNS rebinding) and accepts loopback ones', async () => {
    // fetch cannot set Host; node:http can.
    const evilStatus = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        server.url,
        { method: 'POST', headers: { ...auth(), host: 'evil.example.com', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(TOOLS_CALL('bucket_list')));
    });
    expect(evilStatus).toBe(403);
    const evilOrigin = await rawPost(server.url, TOOLS_CALL('bucket_list'), { ...auth(), origin: 'http://evil.example.com' });
    expect(evilOrigin.status).toBe(403);
    const ok = await rawPost(server.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { ...auth(), host: `localhost:${server.port}`, origin: `http://localhost:${server.port}` });
    expect(ok.status).toBe(200);
  });

  it('rejects a non-JSON body with a JSON-RPC parse error', async () => {
    const res = await rawPost(server.url, '{not json', auth());
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: -32700 } });
  });

  it('refuses to listen beyond loopback in desktop mode', async () => {
    await expect(startHttpServer(s3Env(s3.endpoint, { MCP_HOST: '0.0.0.0' }))).rejects.toThrow(/MCP_HOST\/--host can only be changed in JWT mode/);
  });
});
