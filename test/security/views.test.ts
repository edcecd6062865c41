/**
 * Per-tenant views only: what a caller sees of the server is its own session, never counters that
 * move with other tenants' work; and "a caller" is an issuer's user, not a bare `sub`: two issuers'
 * users named alike share neither cursors nor the per-caller cap.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectHttp, signToken, startHttpServer, type HttpServer } from '../helpers/http.js';
import { call } from '../helpers/mcp.js';
import { startTenants, ROLE_A, type Tenants } from './tenants.js';

let t: Tenants;
let server: HttpServer;
let fromA: { token: string; client: Client };
let fromB: { token: string; client: Client };

const ISSUER_A = 'https://a.example.com';
const ISSUER_B = 'https://b.example.com';
const ALL = ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:DeleteObject'];

beforeAll(async () => {
  t = await startTenants();
  // Two issuers the operator trusts; two slots per caller.
  server = await startHttpServer(t.env({ MCP_JWT_ISSUER: `${ISSUER_A},${ISSUER_B}`, MCP_MAX_INFLIGHT: '8' }));
  const alice = async (iss: string) => {
    const token = await signToken({ iss, sub: 'alice', role_arn: ROLE_A, buckets: ['tenant-a'], permissions: ALL });
    return { token, client: await connectHttp(server.url, token) };
  };
  fromA = await alice(ISSUER_A);
  fromB = await alice(ISSUER_B);
  for (let i = 0; i < 4; i++) await t.s3.put('tenant-a', `.quilt/named_packages/alice/set${i}/latest`, 'a'.repeat(64));
}, 60_000);

afterAll(async () => {
  await fromA?.client.close().catch(() => {});
  await fromB?.client.close().catch(() => {});
  await server?.stop();
  await t?.close();
});

describe('session_diagnostics shows the caller its own session only', () => {
  it("no process-wide counters, and nothing in it moves with another tenant's work", async () => {
    const before = await call(t.alice, 'session_diagnostics');
    expect(before.isError, before.text).toBe(false);
    for (let i = 0; i < 5; i++) expect((await call(t.bob, 'bucket_objects_list', { bucket: 'tenant-b' })).isError).toBe(false);
    const after = await call(t.alice, 'session_diagnostics');
    expect(after.data).toEqual(before.data);
    expect(after.text).toBe(before.text);
    expect(Object.keys(after.data.stats).sort()).toEqual(['credential_source', 'mode', 'process_wide', 'sts_credentials_expire_at', 'token_expires_at']);
    expect(after.text).not.toMatch(/tokens_verified|tokens_rejected|token_cache|hit_rate|assumeRoleCalls/);
  });
});

describe("a caller is an issuer's user", () => {
  it("one issuer's alice cannot use a cursor issued to another issuer's alice", async () => {
    const page = await call(fromA.client, 'package_list', { bucket: 'tenant-a', prefix: 'alice/set', limit: 2 });
    expect(page.isError, page.text).toBe(false);
    expect(page.data.next_cursor).toBeTruthy();
    const own = await call(fromA.client, 'package_list', { bucket: 'tenant-a', prefix: 'alice/set', limit: 2, cursor: page.data.next_cursor });
    expect(own.isError, own.text).toBe(false);
    const other = await call(fromB.client, 'package_list', { bucket: 'tenant-a', prefix: 'alice/set', limit: 2, cursor: page.data.next_cursor });
    expect(other.isError).toBe(true);
    expect(other.text).toContain('not issued by this server to this caller');
  });

  it("one issuer's alice holding her slots does not take the other's", async () => {
    // Two requests whose bodies never finish hold alice@A's two slots (for the 10 s body deadline).
    const held = Array.from({ length: 2 }, () => {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.write(
        ['POST /mcp HTTP/1.1', 'host: 127.0.0.1', 'content-type: application/json', 'accept: application/json, text/event-stream', `authorization: Bearer ${fromA.token}`, 'content-length: 100', '', '{"jsonrpc":'].join('\r\n'),
      );
      socket.on('error', () => undefined);
      return socket;
    });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const third = await call(fromA.client, 'catalog_uri', { bucket: 'tenant-a' }).catch((e: unknown) => ({ isError: true, text: String(e) }));
      expect(third.isError).toBe(true);
      expect(third.text).toMatch(/503|too many of your requests/);
      const b = await call(fromB.client, 'catalog_uri', { bucket: 'tenant-a' });
      expect(b.isError, b.text).toBe(false);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});
