/**
 * Local data on the desktop (issue 22): a folder (with a .quiltignore) packaged into quilt3's local
 * registry with no AWS at all, and into S3 on the local S3 server, each installed back byte for
 * byte; the local registry's files read as quilt3 lays them out (pointers, manifest bytes, top
 * hashes, physical keys), checked against real Python restating quilt3's rules; push from the local
 * registry to S3 keeps the top hash. The built server over stdio, as Claude Desktop runs it.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connectStdio, isolatedEnv, s3Env, type Harness } from './helpers/mcp.js';
import { PY_TOP_HASH, hasPython, python } from './helpers/python.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const MiB = 1024 * 1024;
/** quilt-formats.md's known answers. */
const KNOWN = {
  empty: '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
  hello: 'BCp9ZKWB7y7pg/IQWIAcw1ZjtwXmxV9i+o4PGOzHCYk=',
  eight: '7V3rZ3Q/AmAYax2wsQBZbc7N1EMIxlxRyMiMthGRdwg=',
};
const REG = 'local-target';

/** The folder packaged: known answers, a multipart-sized file, odd names, and what .quiltignore drops. */
function makeFolder(dir: string): void {
  const put = (rel: string, body: string | Buffer) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), body);
  };
  put('data/empty.txt', '');
  put('data/hello.txt', 'Hello, World!');
  put('big/eight.bin', Buffer.from('12345678'.repeat(1024 * 1024)));
  // Two chunks: an S3 upload in two parts, whose COMPOSITE checksum is the hash.
  put('big/nine.bin', randomBytes(9 * MiB));
  put('sp ace/ünï (1).csv', 'a,b\n1,2\n');
  put('.hidden', 'dotfiles are files too (pathlib rglob)');
  put('logs/run.log', 'ignored by *.log');
  put('keep/run.log.txt', 'not ignored');
  put('tmp/scratch.csv', 'ignored with its folder (rule "tmp")');
  put('keep/tmp.txt', 'a file named tmp.txt is not "tmp"');
  put('.quiltignore', '*.log\ntmp\n');
}

/** The files quilt3's set_dir('/', dir) takes, restated in Python (rglob, and the .quiltignore rules matched as "*" + "/" + rule). */
const PY_SET_DIR = `
import sys, json, pathlib, fnmatch
root = pathlib.Path(sys.argv[1]).resolve()
ign = root / '.quiltignore'
rules = ['*/' + r for r in ign.read_text('utf-8').split('\\n') if r] if ign.exists() else []
def ignored_dir(d):
    return any(fnmatch.fnmatch(d.as_posix() + '/', r) or fnmatch.fnmatch(d.as_posix(), r) for r in rules)
out = {}
for p in root.rglob('*'):
    if not p.is_file():
        continue
    if any(fnmatch.fnmatch(p, r) for r in rules):
        continue
    if any(ignored_dir(d) for d in p.parents if root in d.parents):
        continue
    out[p.relative_to(root).as_posix()] = 'file://' + __import__('urllib.request').request.pathname2url(__import__('os').path.realpath(p))
print(json.dumps(out))
`;

/** sha2-256-chunked of a file, restated in Python. */
const PY_CHUNKED = `
import sys, hashlib, base64, os
p = sys.argv[1]
size = os.path.getsize(p)
chunk = 8 * 1024 * 1024
while -(-size // chunk) > 10000:
    chunk *= 2
outer = hashlib.sha256()
with open(p, 'rb') as f:
    while True:
        b = f.read(chunk)
        if not b:
            break
        outer.update(hashlib.sha256(b).digest())
print(base64.b64encode(outer.digest()).decode())
`;

function filesUnder(dir: string, rel = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of filesUnder(dir, r)) out.set(k, v);
    else out.set(r, readFileSync(path.join(dir, r)));
  }
  return out;
}

let work: string;
let folder: string;
let expected: Map<string, Buffer>;
let s3: LocalS3;

beforeAll(async () => {
  work = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'quilt-local-')));
  folder = path.join(work, 'my data');
  makeFolder(folder);
  const ignored = new Set(['logs/run.log', 'tmp/scratch.csv']);
  expected = new Map([...filesUnder(folder)].filter(([k]) => !ignored.has(k)));
  s3 = await startS3({ buckets: [REG] });
});

afterAll(async () => {
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

/** The local registry of a server started with `env` (quilt3's default under its data dir). */
const registryOf = (env: Record<string, string>) => path.join(env.XDG_DATA_HOME!, 'Quilt', 'packages');

describe('a local registry, with no AWS at all', () => {
  let h: Harness;
  let env: Record<string, string>;
  let hash: string;

  beforeAll(async () => {
    // No credentials anywhere, and an S3 endpoint nobody listens on: nothing here may need AWS.
    env = isolatedEnv({ QUILT_MCP_ROOTS: work, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
    h = await connectStdio(env);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers tools/list, and the AWS tools say what is missing with the fix', async () => {
    const { tools } = await h.client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['package_create', 'package_install', 'package_push']));
    const buckets = await call(h.client, 'bucket_list');
    expect(buckets.isError).toBe(true);
    expect(buckets.text).toContain('No AWS credentials were found');
    expect(buckets.text).toContain('Fix:');
    const status = await call(h.client, 'auth_status');
    expect(status.data.local.registry).toBe(registryOf(env));
    expect(status.text).toContain('bucket="local"');
  });

  it('packages a folder as quilt3 set_dir does (.quiltignore honoured), hashed with quilt3\'s known answers', async () => {
    const r = await call(h.client, 'package_create', { bucket: 'local', name: 'team/folder', source_uri_prefix: folder, message: 'from my folder', meta: { source: 'disk', n: 2 } });
    expect(r.isError, r.text).toBe(false);
    hash = r.data.top_hash;
    expect(r.data.bucket).toBe('local');
    expect(r.data.entries).toBe(expected.size);
    expect(r.text).toContain(hash);
    expect(r.data.quilt_uri).toBe(`quilt+file://${registryOf(env)}#package=team/folder@${hash}`);

    const b = await call(h.client, 'package_browse', { bucket: 'local', name: 'team/folder', recursive: true, limit: 100 });
    expect(b.isError, b.text).toBe(false);
    const byKey = new Map<string, { hash: string; physical_key: string; size: number }>(b.data.items.map((i: { logical_key: string }) => [i.logical_key, i]));
    expect([...byKey.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(byKey.get('data/empty.txt')?.hash).toBe(KNOWN.empty);
    expect(byKey.get('data/hello.txt')?.hash).toBe(KNOWN.hello);
    expect(byKey.get('big/eight.bin')?.hash).toBe(KNOWN.eight);
    expect(byKey.get('sp ace/ünï (1).csv')?.physical_key).toBe(`file://${folder.split('/').map(encodeURIComponent).join('/')}/sp%20ace/%C3%BCn%C3%AF%20%281%29.csv`);
    if (!hasPython) return;
    // The file list and physical keys are quilt3's: Python's rglob, fnmatch and pathname2url.
    const py = JSON.parse(python(PY_SET_DIR, '', [folder])) as Record<string, string>;
    expect(Object.keys(py).sort()).toEqual([...byKey.keys()].sort());
    for (const [k, pk] of Object.entries(py)) expect(byKey.get(k)?.physical_key, k).toBe(pk);
    expect(byKey.get('big/nine.bin')?.hash).toBe(python(PY_CHUNKED, '', [path.join(folder, 'big/nine.bin')]).trim());
  });

  it('lays the registry out as quilt3 does: pointers, manifest bytes, top hash, nothing else in the pointer folder', async () => {
    const root = path.join(registryOf(env), '.quilt');
    const pointers = path.join(root, 'named_packages', 'team', 'folder');
    const names = readdirSync(pointers).sort();
    expect(names).toHaveLength(2);
    expect(names[1]).toBe('latest');
    expect(names[0]).toMatch(/^\d{10}$/);
    for (const n of names) expect(readFileSync(path.join(pointers, n), 'utf8')).toBe(hash); // no newline
    const manifest = readFileSync(path.join(root, 'packages', hash));
    const [head] = manifest.toString('utf8').split('\n');
    expect(head).toBe('{"version": "v0", "user_meta": {"source": "disk", "n": 2}, "message": "from my folder"}');
    if (hasPython) expect(python(PY_TOP_HASH, manifest.toString('utf8'))).toBe(hash);
    // Only registry files: temporary files and locks stay in .quilt/.tmp, and are gone.
    expect(readdirSync(root).sort()).toEqual(['.tmp', 'named_packages', 'packages']);
    expect(readdirSync(path.join(root, '.tmp')).filter((n) => n !== 'locks')).toEqual([]);
  });

  it('installs it back byte for byte, keeps files it would replace, and says which', async () => {
    const dest = path.join(work, 'installed-local');
    const r = await call(h.client, 'package_install', { bucket: 'local', name: 'team/folder', dest });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.written).toBe(expected.size);
    expect(r.text).toContain(dest);
    const got = filesUnder(dest);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, v] of expected) expect(got.get(k)?.equals(v), k).toBe(true);
    // Again: every file is already there.
    const again = await call(h.client, 'package_install', { bucket: 'local', name: 'team/folder', dest });
    expect(again.data).toMatchObject({ written: 0, unchanged: expected.size, kept: [] });
    // A file changed by hand is kept unless overwrite.
    writeFileSync(path.join(dest, 'data/hello.txt'), 'changed');
    const kept = await call(h.client, 'package_install', { bucket: 'local', name: 'team/folder', dest });
    expect(kept.data.kept).toEqual(['data/hello.txt']);
    expect(kept.text).toContain('overwrite=true');
    expect(readFileSync(path.join(dest, 'data/hello.txt'), 'utf8')).toBe('changed');
    const over = await call(h.client, 'package_install', { bucket: 'local', name: 'team/folder', dest, overwrite: true, path: 'data' });
    expect(over.data).toMatchObject({ files: 2, written: 2 });
    // path="data": the folder's files at the top of dest, as quilt3 install's path.
    expect(readFileSync(path.join(dest, 'hello.txt'), 'utf8')).toBe('Hello, World!');
  });

  it('browses, updates, diffs and deletes in the local registry, and reads it as resources', async () => {
    const up = await call(h.client, 'package_update', { bucket: 'local', name: 'team/folder', add: [{ logical_key: 'README.md', text: '# My data\n' }], remove: ['big/'], message: 'readme, no big files' });
    expect(up.isError, up.text).toBe(false);
    const diff = await call(h.client, 'package_diff', { bucket: 'local', name: 'team/folder', from: hash });
    expect(diff.data.counts).toMatchObject({ added: 1, removed: 2 });
    const readme = (await call(h.client, 'package_browse', { bucket: 'local', name: 'team/folder', path: 'README.md' })).data.items[0];
    // Text is stored by content in the registry, never replacing anything.
    expect(readme.physical_key).toMatch(new RegExp(`^file://.*/\\.quilt/data/${createHash('sha256').update('# My data\n').digest('hex')}\\.md$`));
    const uri = `quilt+file://${registryOf(env)}#package=team/folder@${up.data.top_hash}`;
    const summary = JSON.parse(((await h.client.readResource({ uri })).contents[0] as { text: string }).text);
    expect(summary.entries).toBe(expected.size - 2 + 1);
    const text = (await h.client.readResource({ uri: `${uri}&path=README.md` })).contents[0] as { text: string };
    expect(text.text).toBe('# My data\n');
    const list = await h.client.listResources();
    expect(list.resources.map((r) => r.uri)).toContain(uri);
    const revs = await call(h.client, 'package_revisions', { bucket: 'local', name: 'team/folder' });
    expect(revs.data.total).toBe(2);
    const del = await call(h.client, 'package_delete', { bucket: 'local', name: 'team/folder', hash: up.data.top_hash });
    expect(del.isError, del.text).toBe(false);
    expect(del.data.latest).toBe(hash);
  });

  /** The lock folder of a local package's `latest` (src/local/files.ts), made as process `pid` on this host holds it. */
  const holdLatest = (name: string, pid: number) => {
    const key = `.quilt/named_packages/${name}/latest`;
    const lock = path.join(registryOf(env), '.quilt/.tmp/locks', `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.lock`);
    mkdirSync(lock, { recursive: true });
    writeFileSync(path.join(lock, 'owner'), `${os.hostname()} ${pid}`);
    return lock;
  };

  it('a lock left by a killed process is taken over at once (the call sent again after a crash waited 10 s, then failed)', async () => {
    const made = await call(h.client, 'package_create', { bucket: 'local', name: 'team/locked', entries: [{ logical_key: 'a.txt', text: 'a' }] });
    expect(made.isError, made.text).toBe(false);
    // What a server killed while writing latest leaves: the lock folder, naming a process that is gone.
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    const lock = holdLatest('team/locked', gone!);
    const del = await call(h.client, 'package_delete', { bucket: 'local', name: 'team/locked' });
    expect(del.isError, del.text).toBe(false);
    expect(del.data.latest).toBeNull();
    expect(readdirSync(path.dirname(lock))).not.toContain(path.basename(lock));
  });

  it('a lock its live holder keeps is waited for 10 s, then the call says the package is locked and to retry (it said "latest moved ... nothing was deleted")', async () => {
    const made = await call(h.client, 'package_create', { bucket: 'local', name: 'team/held', entries: [{ logical_key: 'a.txt', text: 'a' }] });
    expect(made.isError, made.text).toBe(false);
    // Held by this test's process, which runs on.
    const lock = holdLatest('team/held', process.pid);
    try {
      const del = await call(h.client, 'package_delete', { bucket: 'local', name: 'team/held' });
      expect(del.isError).toBe(true);
      expect(del.text).toMatch(/is locked by another process/);
      expect(del.text).toMatch(/Retry/);
      expect(del.text).not.toMatch(/nothing was deleted/);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
    // Nothing left behind by the waiting call; the package is untouched and can go now.
    expect(readdirSync(path.dirname(lock))).toEqual([]);
    const del = await call(h.client, 'package_delete', { bucket: 'local', name: 'team/held' });
    expect(del.isError, del.text).toBe(false);
  }, 60_000);
});

describe('a folder into S3, installed back; push from the local registry', () => {
  let h: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    env = s3Env(s3.endpoint, { QUILT_MCP_ROOTS: work });
    h = await connectStdio(env);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('uploads the files to <name>/<logical key> with checksums that are their hashes, and installs them back byte for byte', async () => {
    const r = await call(h.client, 'package_create', { bucket: REG, name: 'team/folder', source_uri_prefix: `file://${folder.split('/').map(encodeURIComponent).join('/')}` });
    expect(r.isError, r.text).toBe(false);
    const b = await call(h.client, 'package_browse', { bucket: REG, name: 'team/folder', recursive: true });
    const items: Array<{ logical_key: string; s3_uri: string; hash: string }> = b.data.items;
    expect(items).toHaveLength(expected.size);
    for (const i of items) {
      expect(i.s3_uri.startsWith(`s3://${REG}/team/folder/`), i.s3_uri).toBe(true);
      const stored = s3.checksums.get(`${REG}/team/folder/${i.logical_key}`);
      const body = Buffer.from(await (await s3.client.send(new GetObjectCommand({ Bucket: REG, Key: `team/folder/${i.logical_key}` }))).Body!.transformToByteArray());
      expect(body.equals(expected.get(i.logical_key)!), i.logical_key).toBe(true);
      // S3 was told the bytes' checksums: one PUT, or (nine.bin) two parts whose composite is the quilt hash.
      expect(stored?.type, i.logical_key).toBe(i.logical_key === 'big/nine.bin' ? 'COMPOSITE' : 'FULL_OBJECT');
    }
    expect(s3.checksums.get(`${REG}/team/folder/big/nine.bin`)?.sha256).toBe(items.find((i) => i.logical_key === 'big/nine.bin')?.hash);

    const dest = path.join(work, 'installed-s3');
    // Progress by bytes, as the files stream in.
    const progress: Array<{ progress: number; total?: number | undefined }> = [];
    const raw = await h.client.callTool({ name: 'package_install', arguments: { bucket: REG, name: 'team/folder', dest } }, undefined, { onprogress: (p) => progress.push(p) });
    const inst = { isError: Boolean(raw.isError), text: (raw.content as Array<{ text: string }>)[0]!.text, data: raw.structuredContent as Record<string, unknown> };
    expect(inst.isError, inst.text).toBe(false);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[progress.length - 1]).toMatchObject({ progress: inst.data.bytes, total: inst.data.bytes });
    const got = filesUnder(dest);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, v] of expected) expect(got.get(k)?.equals(v), k).toBe(true);
    // As quilt3 install: recorded in the local registry with the same top hash and manifest.
    expect(inst.data.registered).toMatch(/^local, tag \d+$/);
    const local = await call(h.client, 'package_browse', { bucket: 'local', name: 'team/folder' });
    expect(local.data.top_hash).toBe(r.data.top_hash);
    if (hasPython) expect(python(PY_TOP_HASH, readFileSync(path.join(registryOf(env), '.quilt', 'packages', r.data.top_hash), 'utf8'))).toBe(r.data.top_hash);
  });

  it('pushes a local package to S3 with its top hash, data copied under the new name', async () => {
    const made = await call(h.client, 'package_create', { bucket: 'local', name: 'team/pushme', entries: [{ logical_key: 'd/', path: path.join(folder, 'data') }, { logical_key: 'n.txt', text: 'note' }], message: 'local' });
    expect(made.isError, made.text).toBe(false);
    const r = await call(h.client, 'package_push', { bucket: 'local', name: 'team/pushme', to_bucket: REG, to_name: 'team/pushed' });
    expect(r.isError, r.text).toBe(false);
    expect(r.data.top_hash).toBe(made.data.top_hash);
    expect(r.data.copied).toBe(3);
    const b = await call(h.client, 'package_browse', { bucket: REG, name: 'team/pushed', recursive: true });
    expect(b.data.items.map((i: { s3_uri: string }) => i.s3_uri.replace(/\?versionId=.*$/, '')).sort()).toEqual(
      [`s3://${REG}/team/pushed/d/empty.txt`, `s3://${REG}/team/pushed/d/hello.txt`, `s3://${REG}/team/pushed/n.txt`],
    );
    // Pushing a file that changed since it was packaged is refused, and nothing is committed.
    const touched = path.join(work, 'touch.txt');
    writeFileSync(touched, 'one');
    await call(h.client, 'package_create', { bucket: 'local', name: 'team/stale', entries: [{ logical_key: 't.txt', path: touched }] });
    writeFileSync(touched, 'two');
    const stale = await call(h.client, 'package_push', { bucket: 'local', name: 'team/stale', to_bucket: REG });
    expect(stale.isError).toBe(true);
    expect(stale.text).toContain('no longer holds the bytes');
    expect((await call(h.client, 'package_list', { bucket: REG, prefix: 'team/stale' })).data.packages).toEqual([]);
  });

  it('refuses a local target for push, and copy into a local registry, saying what to use', async () => {
    const push = await call(h.client, 'package_push', { bucket: REG, name: 'team/folder', to_bucket: 'local' });
    expect(push.isError).toBe(true);
    expect(push.text).toContain('package_install');
    const copy = await call(h.client, 'package_create', { bucket: 'local', name: 'team/copy', entries: [{ logical_key: 'a', s3_uri: `s3://${REG}/team/folder/data/hello.txt` }], copy: true });
    expect(copy.isError).toBe(true);
    expect(copy.text).toContain('references files where they are');
  });
});

describe('the known answer for the top hash', () => {
  it('a revision with an empty message and metadata, written to a file:// registry, is 0929824c...', async () => {
    const { DesktopAuthService } = await import('../src/auth/desktop.js');
    const { loadConfig } = await import('../src/config.js');
    const { silentLogger } = await import('../src/core/log.js');
    const { openRegistry } = await import('../src/packages/registries.js');
    const { push } = await import('../src/packages/build.js');
    const { newManifestHeader } = await import('../src/packages/manifest.js');
    const dir = path.join(work, 'known');
    mkdirSync(dir);
    const ctx = await new DesktopAuthService(loadConfig([], { QUILT_MCP_ROOTS: dir }, { platform: 'linux', homedir: work }), silentLogger).context();
    const reg = await openRegistry(ctx, `file://${dir}`, 'write');
    const pushed = await push(reg, 'known/answer', newManifestHeader({ message: '', user_meta: {} }), [], null);
    expect(pushed.hash).toBe('0929824c58e90a6d2cc3ad2c7bdc66e34f43e8ed7063a6b48595a3834dd3ec99');
    expect(statSync(path.join(dir, '.quilt', 'packages', pushed.hash)).isFile()).toBe(true);
    expect(readFileSync(path.join(dir, '.quilt', 'named_packages', 'known', 'answer', 'latest'), 'utf8')).toBe(pushed.hash);
  });
});

describe('local work takes turns and stops when cancelled', () => {
  it('hashing a file gives the event loop back between pieces, and stops at a cancelled call', async () => {
    const { hashFile } = await import('../src/local/hash-file.js');
    const big = path.join(work, 'turns.bin');
    writeFileSync(big, randomBytes(20 * MiB));
    let turns = 0;
    let on = true;
    const tick = () => {
      turns++;
      if (on) setImmediate(tick);
    };
    setImmediate(tick);
    const hash = await hashFile(big, 20 * MiB, undefined);
    on = false;
    if (hasPython) expect(hash).toBe(python(PY_CHUNKED, '', [big]).trim());
    // Twenty 1 MiB pieces, each an await: other work ran between them.
    expect(turns).toBeGreaterThanOrEqual(10);
    const stop = new AbortController();
    stop.abort();
    await expect(hashFile(big, 20 * MiB, stop.signal)).rejects.toMatchObject({ code: 'cancelled' });
  });

  it('an install cancelled midway leaves whole files only, and no temporary ones', async () => {
    const { installFiles } = await import('../src/packages/install.js');
    const { DesktopAuthService } = await import('../src/auth/desktop.js');
    const { loadConfig } = await import('../src/config.js');
    const { silentLogger } = await import('../src/core/log.js');
    const { fileUriOf } = await import('../src/local/paths.js');
    const ctx = await new DesktopAuthService(loadConfig([], { QUILT_MCP_ROOTS: work }, { platform: 'linux', homedir: work }), silentLogger).context();
    const src = path.join(folder, 'big', 'nine.bin');
    const { hashFile } = await import('../src/local/hash-file.js');
    const hash = { type: 'sha2-256-chunked' as const, value: await hashFile(src, 9 * MiB, undefined) };
    // More files than are installed at once (8): the first progress (a file done) cancels the call.
    const files = Array.from({ length: 24 }, (_, i) => ({ rel: `f${i}.bin`, physicalKey: fileUriOf(src), size: 9 * MiB, hash }));
    const dest = path.join(work, 'cancelled');
    const stop = new AbortController();
    const run = installFiles(ctx, ctx.local!, files, dest, false, {
      signal: stop.signal,
      progress: async () => stop.abort(),
    });
    await expect(run).rejects.toMatchObject({ code: 'cancelled' });
    const left = readdirSync(dest);
    expect(left.length).toBeLessThan(files.length);
    expect(left.filter((n) => n.startsWith('.'))).toEqual([]);
    for (const n of left) expect(statSync(path.join(dest, n)).size).toBe(9 * MiB);
  });
});
