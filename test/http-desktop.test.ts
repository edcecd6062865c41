/**
 * The HTTP transport in desktop mode: loopback only, DNS-rebinding protection, and the
 * protocol conformance suite's generic server scenarios.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttp, rawPost, startHttpServer, TOOLS_CALL, type HttpServer } from './helpers/http.js';
import { call, s3Env } from './helpers/mcp.js';
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

describe('desktop mode over HTTP', () => {
  it('binds 127.0.0.1 and needs no token', async () => {
    expect(server.stderr()).toContain('listening on http://127.0.0.1:');
    const client = await connectHttp(server.url);
    const r = await call(client, 'bucket_object_text', { uri: 's3://desk-bucket/a.txt' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.text).toBe('desktop over http');
    await client.close();
  });

  it('rejects a foreign Host or Origin (DNS rebinding) and accepts loopback ones', async () => {
    // fetch cannot set Host; node:http can.
    const evilStatus = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        server.url,
        { method: 'POST', headers: { host: 'evil.example.com', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(TOOLS_CALL('bucket_list')));
    });
    expect(evilStatus).toBe(403);
    const evilOrigin = await rawPost(server.url, TOOLS_CALL('bucket_list'), { origin: 'http://evil.example.com' });
    expect(evilOrigin.status).toBe(403);
    const ok = await rawPost(server.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { host: `localhost:${server.port}`, origin: `http://localhost:${server.port}` });
    expect(ok.status).toBe(200);
  });

  it('rejects a non-JSON body with a JSON-RPC parse error', async () => {
    const res = await rawPost(server.url, '{not json');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: -32700 } });
  });

  it('refuses to listen beyond loopback in desktop mode', async () => {
    await expect(startHttpServer(s3Env(s3.endpoint, { MCP_HOST: '0.0.0.0' }))).rejects.toThrow(/MCP_HOST\/--host can only be changed in JWT mode/);
  });

  it('passes the MCP conformance suite\'s generic server scenarios', async () => {
    const bin = fileURLToPath(new URL('../node_modules/.bin/conformance', import.meta.url));
    const url = `http://localhost:${server.port}/mcp`;
    for (const scenario of ['server-initialize', 'ping', 'tools-list', 'logging-set-level', 'dns-rebinding-protection']) {
      const { stdout } = await promisify(execFile)(bin, ['server', '--url', url, '--scenario', scenario], { timeout: 60_000 });
      expect(stdout, scenario).toMatch(/Passed: (\d+)\/\1, 0 failed/);
    }
  }, 120_000);
});
