/**
 * The world a fault campaign runs in: the local S3, STS, catalog and Athena, each behind its own
 * network proxy (test/helpers/network-proxy.ts), tenants with their own role and catalog token,
 * and the built server in JWT mode over HTTP. Every request a proxy sees is attributed to a tenant
 * (by the session token STS issued for the tenant's role, or by its catalog bearer), so a test can
 * fault one tenant's requests while another is served, and count the requests of each call.
 */
import type http from 'node:http';
import { KeepAliveClient, rpcMessage } from '../../scripts/bench-lib.js';
import { startAthena, type LocalAthena } from '../helpers/athena.js';
import { startCatalog, type LocalCatalog } from '../helpers/catalog.js';
import { graphqlHandler } from '../helpers/catalog-graphql.js';
import { jwtEnv, signToken, startHttpServer, type HttpServer } from '../helpers/http.js';
import { startNetworkProxy, type Conditions, type Exchange, type NetworkProxy } from '../helpers/network-proxy.js';
import { startS3, type LocalS3 } from '../helpers/s3.js';
import { startSts, type LocalSts } from '../helpers/sts.js';

export type Service = 's3' | 'sts' | 'catalog' | 'athena';
export const SERVICES: readonly Service[] = ['s3', 'sts', 'catalog', 'athena'];

export const BUCKET = 'faults';
/** The tabulator buckets of the catalog's fixtures. */
export const TABULATOR_BUCKET = 'quilt-demo';
const ACCOUNT = '123456789012';
export const roleOf = (tenant: string) => `arn:aws:iam::${ACCOUNT}:role/${tenant}`;

export interface World {
  s3: LocalS3;
  sts: LocalSts;
  catalog: LocalCatalog;
  athena: LocalAthena;
  gql: ReturnType<typeof graphqlHandler>;
  net: Record<Service, NetworkProxy>;
  /** The tenant a request a proxy saw belongs to (undefined: the server's own, e.g. AssumeRole). */
  tenantOf(headers: http.IncomingHttpHeaders): string | undefined;
  /** A tenant's bearer token (made on first use: role, catalog token, catalog admin). */
  token(tenant: string): Promise<string>;
  close(): Promise<void>;
}

export async function startWorld(): Promise<World> {
  const [s3, sts, catalog, athena] = await Promise.all([startS3({ buckets: [BUCKET, 'athena-results'] }), startSts(), startCatalog(), startAthena()]);
  const gql = graphqlHandler();
  catalog.graphql = gql;
  const [s3Net, stsNet, catalogNet, athenaNet] = await Promise.all([
    startNetworkProxy(s3.endpoint, { delayMs: 0, connectMs: 0 }, { dialect: 's3' }),
    startNetworkProxy(sts.endpoint, { delayMs: 0, connectMs: 0 }, { dialect: 'sts' }),
    startNetworkProxy(catalog.url, { delayMs: 0, connectMs: 0 }, { dialect: 'json' }),
    startNetworkProxy(athena.endpoint, { delayMs: 0, connectMs: 0 }, { dialect: 'athena' }),
  ]);
  // The registry the catalog names is reached through the proxy too.
  catalog.config = { registryUrl: catalogNet.endpoint, analyticsBucket: 'quilt-staging-analyticsbucket-1x2y3z' };
  athena.catalogs.set('quilt-staging-tabulator', new Map([['quilt-sandbox', [{ name: 'quant', columns: [{ name: 'gene', type: 'varchar' }], rows: [{ gene: 'TP53' }] }]]]));
  const catalogTokens = new Map<string, string>();
  const tokens = new Map<string, Promise<string>>();
  return {
    s3,
    sts,
    catalog,
    athena,
    gql,
    net: { s3: s3Net, sts: stsNet, catalog: catalogNet, athena: athenaNet },
    tenantOf(headers) {
      const session = headers['x-amz-security-token'];
      if (typeof session === 'string') return sts.issued.get(session)?.split('/').pop();
      const bearer = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
      return bearer ? catalogTokens.get(bearer) : undefined;
    },
    token(tenant) {
      let t = tokens.get(tenant);
      if (!t) {
        const catalogToken = `catalog-${tenant}`;
        catalog.addAccessToken(catalogToken, tenant);
        catalogTokens.set(catalogToken, tenant);
        gql.tabulator.admins.add(tenant);
        t = signToken({ sub: tenant, role_arn: roleOf(tenant), catalog_token: catalogToken }, { expiresIn: 6 * 3600 });
        tokens.set(tenant, t);
      }
      return t;
    },
    async close() {
      await Promise.all([s3Net.close(), stsNet.close(), catalogNet.close(), athenaNet.close()]);
      await Promise.all([s3.close(), sts.close(), catalog.close(), athena.close()]);
    },
  };
}

/** The server in JWT mode over HTTP, every service through its proxy (or where `endpoints` says). */
export async function startFaultServer(w: World, extra: Record<string, string | undefined> = {}): Promise<HttpServer> {
  return startHttpServer(
    jwtEnv(
      { s3: w.net.s3.endpoint, sts: w.net.sts.endpoint },
      {
        AWS_ENDPOINT_URL_ATHENA: w.net.athena.endpoint,
        QUILT_CATALOG_URL: w.net.catalog.endpoint,
        MCP_TOOLSETS: 'buckets,packages,search,catalog,athena,diagnostics,admin',
        ...extra,
      },
    ),
  );
}

export interface CallResult {
  tool: string;
  isError: boolean;
  text: string;
  // Results of many tools.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  ms: number;
  /** HTTP status, when the answer was not a JSON-RPC result. */
  failure?: string;
}

/** A keep-alive client per server URL (each campaign round may start a server of its own). */
const clients = new Map<string, KeepAliveClient>();

/** One tools/call over HTTP with the tenant's token (JSON-RPC, no session: the server is stateless). */
export async function callTool(url: string, token: string, tool: string, args: Record<string, unknown>): Promise<CallResult> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args } });
  const started = performance.now();
  let client = clients.get(url);
  if (!client) clients.set(url, (client = new KeepAliveClient(url, 256)));
  const reply = await client.post(body, { authorization: `Bearer ${token}` });
  const ms = performance.now() - started;
  let message: { result?: { isError?: boolean; content?: Array<{ type: string; text?: string }>; structuredContent?: unknown }; error?: { message: string } };
  try {
    message = rpcMessage(reply.text) as typeof message;
  } catch {
    return { tool, isError: true, text: reply.text, data: undefined, ms, failure: `HTTP ${reply.status}: ${reply.text.slice(0, 200)}` };
  }
  if (!message.result) return { tool, isError: true, text: message.error?.message ?? reply.text, data: undefined, ms, failure: `HTTP ${reply.status}: ${message.error?.message ?? ''}` };
  const text = (message.result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text ?? '').join('\n');
  return { tool, isError: Boolean(message.result.isError), text, data: message.result.structuredContent, ms };
}

/** Requests each tenant sent to each service, counted from the proxies' exchanges since `marks`. */
export function countRequests(w: World, since: Record<Service, number>): Map<string, Record<Service, number>> {
  const out = new Map<string, Record<Service, number>>();
  for (const service of SERVICES) {
    for (const x of w.net[service].exchanges.slice(since[service])) {
      const tenant = w.tenantOf(x.headers);
      if (!tenant) continue;
      let row = out.get(tenant);
      if (!row) out.set(tenant, (row = { s3: 0, sts: 0, catalog: 0, athena: 0 }));
      row[service]++;
    }
  }
  return out;
}

export const marks = (w: World): Record<Service, number> => ({
  s3: w.net.s3.exchanges.length,
  sts: w.net.sts.exchanges.length,
  catalog: w.net.catalog.exchanges.length,
  athena: w.net.athena.exchanges.length,
});

export const CLEAN: Conditions = { delayMs: 0, connectMs: 0 };
export type { Exchange };
