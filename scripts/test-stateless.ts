/**
 * `npm run test:stateless`: the project's `make test-stateless-mcp`. The real image (built by
 * scripts/image.sh when podman has none) runs as deployed: read-only root, tmpfs /tmp, HOME=/tmp,
 * the non-root user, JWT mode. Against it, as a user of the documents would:
 *
 *  1. a quilt3 login on a local catalog (test/helpers/catalog.ts; quilt3's auth.json and config.yml);
 *  2. `quilt-mcp jwt generate --auto-extract --role-arn ... --secret ...` (the catalog token from
 *     that login, the role the server assumes at a local STS);
 *  3. through the image, with the token: search_catalog for packages, for objects and for a file
 *     name (README.md) each return at least one result, and the bucket tools read the bucket
 *     (a local S3) as the token's role;
 *  4. what an operator sees: /health, /ready, the image's HEALTHCHECK, JSON request log lines
 *     without the token, metrics behind their token, nothing written outside /tmp, and a stop
 *     (SIGTERM) that drains and exits 0.
 *
 * The container uses the host's network (--network=host), so it reaches the stand-ins on
 * 127.0.0.1 as a task reaches AWS and the catalog. Where podman cannot run, it says so in one line
 * and fails. QUILT_MCP_IMAGE names another image (default localhost/quilt-mcp:local).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startCatalog } from '../test/helpers/catalog.js';
import { defaultFixtures, graphqlHandler } from '../test/helpers/catalog-graphql.js';
import { connectHttp, freePort } from '../test/helpers/http.js';
import { call, isolatedEnv, objectText, SERVER_ENTRY } from '../test/helpers/mcp.js';
import { startS3 } from '../test/helpers/s3.js';
import { startSts } from '../test/helpers/sts.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IMAGE = process.env.QUILT_MCP_IMAGE ?? 'localhost/quilt-mcp:local';
const NAME = `quilt-mcp-stateless-${process.pid}`;
const BUCKET = 'quilt-demo';
const ROLE = 'arn:aws:iam::123456789012:role/QuiltStatelessTest';
const SECRET = randomBytes(32).toString('hex');
const METRICS_TOKEN = randomBytes(16).toString('hex');
const README = '# Quilt demo bucket\n\nData for the stateless test.\n';
const exec = promisify(execFile);
const podmanEnv = { ...process.env, CONTAINERS_CONF: path.join(ROOT, 'scripts', 'containers.conf') };

async function podman(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await exec('podman', args, { env: podmanEnv, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: stdout.trim(), err: stderr.trim() };
  } catch (e) {
    const x = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 127, out: (x.stdout ?? '').trim(), err: (x.stderr ?? String(e)).trim() };
  }
}

let passed = 0;
let failed = 0;
function check(what: string, ok: boolean, detail = ''): void {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? '  ✓' : '  ✗'} ${what}${!ok && detail ? `: ${detail.slice(0, 600)}` : ''}`);
}

async function waitFor(url: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function main(): Promise<number> {
  const info = await podman('info', '--format', '{{.Host.OCIRuntime.Name}}');
  if (info.code !== 0) {
    console.error(`test:stateless: podman cannot run here (${(info.err.split('\n').pop() ?? '').slice(0, 200) || 'not installed'}); the image test needs it (CI installs it: bash scripts/image.sh, as root on Debian).`);
    return 1;
  }
  if ((await podman('image', 'exists', IMAGE)).code !== 0) {
    console.log(`test:stateless: building ${IMAGE}`);
    const built = spawnSync('bash', [path.join(ROOT, 'scripts', 'image.sh'), IMAGE], { stdio: 'inherit', env: podmanEnv });
    if (built.status !== 0) return 1;
  }
  const size = Number((await podman('image', 'inspect', IMAGE, '--format', '{{.Size}}')).out);
  console.log(`test:stateless: ${IMAGE} (${(size / 1e6).toFixed(0)} MB), ${NAME}`);

  // 1. The stand-ins: S3 with the bucket, the STS the server assumes the role at, the catalog.
  const s3 = await startS3({ buckets: [BUCKET] });
  await s3.put(BUCKET, 'README.md', README, 'text/markdown');
  await s3.put(BUCKET, 'data/measurements.csv', 'sample,ph\nA1,7.1\n', 'text/csv');
  const sts = await startSts();
  const fixtures = defaultFixtures();
  fixtures.objects.push({ bucket: BUCKET, key: 'README.md', version: 'v-readme', size: README.length, modified: '2026-03-01T00:00:00.000Z' });
  const catalog = await startCatalog();
  catalog.graphql = graphqlHandler(fixtures);
  const user = 'stateless-user';
  const session = catalog.login(user, 3600);
  const home = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-stateless-'));
  const quilt3 = path.join(home, '.local', 'share', 'Quilt');
  mkdirSync(quilt3, { recursive: true });
  writeFileSync(path.join(quilt3, 'config.yml'), `navigator_url: ${catalog.url}\nregistryUrl: ${catalog.url}\ntelemetry_disabled: true\n`);
  writeFileSync(path.join(quilt3, 'auth.json'), JSON.stringify({ [catalog.url]: { refresh_token: session.refresh_token, access_token: session.access_token, expires_at: session.expires_at } }), { mode: 0o600 });

  try {
    // 2. The documents' token command, on the host, from the quilt3 login.
    const env = { ...isolatedEnv({}), HOME: home, XDG_DATA_HOME: path.join(home, '.local', 'share') };
    // Not spawnSync: the catalog it asks runs in this process.
    const gen = await exec(process.execPath, [SERVER_ENTRY, 'jwt', 'generate', '--auto-extract', '--role-arn', ROLE, '--secret', SECRET], { env }).then(
      ({ stdout }) => ({ ok: true, stdout, stderr: '' }),
      (e: { stdout?: string; stderr?: string }) => ({ ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? String(e) }),
    );
    check('jwt generate --auto-extract --role-arn ARN --secret S', gen.ok, gen.stderr);
    if (!gen.ok) return 1;
    const token = gen.stdout.trim();
    const claims = decodeJwt(token);
    check('the token carries the login\'s catalog token, the catalog and the role', claims.catalog_token === session.access_token && claims.catalog_url === catalog.url && claims.role_arn === ROLE && claims.sub === user, JSON.stringify({ ...claims, catalog_token: '...' }));

    // 3. The image, as deployed.
    const port = await freePort();
    await podman('rm', '-f', NAME);
    const run = await podman(
      'run', '-d', '--name', NAME, '--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp', '--network=host',
      '-e', `PORT=${port}`, '-e', 'MCP_HOST=127.0.0.1', '-e', `MCP_JWT_SECRET=${SECRET}`, '-e', `QUILT_CATALOG_URL=${catalog.url}`,
      '-e', 'AWS_REGION=us-east-1', '-e', 'AWS_ACCESS_KEY_ID=TASKROLEKEY', '-e', 'AWS_SECRET_ACCESS_KEY=task-role-secret',
      '-e', `AWS_ENDPOINT_URL_S3=${s3.endpoint}`, '-e', `AWS_ENDPOINT_URL_STS=${sts.endpoint}`,
      '-e', 'AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED', '-e', 'AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED',
      '-e', 'MCP_LOG_FORMAT=json', '-e', `MCP_METRICS_TOKEN=${METRICS_TOKEN}`,
      IMAGE,
    );
    check('podman run --read-only --tmpfs /tmp (JWT mode)', run.code === 0, run.err);
    if (run.code !== 0) return 1;
    const base = `http://127.0.0.1:${port}`;
    const up = await waitFor(`${base}/health`, 30_000);
    check('/health answers', up, (await podman('logs', NAME)).err);
    if (!up) return 1;
    const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
    check('/health: ok, JWT mode, serving', health.status === 'ok' && health.mode === 'jwt' && health.state === 'serving', JSON.stringify(health));
    check('/ready: 200', (await fetch(`${base}/ready`)).status === 200);
    const hc = await podman('healthcheck', 'run', NAME);
    check("the image's HEALTHCHECK passes (podman healthcheck run)", hc.code === 0, hc.err || hc.out);
    const inspect = await podman('image', 'inspect', IMAGE, '--format', '{{.Config.User}}|{{json .Config.Healthcheck}}|{{.Config.Env}}');
    check('image: user node, HEALTHCHECK on /health, MCP_REQUIRE_JWT=true', /^node\|.*\/health.*\|.*MCP_REQUIRE_JWT=true/.test(inspect.out), inspect.out);
    const uid = await podman('exec', NAME, 'id', '-u');
    check('runs as uid 1000 (node)', uid.out === '1000', uid.out || uid.err);
    const rootWrite = await podman('exec', NAME, 'sh', '-c', 'touch /app/x || touch /x || touch /usr/local/x');
    check('the root filesystem is read-only', rootWrite.code !== 0, rootWrite.out);
    check('/tmp is writable', (await podman('exec', NAME, 'sh', '-c', 'touch /tmp/x && rm /tmp/x')).code === 0);

    // The MCP session, as a client with the token.
    const client = await connectHttp(`${base}/mcp`, token);
    const { tools } = await client.listTools();
    check(`tools/list (${tools.length} tools)`, tools.length > 10);
    const searches: Array<[string, Record<string, unknown>]> = [
      ['packages', { query: 'cells', scope: 'package' }],
      ['objects', { query: 'cells', scope: 'file' }],
      ['a file name, README.md', { query: 'README.md' }],
    ];
    for (const [what, args] of searches) {
      const r = await call(client, 'search_catalog', args);
      const n = (r.data?.results as unknown[] | undefined)?.length ?? 0;
      check(`search_catalog for ${what}: ${n} results from the catalog`, !r.isError && n >= 1 && r.data?.source === 'catalog', r.text);
    }
    const list = await call(client, 'bucket_objects_list', { bucket: BUCKET });
    check('bucket_objects_list', !list.isError && JSON.stringify(list.data).includes('README.md'), list.text);
    const text = await call(client, 'bucket_object_text', { uri: `s3://${BUCKET}/README.md` });
    // bucket_object_text answers in its text only (a head line, then the content).
    check('bucket_object_text reads README.md as the token\'s role', !text.isError && objectText(text).content === README, text.text);
    const infoCall = await call(client, 'bucket_object_info', { uri: `s3://${BUCKET}/data/measurements.csv` });
    check('bucket_object_info', !infoCall.isError, infoCall.text);
    const assumed = sts.assumeRoleCalls.filter((c) => c.roleArn === ROLE);
    check('the server assumed the token\'s role with its own identity, as the token\'s user', assumed.length >= 1 && assumed.every((c) => c.sourceIdentity === user && c.callerAccessKeyId === 'TASKROLEKEY'), JSON.stringify(assumed));
    const status = await call(client, 'auth_status');
    check('auth_status: the catalog as the login\'s user', JSON.stringify(status.data).includes(user), status.text);
    await client.close();

    // What an operator sees.
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    const metricsText = await metrics.text();
    check('/metrics with its token: tool calls counted', metrics.status === 200 && /quilt_mcp_tool_calls_total\{tool="search_catalog",outcome="ok"\} 3/.test(metricsText), metricsText.slice(0, 300));
    check('/metrics without the token: 401', (await fetch(`${base}/metrics`)).status === 401);
    const logs = await podman('logs', NAME);
    const lines = `${logs.out}\n${logs.err}`.split('\n').filter((l) => l.startsWith('{'));
    const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    check(
      `JSON request log: ${requests.length} lines with request id, principal, tool, duration, outcome`,
      requests.some((l) => l.tool === 'search_catalog' && l.principal === user && l.outcome === 'ok' && typeof l.request_id === 'string' && typeof l.duration_ms === 'number'),
      lines.slice(-5).join('\n'),
    );
    check('no token or secret in the log', !`${logs.out}${logs.err}`.includes(token.split('.')[2]!) && !`${logs.out}${logs.err}`.includes(session.access_token) && !`${logs.out}${logs.err}`.includes(SECRET));
    // podman itself mounts /etc/hosts, /etc/resolv.conf and /etc/hostname (and /run/.containerenv) into every container.
    const diff = await podman('diff', NAME);
    const written = diff.out.split('\n').filter((l) => l && !/^[AC] (?:\/etc|\/etc\/(?:hosts|resolv\.conf|hostname)|\/run|\/run\/\.containerenv)$/.test(l));
    check('nothing written outside /tmp (podman diff: only the files podman mounts)', diff.code === 0 && written.length === 0, written.join(', ') || diff.err);

    // ECS stops a task with SIGTERM, then SIGKILL after stopTimeout (30 s).
    const stop = await podman('stop', '-t', '30', NAME);
    const exit = await podman('inspect', NAME, '--format', '{{.State.ExitCode}}');
    const after = await podman('logs', NAME);
    check('SIGTERM: drained and exited 0', stop.code === 0 && exit.out === '0' && /Drained/.test(after.out + after.err), `exit ${exit.out}: ${(after.out + after.err).split('\n').slice(-3).join(' | ')}`);
  } finally {
    await podman('rm', '-f', NAME);
    await s3.close();
    await sts.close();
    await catalog.close();
    rmSync(home, { recursive: true, force: true });
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('test:stateless failed:', err);
    process.exit(1);
  },
);
