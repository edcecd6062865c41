/**
 * Two tenants on one JWT-mode server over HTTP, with the local S3, STS and catalog: alice holds a
 * token for bucket tenant-a, bob one for tenant-b. Alice's IAM role happens to reach tenant-b too
 * (the local S3 proxy plays IAM that way), so the token is the only thing between alice and bob's
 * data: exactly the case where the server's checks must hold.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startCatalog, type LocalCatalog } from '../helpers/catalog.js';
import { graphqlHandler } from '../helpers/catalog-graphql.js';
import { connectHttp, signToken, startHttpServer, jwtEnv, type HttpServer } from '../helpers/http.js';
import { call, type ToolCall } from '../helpers/mcp.js';
import { startS3, type LocalS3 } from '../helpers/s3.js';
import { startSts, type LocalSts } from '../helpers/sts.js';

export const ROLE_A = 'arn:aws:iam::123456789012:role/tenant-a';
export const ROLE_B = 'arn:aws:iam::123456789012:role/tenant-b';
export const ALICE_CATALOG_TOKEN = 'alice-catalog-token';
export const BOB_CATALOG_TOKEN = 'bob-catalog-token';

const ALL = ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:DeleteObject'];

export interface Tenants {
  s3: LocalS3;
  sts: LocalSts;
  catalog: LocalCatalog;
  server: HttpServer;
  aliceToken: string;
  bobToken: string;
  alice: Client;
  bob: Client;
  /** Alice, for a probe thread (whileOthersCall). */
  aliceCaller: Caller;
  /** Environment of the shared server, for starting variants of it. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** S3 requests that touched tenant-b's bucket with alice's credentials. */
  aliceInB(): number;
  close(): Promise<void>;
}

export async function startTenants(extra: Record<string, string> = {}): Promise<Tenants> {
  const sts = await startSts();
  const catalog = await startCatalog();
  catalog.graphql = graphqlHandler({
    packages: [
      { bucket: 'tenant-a', name: 'alice/results', hash: 'a'.repeat(64), size: 10, modified: '2026-01-01T00:00:00Z', entries: 1, comment: 'secret alpha' },
      { bucket: 'tenant-b', name: 'bob/results', hash: 'b'.repeat(64), size: 10, modified: '2026-01-01T00:00:00Z', entries: 1, comment: 'secret bravo' },
      ...Array.from({ length: 6 }, (_, i) => ({
        bucket: 'tenant-a',
        name: `alice/set-${i}`,
        hash: String(i).repeat(64),
        size: 1,
        modified: '2026-01-01T00:00:00Z',
        entries: 1,
        comment: 'secret more',
      })),
    ],
    objects: [
      { bucket: 'tenant-a', key: 'alpha/secret.txt', version: 'null', size: 5, modified: '2026-01-01T00:00:00Z' },
      { bucket: 'tenant-b', key: 'bravo/secret.txt', version: 'null', size: 5, modified: '2026-01-01T00:00:00Z' },
    ],
  });
  catalog.addAccessToken(ALICE_CATALOG_TOKEN, 'alice');
  catalog.addAccessToken(BOB_CATALOG_TOKEN, 'bob');

  const s3 = await startS3({
    buckets: ['tenant-a', 'tenant-b'],
    // IAM: bob's role reaches only tenant-b; alice's role (too broad) reaches both.
    deny: (r) => {
      const role = sts.issued.get(r.sessionToken ?? '');
      if (role === ROLE_B && r.bucket !== 'tenant-b') return 'AccessDenied';
      if (role !== ROLE_A && role !== ROLE_B) return 'AccessDenied';
      return undefined;
    },
  });
  await s3.put('tenant-a', 'alpha/own.txt', 'alice own data');
  await s3.put('tenant-b', 'bravo/secret.txt', 'BOB SECRET');

  const home = mkdtempSync(path.join(os.tmpdir(), 'security-home-'));
  const env = (more: Record<string, string> = {}) =>
    jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, {
      HOME: home,
      QUILT_CATALOG_URL: catalog.url,
      ...extra,
      ...more,
    });
  const server = await startHttpServer(env());
  const aliceToken = await signToken({ sub: 'alice', role_arn: ROLE_A, buckets: ['tenant-a'], permissions: ALL, catalog_token: ALICE_CATALOG_TOKEN }, { expiresIn: 7200 });
  const bobToken = await signToken({ sub: 'bob', role_arn: ROLE_B, buckets: ['tenant-b'], permissions: ALL, catalog_token: BOB_CATALOG_TOKEN }, { expiresIn: 7200 });
  const alice = await connectHttp(server.url, aliceToken);
  const bob = await connectHttp(server.url, bobToken);
  return {
    s3,
    sts,
    catalog,
    server,
    aliceToken,
    bobToken,
    alice,
    bob,
    aliceCaller: { url: server.url, token: aliceToken },
    env,
    aliceInB: () => s3.requests.filter((r) => r.bucket === 'tenant-b' && sts.issued.get(r.sessionToken ?? '') === ROLE_A).length,
    async close() {
      await alice.close().catch(() => {});
      await bob.close().catch(() => {});
      await server.stop();
      await s3.close();
      await sts.close();
      await catalog.close();
    },
  };
}

/** A tool call that must fail with a message matching `message`. */
export async function refused(client: Client, tool: string, args: Record<string, unknown>, message: RegExp): Promise<ToolCall> {
  const r = await call(client, tool, args);
  if (!r.isError || !message.test(r.text)) {
    throw new Error(`${tool} ${JSON.stringify(args)} was expected to be refused with ${message}, got ${r.isError ? 'error' : 'success'}: ${r.text.slice(0, 500)}`);
  }
  return r;
}

/** A tenant as the probe thread connects it: the server's URL and a bearer token. */
export interface Caller {
  url: string;
  token: string;
}

/**
 * Runs `hostile` while the other tenant (`who`, on a thread of its own: probe-worker.mjs) calls a
 * cheap tool back to back: bucket_objects_list of its own bucket, or with `serverOnly` catalog_uri,
 * which calls no other service (where the hostile calls load the local S3, which shares the test's
 * process, its wait would measure that instead of the server). Returns the hostile result, the
 * longest of those calls and any that failed.
 */
export async function whileOthersCall<T>(
  who: Caller,
  bucket: string,
  hostile: () => Promise<T>,
  { serverOnly = false }: { serverOnly?: boolean } = {},
): Promise<{ result: T; worstMs: number; calls: number; failures: string[] }> {
  const worker = new Worker(new URL('./probe-worker.mjs', import.meta.url), { workerData: { ...who, bucket, serverOnly } });
  const messages: Array<Record<string, unknown>> = [];
  let wake: (() => void) | undefined;
  worker.on('message', (m: Record<string, unknown>) => {
    messages.push(m);
    wake?.();
  });
  const failed = new Promise<never>((_, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the probe thread exited (${code}) before reporting`)));
  });
  const next = async () => {
    while (!messages.length) await Promise.race([new Promise<void>((r) => (wake = r)), failed]);
    return messages.shift()!;
  };
  try {
    await next(); // ready: connected and warm
    const result = await hostile().finally(() => worker.postMessage('stop'));
    const report = (await next()) as { worstMs: number; calls: number; failures: string[] };
    return { result, ...report };
  } finally {
    failed.catch(() => {});
    await worker.terminate();
  }
}
