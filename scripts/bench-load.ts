/**
 * `npm run bench:load`: many tenants at once against JWT mode over HTTP, on 127.0.0.1 only.
 *
 * 100 tenants, each with its own token, role and bucket; the server assumes each role at the local
 * STS (test/helpers/sts.ts) and reads the tenant's object from a small in-process S3 stand-in that
 * plays IAM: an object is served only to credentials issued for its tenant's role. Every answer is
 * checked: HTTP 200, no tool error, and the tenant's own content. A wrong answer or an error fails
 * the run; a 408 or 503 (the server's body deadline or admission limits shedding load it has no
 * time for, when the offered rate is above what the machine serves) is counted and reported. Reports throughput, p50/p99 latency, server CPU and RSS before/after.
 *
 *  1. one process, open loop at BENCH_RATE requests/s (default 1000) for BENCH_SECONDS (default 20),
 *     then at BENCH_RATE_LOW (default 400, below one process's ceiling here) for latency unsaturated;
 *  2. one process, closed loop (BENCH_CONCURRENCY requests in flight, default 64): its ceiling;
 *  3. two processes behind a round-robin keep-alive proxy (node:http, its own process), same two runs;
 *  4. a rolling restart under load (BENCH_RATE_ROLL, default 200/s): each replica in turn is replaced
 *     as ECS replaces a task: a new one starts and is registered once ready, the old one is
 *     deregistered and gets SIGTERM (readiness turns false, it answers what it has and exits 0). Any request
 *     that fails (a reset, a 502 from the proxy) and any exit code but 0 fail the run.
 *
 * The load generator is this process's own (node:http with keep-alive, bounded in flight): the
 * lightest client Node has, with no dependency to install; autocannon cannot check each answer
 * against its tenant. The S3 stand-in rather than s3rver: s3rver costs ~1 ms of CPU per GET
 * (Koa, files on disk), which on 2 cores would measure s3rver, not quilt-mcp.
 * BENCH_SMOKE=1 runs seconds of it with 10 tenants, to prove it works (CI); its figures mean nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { signToken, jwtEnv } from '../test/helpers/http.js';
import { SERVER_ENTRY } from '../test/helpers/mcp.js';
import { startSts, type LocalSts } from '../test/helpers/sts.js';
import { cpuMs, fmt, KeepAliveClient, rpcMessage, rssMiB, SMOKE, spawnServer, stats, type ChildServer } from './bench-lib.js';

const TENANTS = SMOKE ? 10 : Number(process.env.BENCH_TENANTS ?? 100);
const RATE = SMOKE ? 50 : Number(process.env.BENCH_RATE ?? 1000);
/** A second open-loop rate for one process, below its ceiling on 2 cores, for latency when not saturated. */
const RATE_LOW = SMOKE ? 25 : Number(process.env.BENCH_RATE_LOW ?? 400);
const SECONDS = SMOKE ? 1.5 : Number(process.env.BENCH_SECONDS ?? 20);
/** Below what two replicas serve here even when the machine is shared, so that any failure is the restart's. */
const RATE_ROLL = SMOKE ? 25 : Number(process.env.BENCH_RATE_ROLL ?? 200);
const CONCURRENCY = SMOKE ? 8 : Number(process.env.BENCH_CONCURRENCY ?? 64);
/** Open loop: requests in flight beyond this are not sent (and counted), so a slow server cannot grow the client without bound. */
const MAX_IN_FLIGHT = 1024;
/** BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": node options for the quilt-mcp processes (profiling). */
const NODE_ARGS = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

interface Tenant {
  sub: string;
  bucket: string;
  role: string;
  content: string;
  token: string;
  body: string;
}

/** S3 for GetObject/HeadObject of path-style URLs, with IAM: a bucket answers only its tenant's role. */
async function startObjectStore(sts: LocalSts, objects: Map<string, string>) {
  const counts = { requests: 0, denied: 0, unexpected: 0 };
  const xmlError = (res: http.ServerResponse, status: number, code: string) => {
    const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>local</RequestId></Error>`;
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  };
  const server = http.createServer((req, res) => {
    counts.requests++;
    req.resume();
    const url = new URL(req.url ?? '/', 'http://s3');
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const role = sts.issued.get(String(req.headers['x-amz-security-token'] ?? ''));
    if (!role || role.split('/').pop() !== bucket) {
      counts.denied++;
      return xmlError(res, 403, 'AccessDenied');
    }
    // The SDK names the operation in ?x-id=GetObject; any other query (versions, listing) is not played here.
    const query = [...url.searchParams.keys()].filter((k) => k !== 'x-id');
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !key || query.length) {
      counts.unexpected++;
      return xmlError(res, 400, 'NotImplemented');
    }
    const object = objects.get(`${bucket}/${key}`);
    if (object === undefined) return xmlError(res, 404, 'NoSuchKey');
    const bytes = Buffer.from(object);
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    const start = range ? Number(range[1]) : 0;
    const end = range ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
    const slice = bytes.subarray(start, end + 1);
    res.writeHead(range ? 206 : 200, {
      'content-type': 'text/plain',
      'content-length': String(slice.length),
      etag: '"0123456789abcdef0123456789abcdef"',
      'last-modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${end}/${bytes.length}` } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : slice);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/**
 * A round-robin reverse proxy over keep-alive connections, as a load balancer in front of replicas:
 * it asks each replica's /ready every 100 ms and sends requests only to ready ones (as a target
 * group's health check does: a 503 or a refused connection takes a target out at once, a probe that
 * only times out, as on a saturated replica, must fail 3 times), and takes "add URL" / "remove URL"
 * lines on stdin (registering and deregistering targets, as ECS does in a rolling deployment). With
 * no ready target it answers 502, as a balancer does: an error, not a refusal by a server.
 */
const PROXY = `
import http from 'node:http';
import readline from 'node:readline';
const targets = new Map(process.argv.slice(2).map((u) => [u, { url: new URL(u), ready: true, timeouts: 0 }]));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
let next = 0;
setInterval(() => {
  for (const t of targets.values()) {
    if (t.probing) continue;
    t.probing = true;
    const r = http.get({ agent: probeAgent, host: t.url.hostname, port: t.url.port, path: '/ready', timeout: 2000 }, (res) => {
      t.ready = res.statusCode === 200;
      t.timeouts = 0;
      t.probing = false;
      res.resume();
    });
    r.on('timeout', () => {
      t.timedOut = true;
      r.destroy();
    });
    r.on('error', () => {
      t.probing = false;
      if (t.timedOut) {
        t.timedOut = false;
        if (++t.timeouts >= 3) t.ready = false;
      } else t.ready = false;
    });
  }
}, 100).unref();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, u] = line.trim().split(/\\s+/);
  if (cmd === 'add') targets.set(u, { url: new URL(u), ready: false, timeouts: 0 });
  if (cmd === 'remove') targets.delete(u);
});
const server = http.createServer((req, res) => {
  const ready = [...targets.values()].filter((t) => t.ready);
  if (!ready.length) { res.writeHead(502); return res.end('no ready target'); }
  const up = ready[next++ % ready.length].url;
  const headers = { ...req.headers };
  delete headers.connection;
  const out = http.request({ agent, host: up.hostname, port: up.port, path: req.url, method: req.method, headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  out.on('error', (e) => { if (!res.headersSent) res.writeHead(502); res.end(String(e.code)); });
  req.pipe(out);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on http://127.0.0.1:' + server.address().port + '/\\n'));
`;

interface RunResult {
  sent: number;
  ok: number;
  wrong: number;
  errors: number;
  /** 408/503: the server's own limits refusing work it has no time for (overload, not a failure). */
  refused: number;
  skipped: number;
  seconds: number;
  latency: ReturnType<typeof stats>;
  firstProblems: string[];
}

/** One checked call for a tenant; resolves to an error description or undefined. */
async function checkedCall(client: KeepAliveClient, t: Tenant): Promise<string | undefined> {
  let r;
  try {
    r = await client.post(t.body, { authorization: `Bearer ${t.token}`, 'mcp-protocol-version': '2025-06-18' });
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
  if (r.status !== 200) return `error: HTTP ${r.status} ${r.text.slice(0, 200)}`;
  try {
    const m = rpcMessage(r.text);
    const result = m.result as { isError?: boolean; content?: Array<{ text?: string }> } | undefined;
    if (!result || result.isError) return `wrong: ${t.sub} got ${r.text.slice(0, 300)}`;
    // bucket_object_text answers in text: a header line (URI, encoding, bytes), then the content.
    const text = result.content?.[0]?.text ?? '';
    const content = text.slice(text.indexOf('\n') + 1);
    if (content !== t.content) return `wrong: ${t.sub} got another content: ${content.slice(0, 100)}`;
    return undefined;
  } catch {
    return `wrong: ${t.sub} got a malformed answer ${r.text.slice(0, 200)}`;
  }
}

function tally(problems: string[], problem: string | undefined, result: RunResult): void {
  if (problem === undefined) return void result.ok++;
  if (problem.startsWith('wrong')) result.wrong++;
  else if (/^error: HTTP (408|503)\b/.test(problem)) result.refused++;
  else result.errors++;
  if (problems.length < 5) problems.push(problem);
}

/** Open loop: RATE requests/s spread over the tenants in turn, whatever the answers' latency. */
async function openLoop(client: KeepAliveClient, tenants: Tenant[], rate: number, seconds: number): Promise<RunResult> {
  const result: RunResult = { sent: 0, ok: 0, wrong: 0, errors: 0, refused: 0, skipped: 0, seconds, latency: stats([]), firstProblems: [] };
  const times: number[] = [];
  let inFlight = 0;
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed >= seconds) {
        clearInterval(timer);
        return resolve();
      }
      const due = Math.floor(elapsed * rate) - result.sent - result.skipped;
      for (let i = 0; i < due; i++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          result.skipped++;
          continue;
        }
        const t = tenants[(result.sent + result.skipped) % tenants.length] as Tenant;
        result.sent++;
        inFlight++;
        const s0 = performance.now();
        const p = checkedCall(client, t).then((problem) => {
          inFlight--;
          times.push(performance.now() - s0);
          tally(result.firstProblems, problem, result);
          pending.delete(p);
        });
        pending.add(p);
      }
    };
    const timer = setInterval(tick, 2);
  });
  await Promise.all(pending);
  result.latency = stats(times);
  return result;
}

/** Closed loop: `concurrency` requests always in flight, for `seconds`. */
async function closedLoop(client: KeepAliveClient, tenants: Tenant[], concurrency: number, seconds: number): Promise<RunResult> {
  const result: RunResult = { sent: 0, ok: 0, wrong: 0, errors: 0, refused: 0, skipped: 0, seconds, latency: stats([]), firstProblems: [] };
  const times: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; performance.now() < deadline; i += concurrency) {
        const t = tenants[i % tenants.length] as Tenant;
        result.sent++;
        const s0 = performance.now();
        const problem = await checkedCall(client, t);
        times.push(performance.now() - s0);
        tally(result.firstProblems, problem, result);
      }
    }),
  );
  result.latency = stats(times);
  return result;
}

interface Measured {
  run: RunResult;
  cpuPercent: number;
  rss: { before: number[]; peak: number[]; after: number[] };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Until a replica's /ready answers 200 (and the proxy's next probe, 100 ms apart, has seen it). */
async function untilReady(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.ok, () => false);
    if (ok) return sleep(250);
    await sleep(50);
  }
  throw new Error(`replica on port ${port} never became ready`);
}

/** Runs `load` while sampling the servers' CPU and RSS. */
async function measure(pids: number[], load: () => Promise<RunResult>): Promise<Measured> {
  const before = pids.map(rssMiB);
  const peak = [...before];
  const cpu0 = pids.map(cpuMs);
  const t0 = performance.now();
  const poll = setInterval(() => pids.forEach((p, i) => (peak[i] = Math.max(peak[i] ?? 0, rssMiB(p)))), 100);
  const run = await load();
  clearInterval(poll);
  const wall = performance.now() - t0;
  const cpu = pids.reduce((sum, p, i) => sum + cpuMs(p) - (cpu0[i] ?? 0), 0);
  return { run, cpuPercent: (100 * cpu) / wall, rss: { before, peak, after: pids.map(rssMiB) } };
}

const mib = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' + ');

function report(label: string, m: Measured): number {
  const r = m.run;
  const rps = r.ok / r.seconds;
  console.log(`   ${label}`);
  console.log(
    `     ${rps.toFixed(0)} answers/s (${r.sent} sent${r.skipped ? `, ${r.skipped} not sent: ${MAX_IN_FLIGHT} in flight` : ''}), ` +
      `p50 ${fmt(r.latency.p50)}, p99 ${fmt(r.latency.p99)}, max ${fmt(r.latency.max)}; wrong answers ${r.wrong}, errors ${r.errors}` +
        (r.refused ? `, refused by the server's limits (408/503, overload) ${r.refused}` : ''),
  );
  if (m.rss.before.length) console.log(
    `     server CPU ${m.cpuPercent.toFixed(0)}% of a core (${(m.cpuPercent * 10 / Math.max(rps, 1)).toFixed(2)} ms/answer); ` +
      `RSS MiB before ${mib(m.rss.before)}, peak ${mib(m.rss.peak)}, after ${mib(m.rss.after)}`,
  );
  for (const p of r.firstProblems) console.log(`     ! ${p}`);
  return rps;
}

async function main() {
  console.log(
    `quilt-mcp load test (node ${process.version}, ${os.cpus().length} cores, ${TENANTS} tenants, ${RATE} requests/s for ${SECONDS} s, closed loop ${CONCURRENCY} in flight)\n`,
  );
  const sts = await startSts();
  const objects = new Map<string, string>();
  const tenants: Tenant[] = await Promise.all(
    Array.from({ length: TENANTS }, async (_, i) => {
      const n = String(i).padStart(3, '0');
      const bucket = `load-tenant-${n}`;
      const role = `arn:aws:iam::123456789012:role/${bucket}`;
      const content = `tenant ${n}: ${randomBytes(12).toString('hex')}`;
      objects.set(`${bucket}/data/own.txt`, content);
      const token = await signToken({ sub: `tenant-${n}`, role_arn: role, buckets: [bucket], permissions: ['s3:GetObject', 's3:ListBucket'] }, { expiresIn: 7200 });
      const body = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'bucket_object_text', arguments: { uri: `s3://${bucket}/data/own.txt` } } });
      return { sub: `tenant-${n}`, bucket, role, content, token, body };
    }),
  );
  const s3 = await startObjectStore(sts, objects);
  // MCP_DRAIN_DELAY: on SIGTERM, a second of readiness false while still serving, for the proxy's probe to see.
  const env = jwtEnv({ s3: s3.endpoint, sts: sts.endpoint }, { MCP_LOG_LEVEL: 'notice', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', MCP_DRAIN_DELAY: '1' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-bench-load-'));
  const proxyFile = path.join(dir, 'proxy.mjs');
  writeFileSync(proxyFile, PROXY);

  let failed = false;
  const check = (m: Measured) => {
    if (m.run.wrong || m.run.errors) failed = true;
  };
  /** Every tenant's first calls (STS AssumeRole, client set-up) on every replica, then a short warm-up. */
  const warm = async (client: KeepAliveClient, replicas: number) => {
    for (let round = 0; round < 2 * replicas; round++) {
      const problems = await Promise.all(tenants.map((t) => checkedCall(client, t)));
      const bad = problems.filter((p) => p !== undefined);
      if (bad.length) throw new Error(`warm-up failed: ${bad.slice(0, 3).join('; ')}`);
    }
    await closedLoop(client, tenants, CONCURRENCY, SMOKE ? 0.3 : 2);
  };

  const servers: ChildServer[] = [];
  try {
    // 1-2: one process.
    const one = await spawnServer(SERVER_ENTRY, ['--http', '--port', '0'], env, NODE_ARGS);
    servers.push(one);
    const onePid = one.child.pid ?? 0;
    const rssStart = rssMiB(onePid);
    let client = new KeepAliveClient(one.url, MAX_IN_FLIGHT);
    await warm(client, 1);
    console.log(`1. One process (RSS ${rssStart.toFixed(0)} MiB after start, ${rssMiB(onePid).toFixed(0)} MiB after warm-up; ${sts.assumeRoleCalls.length} STS AssumeRole calls)`);
    const open1 = await measure([onePid], () => openLoop(client, tenants, RATE, SECONDS));
    check(open1);
    report(`open loop, ${RATE} requests/s target:`, open1);
    const low1 = await measure([onePid], () => openLoop(client, tenants, RATE_LOW, SECONDS));
    check(low1);
    report(`open loop, ${RATE_LOW} requests/s:`, low1);
    const closed1 = await measure([onePid], () => closedLoop(client, tenants, CONCURRENCY, SECONDS / 2));
    check(closed1);
    const ceiling1 = report(`closed loop, ${CONCURRENCY} in flight (ceiling):`, closed1);
    client.close();

    // The same process behind the proxy: what the proxy itself costs on this machine.
    const proxy1 = await spawnServer(proxyFile, [one.url], env);
    servers.push(proxy1);
    client = new KeepAliveClient(proxy1.url, MAX_IN_FLIGHT);
    await closedLoop(client, tenants, CONCURRENCY, SMOKE ? 0.3 : 2);
    const closed1p = await measure([onePid], () => closedLoop(client, tenants, CONCURRENCY, SECONDS / 2));
    check(closed1p);
    const ceiling1p = report(`closed loop through the proxy, ${CONCURRENCY} in flight:`, closed1p);
    client.close();
    await proxy1.stop();

    // 3: a second replica behind the proxy.
    const two = await spawnServer(SERVER_ENTRY, ['--http', '--port', '0'], env, NODE_ARGS);
    servers.push(two);
    const proxy = await spawnServer(proxyFile, [one.url, two.url], env, [], { stdin: true });
    servers.push(proxy);
    const pids = [onePid, two.child.pid ?? 0];
    client = new KeepAliveClient(proxy.url, MAX_IN_FLIGHT);
    await warm(client, 2);
    console.log(`\n2. Two processes behind a round-robin keep-alive proxy (${sts.assumeRoleCalls.length} STS AssumeRole calls in all: each replica assumes each role once)`);
    const open2 = await measure(pids, () => openLoop(client, tenants, RATE, SECONDS));
    check(open2);
    report(`open loop, ${RATE} requests/s target:`, open2);
    const closed2 = await measure(pids, () => closedLoop(client, tenants, CONCURRENCY, SECONDS / 2));
    check(closed2);
    const ceiling2 = report(`closed loop, ${CONCURRENCY} in flight (ceiling):`, closed2);
    console.log(
      `\n   scale-out: 2 replicas ${ceiling2.toFixed(0)}/s vs 1 replica ${ceiling1.toFixed(0)}/s direct (${(ceiling2 / ceiling1).toFixed(2)}x) ` +
        `and ${ceiling1p.toFixed(0)}/s through the same proxy (${(ceiling2 / ceiling1p).toFixed(2)}x); target 1.7x`,
    );

    // 4: a rolling restart while the load runs: each replica replaced in turn.
    const replicas = [one, two];
    const exits: Array<number | null> = [];
    const register = (line: string) => proxy.child.stdin?.write(`${line}\n`);
    let restarted = 0;
    const restart = async () => {
      await sleep(SMOKE ? 300 : 2_000);
      for (let i = 0; i < replicas.length; i++) {
        const fresh = await spawnServer(SERVER_ENTRY, ['--http', '--port', '0'], env, NODE_ARGS);
        servers.push(fresh);
        register(`add ${fresh.url}`);
        await untilReady(fresh.port);
        // ECS's order: deregister, then SIGTERM (the replica drains what it still has); the proxy's
        // probe of /ready would also take it out, as a Kubernetes readiness probe does.
        register(`remove ${replicas[i]!.url}`);
        await sleep(100);
        exits.push(await replicas[i]!.stop());
        replicas[i] = fresh;
        restarted++;
      }
    };
    const rollSeconds = SMOKE ? 6 : 20;
    const rolling = (await Promise.all([measure([], () => openLoop(client, tenants, RATE_ROLL, rollSeconds)), restart()]))[0];
    console.log(`\n3. Rolling restart under load: ${restarted} of 2 replicas replaced (new one registered, old one SIGTERM: exit codes ${exits.join(', ')})`);
    report(`open loop, ${RATE_ROLL} requests/s during the restart:`, rolling);
    if (rolling.run.wrong || rolling.run.errors || restarted !== 2 || exits.some((c) => c !== 0)) failed = true;
    client.close();
    console.log(`\n   S3 stand-in: ${s3.counts.requests} requests, ${s3.counts.denied} denied, ${s3.counts.unexpected} unexpected`);
    if (s3.counts.denied || s3.counts.unexpected) failed = true;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await s3.close();
    await sts.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (failed) console.error('\nFAILED: wrong answers, errors or unexpected S3 requests (see above)');
  process.exit(failed ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
