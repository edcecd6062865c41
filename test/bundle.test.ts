/**
 * The shipped artifacts, used the way users meet them: the MCP bundle (.mcpb) unpacked and launched
 * from its manifest's mcp_config, and the npm tarball installed offline into an empty folder (it has
 * no dependencies) and launched through its bin. Both run with no node_modules of the repo in reach.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MCPB_NAME, NOTICES, SERVER_ENTRY } from '../scripts/bundle.js';
import { buildBundle, type BuiltBundle } from './helpers/bundle.js';
import { call, isolatedEnv, objectText, s3Env } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MCPB = path.join(ROOT, 'node_modules', '.bin', 'mcpb');
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
const BUCKET = 'bundle-data';

interface Manifest {
  icon?: string;
  server: { entry_point: string; mcp_config: { command: string; args: string[]; env: Record<string, string> } };
}

/** Every file under dir, as forward-slash paths relative to it, sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

const clients: Client[] = [];

async function connect(command: string, args: string[], env: Record<string, string>): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({ command, args, env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const client = new Client({ name: 'quilt-mcp-bundle-tests', version: '0.0.0' });
  await client.connect(transport);
  clients.push(client);
  return { client, stderr: () => stderr };
}

let s3: LocalS3;
let built: BuiltBundle;
let unpacked: string;

beforeAll(async () => {
  s3 = await startS3({ buckets: [BUCKET] });
  await s3.put(BUCKET, 'notes/hello.txt', 'hello from the bundle\n');
  built = await buildBundle({ mcpb: true });
  unpacked = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-unpacked-'));
  await run(MCPB, ['unpack', built.mcpb!, unpacked]);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await s3?.close();
});

describe('the MCP bundle (.mcpb)', () => {
  it('holds only the bundled server, manifest.json, README.md, LICENSE and the icon', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'manifest.json'), 'utf8')) as Manifest;
    expect(path.basename(built.mcpb!)).toBe(MCPB_NAME);
    expect(manifest.server.entry_point).toBe(SERVER_ENTRY);
    expect(manifest.icon).toBeDefined();
    const files = listFiles(unpacked);
    const chunks = files.filter((f) => f.startsWith('server/chunks/'));
    expect(files).toEqual(
      ['LICENSE', 'README.md', manifest.icon!, 'manifest.json', NOTICES, SERVER_ENTRY, ...chunks].sort(),
    );
    for (const c of chunks) expect(c).toMatch(/^server\/chunks\/[\w-]+\.mjs$/);
    // Exactly the build's output: nothing missing, nothing stale.
    expect(listFiles(path.join(unpacked, 'server'))).toEqual(listFiles(built.serverDir));
    expect(readFileSync(path.join(unpacked, 'manifest.json'), 'utf8')).toBe(readFileSync(path.join(ROOT, 'manifest.json'), 'utf8'));
    // The notices name the bundled packages whose licenses ask for them.
    const notices = readFileSync(path.join(unpacked, NOTICES), 'utf8');
    for (const p of ['@aws-sdk/client-s3@', '@modelcontextprotocol/sdk@', 'zod@', 'jose@']) expect(notices).toContain(p);
  });

  it('gives CommonJS packages loaded with import() their named exports, as Node does', () => {
    const meta = JSON.parse(readFileSync(built.metafile, 'utf8')) as Metafile;
    // The chunk that import('yaml') loads is the one holding scripts/bundle.ts's re-exporting module.
    const exportsOf = (pkg: string) => Object.values(meta.outputs).find((o) => `cjs-named-exports:${pkg}` in o.inputs)?.exports ?? [];
    expect(exportsOf('yaml')).toEqual(expect.arrayContaining(['default', 'parse']));
    expect(exportsOf('ajv')).toEqual(expect.arrayContaining(['default', 'Ajv']));
  });

  it('starts from the unpacked folder by its manifest, answers initialize without the AWS SDK, and reads S3', async () => {
    const manifest = JSON.parse(readFileSync(path.join(unpacked, 'manifest.json'), 'utf8')) as Manifest;
    const { command, args, env } = manifest.server.mcp_config;
    expect(command).toBe('node');
    // The "Folders" setting (a directory list, passed as arguments): one folder given.
    const granted = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-folders-'));
    writeFileSync(path.join(granted, 'local.csv'), 'a,b\n1,2\n');
    const userConfig: Record<string, string> = { aws_region: 'us-east-1', folders: granted };
    // As Claude Desktop does: ${__dirname} is the unpacked folder; settings the user left empty stay placeholders.
    const fill = (s: string) =>
      s.replaceAll('${__dirname}', unpacked).replace(/\$\{user_config\.(\w+)\}/g, (m, k: string) => userConfig[k] ?? m);
    const trace = path.join(mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-trace-')), 'imports.txt');
    const hook = fileURLToPath(new URL('./helpers/trace-imports.mjs', import.meta.url));
    const serverEnv = {
      ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, fill(v)])),
      ...s3Env(s3.endpoint, { TRACE_IMPORTS_FILE: trace }),
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim(),
    };
    const { client, stderr } = await connect(process.execPath, args.map(fill), serverEnv);
    expect(client.getServerVersion()).toMatchObject({ name: 'quilt-mcp', version: PKG.version });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('bucket_object_text');

    const atStart = built.expandTrace(readFileSync(trace, 'utf8'));
    // The trace lists the unpacked folder's chunks, mapped to their sources through the metafile.
    expect(readFileSync(trace, 'utf8')).toContain(`${unpacked}/server/`);
    expect(atStart).toContain('@modelcontextprotocol/sdk');
    expect(atStart).not.toContain('@aws-sdk');
    expect(atStart).not.toContain('/jose/');

    const r = await call(client, 'bucket_object_text', { uri: `s3://${BUCKET}/notes/hello.txt` });
    expect(r.isError, `${r.text}\n${stderr()}`).toBe(false);
    expect(objectText(r).content).toBe('hello from the bundle\n');
    expect(built.expandTrace(readFileSync(trace, 'utf8'))).toContain('@aws-sdk/client-s3');

    // Workflow checks run in the bundle's own worker thread (chunks/workflow-worker-main.mjs).
    await s3.put(BUCKET, '.quilt/s.json', '{"type": "object", "required": ["a"]}');
    await s3.put(BUCKET, '.quilt/workflows/config.yml', ['version: "1"', 'workflows:', '  w:', '    name: w', '    metadata_schema: s', 'schemas:', '  s:', `    url: s3://${BUCKET}/.quilt/s.json`].join('\n'));
    const entries = [{ logical_key: 'a.txt', text: 'a' }];
    const refused = await call(client, 'package_create', { bucket: BUCKET, name: 'bundle/wf', entries, workflow: 'w' });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain("Workflow check failed: Metadata failed validation: (root) must have required property 'a'.");
    const made = await call(client, 'package_create', { bucket: BUCKET, name: 'bundle/wf', entries, workflow: 'w', meta: { a: 1 } });
    expect(made.isError, `${made.text}\n${stderr()}`).toBe(false);

    // The granted folder, packaged into quilt3's local registry.
    const local = await call(client, 'package_create', { bucket: 'local', name: 'bundle/folder', source_uri_prefix: granted });
    expect(local.isError, `${local.text}\n${stderr()}`).toBe(false);
    expect(local.data.entries).toBe(1);
  });
});

describe('the npm package', () => {
  let tarball: string;
  let files: string[];

  beforeAll(async () => {
    const dest = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-pack-'));
    // prepack builds the bundle; its log line comes before npm's JSON on stdout.
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dest], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const [info] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(dest, info!.filename);
    files = info!.files.map((f) => f.path).sort();
  }, 60_000);

  it('ships the bundled server and no dependencies', async () => {
    for (const f of files) expect(f).toMatch(/^(bundle\/server\/(index\.mjs|THIRD_PARTY_LICENSES\.txt|chunks\/[\w-]+\.mjs)|package\.json|README\.md|LICENSE|manifest\.json|icon\.png)$/);
    expect(files).toContain(`bundle/${SERVER_ENTRY}`);
    expect(PKG.bin['quilt-mcp']).toBe(`bundle/${SERVER_ENTRY}`);
    const extract = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-tgz-'));
    await run('tar', ['-xzf', tarball, '-C', extract, 'package/package.json']);
    const packed = JSON.parse(readFileSync(path.join(extract, 'package', 'package.json'), 'utf8')) as Record<string, unknown>;
    for (const k of ['dependencies', 'optionalDependencies', 'peerDependencies', 'bundleDependencies', 'bundledDependencies']) {
      expect(packed[k], k).toBeUndefined();
    }
  });

  it('installs offline into an empty folder and its bin answers initialize', async () => {
    const prefix = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-install-'));
    // An empty cache and --offline: the install can only succeed because nothing needs fetching.
    const cache = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-npmcache-'));
    await run('npm', ['install', '--prefix', prefix, '--cache', cache, '--offline', '--no-audit', '--no-fund', tarball], { cwd: prefix });
    expect(readdirSync(path.join(prefix, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual([PKG.name]);
    const bin = path.join(prefix, 'node_modules', '.bin', 'quilt-mcp');
    expect(realpathSync(bin)).toBe(path.join(realpathSync(prefix), 'node_modules', PKG.name, 'bundle', SERVER_ENTRY));
    // The bin itself (its #! line finds node on PATH), as npx runs it.
    const env = isolatedEnv({ PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` });
    // quilt3's config.yml: read with yaml, a CommonJS package the server imports on first use.
    const quilt3 = path.join(env.XDG_DATA_HOME!, 'Quilt');
    mkdirSync(quilt3, { recursive: true });
    writeFileSync(path.join(quilt3, 'config.yml'), 'navigator_url: https://quilt.example.com\n');
    const { client } = await connect(bin, [], env);
    expect(client.getServerVersion()).toMatchObject({ name: 'quilt-mcp', version: PKG.version });
    const r = await call(client, 'catalog_uri', { bucket: 'my-data', path: 'x.csv' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.catalog_url).toBe('https://quilt.example.com/b/my-data/tree/x.csv');
  });
});
