/**
 * `npm run soak -- --minutes 30`: mixed tool calls from many tenants over HTTP (JWT mode), for a
 * long time, against the local S3 (s3rver behind its IAM proxy) and STS; measures whether the
 * server's memory, open file descriptors and latency stay flat, and that no answer is wrong.
 *
 * Each tenant has its own token and role, its own objects under `t/<tenant>/` and a package of its
 * own; the calls are a fixed mix (reads of objects, listings, package browsing and listing,
 * object info, and a few package writes), open loop at --rate requests/s. Every answer is checked
 * against what that tenant must see (its own object's text, its own package's entries...): a wrong
 * answer or a tool error fails the run; a 429/503 or a call refused after waiting too long for its
 * turn (the server shedding load it has no room for) is counted and reported, not failed.
 *
 * Every --sample seconds: the server's RSS, V8 heap used and open fds (its Prometheus metrics,
 * MCP_METRICS_PORT), and the p99 latency of the calls finished in that window. After a warm-up
 * (the first fifth of the run), a least-squares slope of each, per minute, next to the noise (the
 * residuals' standard deviation) and the growth the slope adds over the measured window: "flat"
 * when that growth is within twice the noise or below a small absolute floor.
 *
 * Options: --minutes (30), --rate (300), --tenants (100), --sample (seconds, 10), --json <file>
 * (writes the samples and the summary). The test (test/soak.test.ts) runs 2 minutes of it.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { freePort, jwtEnv, signToken } from '../test/helpers/http.js';
import { SERVER_ENTRY } from '../test/helpers/mcp.js';
import { startS3, type LocalS3 } from '../test/helpers/s3.js';
import { startSts, type LocalSts } from '../test/helpers/sts.js';
import { KeepAliveClient, rpcMessage, spawnServer, stats, type ChildServer } from './bench-lib.js';

export interface SoakOptions {
  minutes: number;
  rate: number;
  tenants: number;
  sampleSeconds: number;
  log?: (line: string) => void;
}

export interface Sample {
  /** Seconds since the load started. */
  t: number;
  rssMiB: number;
  heapMiB: number;
  fds: number;
  /** p99 latency of the calls finished in this window, ms. */
  p99: number;
  calls: number;
}

export interface Slope {
  /** Growth per minute (least squares). */
  perMinute: number;
  /** The growth that slope adds over the measured window. */
  growth: number;
  /** Standard deviation of the residuals. */
  noise: number;
  mean: number;
  flat: boolean;
}

export interface SoakResult {
  calls: number;
  /** Requests/s achieved. */
  rate: number;
  wrong: string[];
  errors: string[];
  /** Refused for load (429/503), and sends the client skipped because too many were in flight. */
  shed: number;
  skipped: number;
  latency: ReturnType<typeof stats>;
  samples: Sample[];
  slopes: Record<'rssMiB' | 'heapMiB' | 'fds' | 'p99', Slope>;
  byTool: Record<string, number>;
}

const BUCKET = 'soak';
const ROLE = (t: string) => `arn:aws:iam::123456789012:role/${t}`;
/** The tool error of a call the server refused for load (src/fair-limiter.ts). */
const BUSY = /^This server is busy with other .*for its turn/;
/** Requests in flight beyond this are not sent (counted as skipped): a slow server must not grow the client. */
const MAX_IN_FLIGHT = 512;
/** Below these a slope's growth over the window is noise whatever the regression says (MiB, fds, ms). */
const FLOOR: Record<keyof SoakResult['slopes'], number> = { rssMiB: 16, heapMiB: 8, fds: 4, p99: 25 };

interface Tenant {
  name: string;
  token: string;
  /** The top hash of its package. */
  top: string;
  text: string;
}

type Check = (data: Record<string, unknown> | undefined, text: string) => string | undefined;
interface Mix {
  tool: string;
  weight: number;
  args(t: Tenant, n: number): Record<string, unknown>;
  check: (t: Tenant) => Check;
}

const MIX: Mix[] = [
  {
    tool: 'bucket_object_text',
    weight: 30,
    args: (t) => ({ uri: `s3://${BUCKET}/t/${t.name}/notes.txt` }),
    check: (t) => (_d, text) => (text.includes(t.text) ? undefined : `not its own text: ${text.slice(0, 120)}`),
  },
  {
    tool: 'bucket_objects_list',
    weight: 20,
    args: (t) => ({ bucket: BUCKET, prefix: `t/${t.name}/` }),
    check: (t) => (d) => {
      const keys = ((d?.items ?? d?.objects ?? []) as Array<{ key?: string }>).map((o) => o.key ?? '');
      return keys.some((k) => k === `t/${t.name}/notes.txt`) && keys.every((k) => k.startsWith(`t/${t.name}/`)) ? undefined : `listing: ${JSON.stringify(keys).slice(0, 160)}`;
    },
  },
  {
    tool: 'bucket_object_info',
    weight: 15,
    args: (t) => ({ uri: `s3://${BUCKET}/t/${t.name}/notes.txt` }),
    check: (t) => (d) => (d?.size === Buffer.byteLength(t.text) ? undefined : `size ${String(d?.size)}`),
  },
  {
    tool: 'package_browse',
    weight: 20,
    args: (t) => ({ bucket: BUCKET, name: `p/${t.name}`, recursive: true }),
    check: (t) => (d) => {
      const keys = ((d?.items ?? []) as Array<{ logical_key?: string }>).map((e) => e.logical_key).sort();
      return d?.top_hash === t.top && JSON.stringify(keys) === JSON.stringify(['a.txt', 'b/c.txt']) ? undefined : `browse: ${String(d?.top_hash)} ${JSON.stringify(keys)}`;
    },
  },
  {
    tool: 'package_revisions',
    weight: 10,
    args: (t) => ({ bucket: BUCKET, name: `p/${t.name}` }),
    check: (t) => (_d, text) => (text.includes(t.top) ? undefined : `revisions lack ${t.top}`),
  },
  {
    // A write now and then: a new package of the tenant's, named by the call's number.
    tool: 'package_create',
    weight: 2,
    args: (t, n) => ({ bucket: BUCKET, name: `w-${t.name}/n${n}`, entries: [{ logical_key: 'x.txt', text: `${t.name} ${n}` }] }),
    check: () => (d) => (typeof d?.top_hash === 'string' && /^[0-9a-f]{64}$/.test(d.top_hash) ? undefined : `no top hash: ${JSON.stringify(d).slice(0, 120)}`),
  },
];

/** Least squares of y over x, and how flat it is. */
function slope(xs: number[], ys: number[], floor: number): Slope {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const b = sxx > 0 ? sxy / sxx : 0;
  const residuals = ys.map((y, i) => y - (my + b * (xs[i]! - mx)));
  const noise = Math.sqrt(residuals.reduce((a, r) => a + r * r, 0) / Math.max(1, n - 2));
  const window = n > 1 ? xs[n - 1]! - xs[0]! : 0;
  const growth = b * window;
  return { perMinute: b * 60, growth, noise, mean: my, flat: growth <= Math.max(2 * noise, floor) };
}

async function metrics(port: number): Promise<{ rssMiB: number; heapMiB: number; fds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    rssMiB: value('quilt_mcp_process_resident_memory_bytes') / 2 ** 20,
    heapMiB: value('quilt_mcp_nodejs_heap_size_used_bytes') / 2 ** 20,
    fds: value('quilt_mcp_process_open_fds'),
  };
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  let s3: LocalS3 | undefined;
  let sts: LocalSts | undefined;
  let server: ChildServer | undefined;
  const client: { c?: KeepAliveClient } = {};
  try {
    [s3, sts] = await Promise.all([startS3({ buckets: [BUCKET] }), startSts()]);
    const metricsPort = await freePort();
    // Notice: the listening line, not a log line per request (the soak would measure its logging).
    server = await spawnServer(SERVER_ENTRY, ['--http', '--port', '0'], jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, { MCP_LOG_LEVEL: 'notice', MCP_METRICS_PORT: String(metricsPort) }));
    // Interrupted (Ctrl-C): the server goes too (s3rver and STS are this process's).
    const child = server.child;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (child.kill('SIGKILL'), process.exit(130)));
    const c = (client.c = new KeepAliveClient(server.url, 256));
    let id = 0;
    const send = async (token: string, tool: string, args: Record<string, unknown>) => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: tool, arguments: args } });
      const reply = await c.post(body, { authorization: `Bearer ${token}` });
      if (reply.status !== 200) return { status: reply.status, isError: true, text: reply.text.slice(0, 200), data: undefined };
      const m = rpcMessage(reply.text);
      const result = m.result as { isError?: boolean; content?: Array<{ text?: string }>; structuredContent?: Record<string, unknown> } | undefined;
      const text = (result?.content ?? []).map((x) => x.text ?? '').join('\n');
      return { status: 200, isError: !result || Boolean(result.isError), text: result ? text : (m.error?.message ?? ''), data: result?.structuredContent };
    };

    // The tenants: objects and a package each, made through the server (as the tenant).
    const tenants: Tenant[] = [];
    for (let i = 0; i < o.tenants; i += 20) {
      tenants.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(20, o.tenants - i) }, async (_, k) => {
            const name = `tenant${String(i + k).padStart(3, '0')}`;
            const text = `notes of ${name}: ${'lorem ipsum '.repeat(20)}`;
            await s3!.put(BUCKET, `t/${name}/notes.txt`, text, 'text/plain');
            const token = await signToken({ sub: name, role_arn: ROLE(name) }, { expiresIn: 24 * 3600 });
            const made = await send(token, 'package_create', { bucket: BUCKET, name: `p/${name}`, entries: [{ logical_key: 'a.txt', text: 'a' }, { logical_key: 'b/c.txt', text: name }] });
            if (made.isError) throw new Error(`setup of ${name} failed: ${made.text}`);
            return { name, token, text, top: String(made.data?.top_hash) };
          }),
        )),
      );
    }

    const weights = MIX.reduce((a, m) => a + m.weight, 0);
    const pick = (n: number): Mix => {
      let r = (n * 7919) % weights;
      for (const m of MIX) if ((r -= m.weight) < 0) return m;
      return MIX[0]!;
    };
    const result: SoakResult = { calls: 0, rate: 0, wrong: [], errors: [], shed: 0, skipped: 0, latency: stats([]), samples: [], slopes: {} as SoakResult['slopes'], byTool: {} };
    const all: number[] = [];
    let window: number[] = [];
    let inFlight = 0;
    const durationMs = o.minutes * 60_000;
    const started = performance.now();
    const pending = new Set<Promise<void>>();
    let n = 0;
    const one = async (k: number) => {
      const tenant = tenants[k % tenants.length]!;
      const m = pick(k);
      const t0 = performance.now();
      inFlight++;
      try {
        const r = await send(tenant.token, m.tool, m.args(tenant, k));
        const ms = performance.now() - t0;
        if (r.status === 429 || r.status === 503) return void result.shed++;
        all.push(ms);
        window.push(ms);
        result.calls++;
        result.byTool[m.tool] = (result.byTool[m.tool] ?? 0) + 1;
        // The fair-share limiter refusing a call that waited too long for its turn: shed, as a 503 is.
        if (r.isError && BUSY.test(r.text)) return void result.shed++;
        if (r.isError) {
          const what = `${m.tool} ${tenant.name}: HTTP ${r.status}: ${r.text.slice(0, 200)}`;
          if (result.errors.length < 5) log(`error: ${what}`);
          result.errors.push(result.errors.length < 20 ? what : '');
          return;
        }
        const wrong = m.check(tenant)(r.data, r.text);
        if (wrong) result.wrong.push(`${m.tool} ${tenant.name}: ${wrong}`);
      } catch (err) {
        result.errors.push(`${m.tool} ${tenant.name}: ${String(err)}`);
      } finally {
        inFlight--;
      }
    };

    const sampler = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      const lat = stats(window);
      const calls = window.length;
      window = [];
      void metrics(metricsPort).then(
        (m) => {
          const s: Sample = { t, ...m, p99: lat.p99, calls };
          result.samples.push(s);
          log(`t=${t.toFixed(0).padStart(5)} s  rss ${m.rssMiB.toFixed(1)} MiB  heap ${m.heapMiB.toFixed(1)} MiB  fds ${m.fds}  p99 ${lat.p99.toFixed(1)} ms  ${(calls / o.sampleSeconds).toFixed(0)} calls/s  wrong ${result.wrong.length}  errors ${result.errors.length}  shed ${result.shed}`);
        },
        (err: unknown) => log(`metrics unreadable: ${String(err)}`),
      );
    }, o.sampleSeconds * 1000);

    // Open loop: call k is due at k / rate seconds.
    while (performance.now() - started < durationMs) {
      const due = started + (n * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (inFlight >= MAX_IN_FLIGHT) {
        result.skipped++;
      } else {
        const p = one(n);
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      n++;
    }
    await Promise.all(pending);
    clearInterval(sampler);
    const seconds = (performance.now() - started) / 1000;
    result.rate = result.calls / seconds;
    result.latency = stats(all);
    const measured = result.samples.filter((s) => s.t >= seconds / 5);
    const xs = measured.map((s) => s.t);
    for (const k of ['rssMiB', 'heapMiB', 'fds', 'p99'] as const) result.slopes[k] = slope(xs, measured.map((s) => s[k]), FLOOR[k]);
    return result;
  } finally {
    client.c?.close();
    await server?.stop();
    await Promise.all([s3?.close(), sts?.close()]);
  }
}

export function summary(r: SoakResult, o: SoakOptions): string {
  const lines = [
    `soak: ${o.minutes} min, ${o.tenants} tenants, offered ${o.rate}/s, achieved ${r.rate.toFixed(1)} calls/s, ${r.calls} calls, ${r.wrong.length} wrong, ${r.errors.length} errors, ${r.shed} shed (429/503 or busy), ${r.skipped} not sent (over ${MAX_IN_FLIGHT} in flight)`,
    `latency: p50 ${r.latency.p50.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms, max ${r.latency.max.toFixed(1)} ms`,
    `calls: ${Object.entries(r.byTool).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    'after the first fifth:   mean      slope/min   growth over window   noise (sd)   flat',
  ];
  for (const [k, s] of Object.entries(r.slopes)) lines.push(`  ${k.padEnd(8)} ${s.mean.toFixed(1).padStart(12)} ${s.perMinute.toFixed(3).padStart(12)} ${s.growth.toFixed(2).padStart(16)} ${s.noise.toFixed(2).padStart(14)}   ${s.flat ? 'yes' : 'NO'}`);
  for (const w of r.wrong.slice(0, 10)) lines.push(`WRONG ${w}`);
  for (const e of r.errors.filter(Boolean).slice(0, 10)) lines.push(`ERROR ${e}`);
  return lines.join('\n');
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const o: SoakOptions = { minutes: arg('minutes', 30), rate: arg('rate', 300), tenants: arg('tenants', 100), sampleSeconds: arg('sample', 10) };
  const jsonAt = process.argv.indexOf('--json');
  runSoak(o).then(
    (r) => {
      console.log(summary(r, o));
      if (jsonAt >= 0) writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ options: o, ...r }, null, 1));
      const ok = r.wrong.length === 0 && r.errors.length === 0 && Object.values(r.slopes).every((s) => s.flat);
      process.exit(ok ? 0 : 1);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(2);
    },
  );
}
