/**
 * The container image, as far as it can be checked without a Docker engine (this project's CI has
 * none): the Dockerfile's required lines, the deploy/ files, and the image's exact entry command
 * (read from the Dockerfile's CMD and ENV, so the test follows the file) run from the bundled server
 * (no node_modules, as in the image) as a non-root user with a read-only, empty HOME. Also the
 * server's own AWS identity in JWT mode: only the container's sources (environment, web identity,
 * container credentials), never ~/.aws.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { buildBundle, type BuiltBundle } from './helpers/bundle.js';
import { connectHttp, listeningPort, signToken, TEST_SECRET } from './helpers/http.js';
import { call, objectText } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';
import { startSts, type LocalSts } from './helpers/sts.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');

interface Instruction {
  /** Upper-case instruction (FROM, RUN, ...). */
  op: string;
  args: string;
  /** Index of the build stage (0 = first FROM). */
  stage: number;
}

/** Dockerfile instructions: continuation lines joined, comments and parser directives dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+([\s\S]*)$/.exec(full);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2]!.trim(), stage });
  }
  return out;
}

/** `ENV A=1 B="two"` (the key=value form) as an object. */
function envOf(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.op === 'ENV')) {
    for (const m of i.args.matchAll(/(\w+)=("([^"]*)"|\S+)/g)) env[m[1]!] = m[3] ?? m[2]!;
  }
  return env;
}

/** The exec-form JSON array of a CMD (or of HEALTHCHECK ... CMD). */
function execForm(args: string): string[] {
  const json = args.slice(args.indexOf('['));
  const parsed = JSON.parse(json) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new Error(`not an exec form: ${args}`);
  return parsed;
}

const DOCKERFILE = parseDockerfile(read('Dockerfile'));
const LAST_STAGE = Math.max(...DOCKERFILE.map((i) => i.stage));
const RUNTIME = DOCKERFILE.filter((i) => i.stage === LAST_STAGE);
const IMAGE_ENV = envOf(RUNTIME);
const one = (op: string) => {
  const found = RUNTIME.filter((i) => i.op === op);
  expect(found, `exactly one ${op} in the runtime stage`).toHaveLength(1);
  return found[0]!;
};

describe('Dockerfile', () => {
  it('builds from a fresh clone in a build stage on node:22-slim', () => {
    const froms = DOCKERFILE.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms[0]!.args).toMatch(/^node:22-slim\s+AS\s+build$/i);
    expect(froms.at(-1)!.args).toMatch(/^node:22-slim(\s+AS\s+\w+)?$/i);
    const build = DOCKERFILE.filter((i) => i.stage === 0);
    const runs = build.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit'))).toBe(true);
    expect(runs.some((r) => /\bnpm run build(\s|&|$)/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build:bundle\b/.test(r))).toBe(true);
    // The build stage gets what the builds need from the clone (no prebuilt dist or bundle).
    const copies = build.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies.some((c) => /\bsrc\b/.test(c))).toBe(true);
    expect(copies.some((c) => /\btsconfig\.json\b/.test(c))).toBe(true);
    expect(copies.some((c) => /\bscripts\/bundle\.ts\b/.test(c))).toBe(true);
    expect(copies.some((c) => /\b(dist|bundle)\b(?!\.ts)/.test(c))).toBe(false);
  });

  it('has production files only in the runtime stage: the bundled server, no dependencies', () => {
    // The bundle has no dependencies: nothing is installed in the runtime stage.
    expect(RUNTIME.filter((i) => i.op === 'RUN')).toEqual([]);
    const copies = RUNTIME.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies.some((c) => /--from=build\s+\/app\/bundle\/server\s+\.\/bundle\/server$/.test(c))).toBe(true);
    // No sources, tests or whole-context copies: every source is a known production file.
    const sources = copies.flatMap((c) => c.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1));
    for (const src of sources) expect(src).toMatch(/^(\/app\/bundle\/server|README\.md|LICENSE)$/);
  });

  it('runs as a non-root user with the JWT-mode environment', () => {
    const user = one('USER').args;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toBe('node');
    expect(IMAGE_ENV).toMatchObject({ HOME: '/tmp', MCP_REQUIRE_JWT: 'true', MCP_TRANSPORT: 'http', PORT: '3000' });
    expect(one('EXPOSE').args).toBe(IMAGE_ENV.PORT);
    // USER comes before the CMD, so nothing after it runs as root.
    expect(RUNTIME.findIndex((i) => i.op === 'USER')).toBeLessThan(RUNTIME.findIndex((i) => i.op === 'CMD'));
  });

  it('checks /health with node (no curl in slim) and starts the package entry', () => {
    const hc = one('HEALTHCHECK').args;
    const hcCmd = execForm(hc);
    expect(hcCmd[0]).toBe('node');
    expect(hcCmd.join(' ')).toContain('/health');
    const cmd = execForm(one('CMD').args);
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(cmd).toEqual(['node', pkg.bin['quilt-mcp']]);
    expect(cmd).toEqual(['node', 'bundle/server/index.mjs']);
  });

  it('has a .dockerignore that keeps local artifacts out and the build inputs in', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', 'bundle', '.git', '*.mcpb', 'coverage', 'test', 'scripts']) expect(ignored).toContain(p);
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'README.md', 'LICENSE']) expect(ignored).not.toContain(p);
    // The bundle script is the one file of scripts/ the build stage needs; the exception follows the exclusion.
    expect(ignored.indexOf('!scripts/bundle.ts')).toBeGreaterThan(ignored.indexOf('scripts'));
  });
});

describe('deploy/', () => {
  it('has an ECS task definition for a read-only root filesystem, with the secret from Secrets Manager', () => {
    const td = JSON.parse(read('deploy/ecs-task-definition.json')) as {
      taskRoleArn: string;
      volumes: Array<{ name: string }>;
      containerDefinitions: Array<{
        readonlyRootFilesystem: boolean;
        portMappings: Array<{ containerPort: number }>;
        secrets: Array<{ name: string; valueFrom: string }>;
        environment: Array<{ name: string; value: string }>;
        mountPoints: Array<{ sourceVolume: string; containerPath: string; readOnly?: boolean }>;
        healthCheck: { command: string[] };
        logConfiguration: { logDriver: string };
      }>;
    };
    const c = td.containerDefinitions[0]!;
    expect(c.readonlyRootFilesystem).toBe(true);
    expect(td.taskRoleArn).toMatch(/^arn:aws:iam::123456789012:role\/REPLACE_ME/);
    const tmp = c.mountPoints.find((m) => m.containerPath === '/tmp');
    expect(tmp?.readOnly).not.toBe(true);
    expect(td.volumes.map((v) => v.name)).toContain(tmp?.sourceVolume);
    expect(c.secrets.find((s) => s.name === 'MCP_JWT_SECRET')?.valueFrom).toMatch(/^arn:aws:(secretsmanager|ssm):/);
    // No secret in plain environment.
    expect(c.environment.map((e) => e.name)).not.toContain('MCP_JWT_SECRET');
    expect(c.portMappings[0]?.containerPort).toBe(Number(IMAGE_ENV.PORT));
    expect(c.healthCheck.command.join(' ')).toContain('/health');
    expect(c.logConfiguration.logDriver).toBe('awslogs');
  });

  it('has a trust policy for the users\' roles that lets the task role assume, tag and set the source identity', () => {
    const tp = JSON.parse(read('deploy/trust-policy.json')) as {
      Statement: Array<{ Effect: string; Principal: { AWS: string }; Action: string[] }>;
    };
    const s = tp.Statement[0]!;
    expect(s.Effect).toBe('Allow');
    expect(s.Principal.AWS).toMatch(/:role\/REPLACE_ME/);
    expect([...s.Action].sort()).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession']);
    JSON.parse(read('deploy/task-role-policy.json'));
  });

  it('has a compose file running the image read-only with a tmpfs /tmp, against a local S3 and STS', () => {
    const compose = YAML.parse(read('deploy/compose.yaml'), { merge: true }) as {
      services: Record<string, { build?: { context: string; dockerfile: string }; read_only?: boolean; tmpfs?: string[]; environment?: Record<string, string> }>;
    };
    const app = compose.services['quilt-mcp']!;
    expect(app.build).toEqual({ context: '..', dockerfile: 'Dockerfile' });
    expect(app.read_only).toBe(true);
    expect(app.tmpfs?.some((t) => t.startsWith('/tmp'))).toBe(true);
    expect(app.environment?.MCP_JWT_SECRET).toBeTruthy();
    const s3 = app.environment?.AWS_ENDPOINT_URL_S3 ?? '';
    expect(compose.services[new URL(s3).hostname]).toBeDefined();
    expect(app.environment?.AWS_ENDPOINT_URL_STS).toBe(s3);
  });
});

// ---- the image's entry command, run from the bundled server ----

const ROLE = 'arn:aws:iam::123456789012:role/container-user';
const BUCKET = 'container-data';
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

let s3: LocalS3;
let sts: LocalSts;
let appDir: string;
let built: BuiltBundle;
const children: ChildProcess[] = [];
const servers: http.Server[] = [];

/** A directory tree readable (not writable) by everyone, owned by root. */
function readOnlyTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) readOnlyTree(p);
    else if (entry.isFile()) chmodSync(p, 0o444);
  }
  chmodSync(dir, 0o555);
}

/** The image's /app: the bundled server only (no node_modules, no package.json), world-readable, as WORKDIR. */
function buildAppDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-image-'));
  cpSync(built.serverDir, path.join(dir, 'bundle', 'server'), { recursive: true });
  for (const f of ['README.md', 'LICENSE']) cpSync(path.join(ROOT, f), path.join(dir, f));
  readOnlyTree(dir);
  return dir;
}

/** An empty (or given) HOME that nobody may write, like a read-only root filesystem's. */
function readOnlyHome(files: Record<string, string> = {}): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-rohome-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(home, rel)), { recursive: true });
    writeFileSync(path.join(home, rel), text);
  }
  readOnlyTree(home);
  return home;
}

interface Running {
  port: number;
  url: string;
  stderr(): string;
}

/** Spawns the Dockerfile's CMD in appDir with the Dockerfile's ENV, as nobody when we are root. */
async function runImage(env: Record<string, string>): Promise<Running> {
  const [command, ...args] = execForm(one('CMD').args);
  expect(command).toBe('node');
  const child = spawn(process.execPath, args, {
    cwd: appDir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      ...IMAGE_ENV,
      // Port 0: tests run in parallel; the image's PORT is checked above.
      PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  children.push(child);
  const output = { value: '' };
  child.stdout?.on('data', (c: Buffer) => (output.value += c.toString()));
  const port = await listeningPort(child, 15_000, output);
  return { port, url: `http://127.0.0.1:${port}/mcp`, stderr: () => output.value };
}

/** Environment every run shares: the JWT secret and the local AWS, nothing from the developer. */
function awsEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home,
    MCP_JWT_SECRET: TEST_SECRET,
    MCP_LOG_LEVEL: 'info',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    // No EC2 here: IMDS would only time out.
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

async function readObject(url: string, sub: string) {
  const token = await signToken({ sub, role_arn: ROLE, buckets: [BUCKET], permissions: ['s3:GetObject', 's3:ListBucket'] });
  const client = await connectHttp(url, token);
  try {
    return await call(client, 'bucket_object_text', { uri: `s3://${BUCKET}/hello.txt` });
  } finally {
    await client.close().catch(() => {});
  }
}

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const CANARY_KEY = 'AKIACANARYHOMEFILE01';
const CANARY_FILES = {
  '.aws/credentials': `[canary]\naws_access_key_id = ${CANARY_KEY}\naws_secret_access_key = canary-secret\n\n[default]\naws_access_key_id = ${CANARY_KEY}\naws_secret_access_key = canary-secret\n`,
  '.aws/config': '[profile canary]\nregion = us-east-1\n\n[default]\nregion = us-east-1\n',
};

beforeAll(async () => {
  sts = await startSts();
  s3 = await startS3({
    buckets: [BUCKET],
    // Play IAM: only credentials that STS issued for the user's role reach the bucket.
    deny: (r) => (sts.issued.get(r.sessionToken ?? '') === ROLE ? undefined : 'AccessDenied'),
  });
  await s3.put(BUCKET, 'hello.txt', 'hello from the image\n');
  built = await buildBundle();
  appDir = buildAppDir();
});

afterAll(async () => {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await s3?.close();
  await sts?.close();
});

describe('the image entry command', () => {
  it(`runs ${asRoot ? 'as nobody' : 'as the current user'} with a read-only empty HOME: /health, the HEALTHCHECK and a tool call`, async () => {
    expect(statSync(appDir).mode & 0o222).toBe(0);
    const home = readOnlyHome();
    // Which modules the server loads, into a file nobody may write.
    const traceDir = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-trace-'));
    chmodSync(traceDir, 0o777);
    const trace = path.join(traceDir, 'imports.txt');
    const hook = fileURLToPath(new URL('./helpers/trace-imports.mjs', import.meta.url));
    const server = await runImage(
      awsEnv(home, {
        AWS_ACCESS_KEY_ID: 'TASKROLEKEY',
        AWS_SECRET_ACCESS_KEY: 'task-role-secret',
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim(),
        TRACE_IMPORTS_FILE: trace,
      }),
    );

    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(health.status).toBe(200);

    // The Dockerfile's own HEALTHCHECK command, as Docker would run it in the container.
    const [hcCommand, ...hcArgs] = execForm(one('HEALTHCHECK').args);
    expect(hcCommand).toBe('node');
    const hcExit = await new Promise<number | null>((resolve) => {
      const p = execFile(process.execPath, hcArgs, { env: { ...IMAGE_ENV, PORT: String(server.port) }, timeout: 10_000 });
      p.on('exit', (code) => resolve(code));
    });
    expect(hcExit).toBe(0);

    // The trace lists bundle chunks; the metafile says which sources each holds. Over HTTP the AWS
    // SDK is loaded before the server listens (transports/http.ts: its evaluation would hold the
    // event loop for every tenant at the first AWS call); the chain's file, SSO and process providers are not.
    const started = built.expandTrace(readFileSync(trace, 'utf8'));
    expect(started).toMatch(/@aws-sdk\/client-s3\//);
    expect(started).not.toMatch(/credential-provider-(ini|sso|process)/);

    const before = sts.assumeRoleCalls.length;
    const r = await readObject(server.url, 'image-user');
    expect(r.isError, r.text).toBe(false);
    expect(objectText(r).content).toBe('hello from the image\n');
    const calls = sts.assumeRoleCalls.slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ roleArn: ROLE, sourceIdentity: 'image-user', callerAccessKeyId: 'TASKROLEKEY' });
    // Only the environment provider was loaded for the server's identity (no ini/SSO/process).
    const loaded = built.expandTrace(readFileSync(trace, 'utf8'));
    expect(loaded).toContain('@aws-sdk/credential-provider-env');
    // credential-provider-node's module itself is evaluated as a static import of client-sts (in
    // dist too, by a require() the ESM trace missed); the chain's providers load only when it runs.
    expect(loaded).not.toMatch(/credential-provider-(ini|sso|process)/);
    // HOME stayed empty (nothing could be written there, and nothing tried and failed loudly).
    expect(readdirSync(home)).toEqual([]);
    expect(server.stderr()).not.toMatch(/EACCES|EROFS/);
  });
});

describe("the server's own AWS identity in JWT mode", () => {
  it('the canary ~/.aws would be used by the SDK default chain (so the next tests mean something)', async () => {
    const home = readOnlyHome(CANARY_FILES);
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', "const { defaultProvider } = await import('@aws-sdk/credential-provider-node'); console.log((await defaultProvider()()).accessKeyId);"],
        { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: home, AWS_PROFILE: 'canary', AWS_EC2_METADATA_DISABLED: 'true' }, timeout: 15_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
      );
    });
    expect(out).toBe(CANARY_KEY);
  });

  it('never uses ~/.aws or AWS_PROFILE: without container credentials a call fails clearly and STS sees nothing', async () => {
    const home = readOnlyHome(CANARY_FILES);
    const server = await runImage(awsEnv(home, { AWS_PROFILE: 'canary' }));
    const before = sts.assumeRoleCalls.length;
    const r = await readObject(server.url, 'no-identity');
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/cannot call AWS STS/);
    expect(r.text).toMatch(/~\/\.aws and AWS_PROFILE are not used/);
    expect(r.text).not.toContain(CANARY_KEY);
    expect(sts.assumeRoleCalls.slice(before)).toEqual([]);
    expect(sts.assumeRoleCalls.some((c) => c.callerAccessKeyId === CANARY_KEY)).toBe(false);
    expect(s3.requests.some((q) => q.accessKeyId === CANARY_KEY)).toBe(false);
  });

  it('uses environment credentials even when AWS_PROFILE names a profile in ~/.aws', async () => {
    const home = readOnlyHome(CANARY_FILES);
    const server = await runImage(
      awsEnv(home, { AWS_PROFILE: 'canary', AWS_ACCESS_KEY_ID: 'ENVSERVERKEY', AWS_SECRET_ACCESS_KEY: 'env-secret' }),
    );
    const before = sts.assumeRoleCalls.length;
    const r = await readObject(server.url, 'env-user');
    expect(r.isError, r.text).toBe(false);
    expect(sts.assumeRoleCalls.slice(before).map((c) => c.callerAccessKeyId)).toEqual(['ENVSERVERKEY']);
  });

  it('uses the container credentials endpoint (ECS task role / EKS Pod Identity) with its authorization token', async () => {
    const seen: Array<string | undefined> = [];
    const endpoint = await listen((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          AccessKeyId: 'ECSTASKROLEKEY',
          SecretAccessKey: 'ecs-secret',
          Token: 'ecs-session-token',
          Expiration: new Date(Date.now() + 3600_000).toISOString(),
        }),
      );
    });
    const home = readOnlyHome(CANARY_FILES);
    const server = await runImage(
      awsEnv(home, {
        AWS_PROFILE: 'canary',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${endpoint}/v2/credentials/task`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'container-auth-token',
      }),
    );
    const before = sts.assumeRoleCalls.length;
    const r = await readObject(server.url, 'ecs-user');
    expect(r.isError, r.text).toBe(false);
    expect(sts.assumeRoleCalls.slice(before).map((c) => c.callerAccessKeyId)).toEqual(['ECSTASKROLEKEY']);
    expect(seen[0]).toBe('container-auth-token');
  });

  it('uses web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) through AssumeRoleWithWebIdentity', async () => {
    const webCalls: URLSearchParams[] = [];
    // An STS that answers AssumeRoleWithWebIdentity itself and passes everything else to the local STS.
    const stsUrl = new URL(sts.endpoint);
    const front = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        if (form.get('Action') === 'AssumeRoleWithWebIdentity') {
          webCalls.push(form);
          res.writeHead(200, { 'content-type': 'text/xml' });
          res.end(
            `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/server/web</Arn><AssumedRoleId>AROAWEB:web</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>WEBIDENTITYKEY</AccessKeyId><SecretAccessKey>web-secret</SecretAccessKey><SessionToken>web-session</SessionToken><Expiration>${new Date(Date.now() + 3600_000).toISOString()}</Expiration></Credentials></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>web</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
          );
          return;
        }
        const upstream = http.request(
          { host: stsUrl.hostname, port: stsUrl.port, path: req.url, method: req.method, headers: req.headers },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        upstream.end(body);
      });
    });
    const tokenDir = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-webid-'));
    writeFileSync(path.join(tokenDir, 'token'), 'projected-service-account-token');
    readOnlyTree(tokenDir);
    const home = readOnlyHome(CANARY_FILES);
    const server = await runImage(
      awsEnv(home, {
        AWS_PROFILE: 'canary',
        AWS_ENDPOINT_URL_STS: front,
        AWS_WEB_IDENTITY_TOKEN_FILE: path.join(tokenDir, 'token'),
        AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/quilt-mcp-server',
      }),
    );
    const before = sts.assumeRoleCalls.length;
    const r = await readObject(server.url, 'web-user');
    expect(r.isError, r.text).toBe(false);
    expect(webCalls).toHaveLength(1);
    expect(webCalls[0]!.get('WebIdentityToken')).toBe('projected-service-account-token');
    expect(webCalls[0]!.get('RoleArn')).toBe('arn:aws:iam::123456789012:role/quilt-mcp-server');
    expect(sts.assumeRoleCalls.slice(before).map((c) => c.callerAccessKeyId)).toEqual(['WEBIDENTITYKEY']);
  });
});
