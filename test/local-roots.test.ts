/**
 * Nothing outside the granted roots: every way out (`..`, a symlink, an absolute path, `~`, a
 * manifest's logical key or physical key, a root the client removes) is refused with the rule
 * named, and nothing is read or written there. JWT mode offers nothing local. Path forms of every
 * platform parse as that platform does (pure functions, so Windows and macOS forms run on Linux);
 * .quiltignore wildcards match as Python's fnmatch.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileUriOf, isWithinText, parseLocalPath } from '../src/local/paths.js';
import { QuiltIgnore, fnmatch } from '../src/local/quiltignore.js';
import { jwtEnv, signToken } from './helpers/http.js';
import { SERVER_ENTRY, call, connectStdio, isolatedEnv, type Harness } from './helpers/mcp.js';
import { hasPython, python } from './helpers/python.js';

let work: string;
let inside: string;
let outside: string;

beforeAll(() => {
  work = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'quilt-roots-')));
  inside = path.join(work, 'inside');
  outside = path.join(work, 'outside');
  mkdirSync(path.join(inside, 'folder'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(path.join(inside, 'folder', 'ok.txt'), 'fine');
  writeFileSync(path.join(outside, 'secret.txt'), 'not yours');
  symlinkSync(outside, path.join(inside, 'link'));
  mkdirSync(path.join(inside, 'sneaky'));
  writeFileSync(path.join(inside, 'sneaky', 'ok.txt'), 'fine');
  symlinkSync(path.join(outside, 'secret.txt'), path.join(inside, 'sneaky', 'evil.txt'));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const refused = (r: { isError: boolean; text: string }) => {
  expect(r.isError, r.text).toBe(true);
  expect(r.text).toContain('outside the folders this server may');
  expect(r.text).toContain('Fix: Grant the folder');
};

describe('escapes from the roots', () => {
  let h: Harness;
  let home: string;

  beforeAll(async () => {
    const env = isolatedEnv({ QUILT_MCP_ROOTS: `${inside},~/granted` });
    home = env.HOME!;
    mkdirSync(path.join(home, 'granted'), { recursive: true });
    writeFileSync(path.join(home, 'granted', 'g.txt'), 'granted');
    writeFileSync(path.join(home, 'secret.txt'), 'not granted');
    h = await connectStdio(env);
    const made = await call(h.client, 'package_create', { bucket: 'local', name: 'a/b', source_uri_prefix: path.join(inside, 'folder') });
    expect(made.isError, made.text).toBe(false);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('"..": resolved before the check, so a path that climbs out is refused and nothing is written', async () => {
    refused(await call(h.client, 'package_install', { bucket: 'local', name: 'a/b', dest: `${inside}/../outside/x` }));
    expect(existsSync(path.join(outside, 'x'))).toBe(false);
    refused(await call(h.client, 'package_create', { bucket: 'local', name: 'a/c', entries: [{ logical_key: 's.txt', path: `${inside}/folder/../../outside/secret.txt` }] }));
  });

  it('an absolute path outside every root, as a source, a destination or a registry', async () => {
    refused(await call(h.client, 'package_create', { bucket: 'local', name: 'a/c', source_uri_prefix: outside }));
    refused(await call(h.client, 'package_install', { bucket: 'local', name: 'a/b', dest: outside }));
    refused(await call(h.client, 'package_list', { bucket: `file://${outside}` }));
    refused(await call(h.client, 'package_create', { bucket: outside, name: 'a/c', entries: [{ logical_key: 't', text: 'x' }] }));
    expect(readdirSync(outside)).toEqual(['secret.txt']);
  });

  it('a symlink out of a root: as a folder, inside a packaged folder, and inside an install folder', async () => {
    refused(await call(h.client, 'package_create', { bucket: 'local', name: 'a/c', source_uri_prefix: path.join(inside, 'link') }));
    refused(await call(h.client, 'package_install', { bucket: 'local', name: 'a/b', dest: path.join(inside, 'link', 'x') }));
    const sneaky = await call(h.client, 'package_create', { bucket: 'local', name: 'a/c', source_uri_prefix: path.join(inside, 'sneaky') });
    refused(sneaky);
    expect(sneaky.text).toContain('evil.txt');
    // A folder inside the install folder that is a symlink out of it.
    const dest = path.join(inside, 'dest');
    mkdirSync(dest);
    symlinkSync(outside, path.join(dest, 'sub'));
    const made = await call(h.client, 'package_create', { bucket: 'local', name: 'a/sub', entries: [{ logical_key: 'sub/planted.txt', text: 'x' }] });
    expect(made.isError, made.text).toBe(false);
    const r = await call(h.client, 'package_install', { bucket: 'local', name: 'a/sub', dest });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('leads out of the install folder');
    expect(readdirSync(outside)).toEqual(['secret.txt']);
  });

  it('"~" is the home folder, checked like any path: a granted folder in it works, the rest is refused', async () => {
    refused(await call(h.client, 'package_create', { bucket: 'local', name: 'a/c', entries: [{ logical_key: 's.txt', path: '~/secret.txt' }] }));
    const ok = await call(h.client, 'package_create', { bucket: 'local', name: 'a/home', entries: [{ logical_key: 'g.txt', path: '~/granted/g.txt' }] });
    expect(ok.isError, ok.text).toBe(false);
    const user = await call(h.client, 'package_create', { bucket: 'local', name: 'a/c', entries: [{ logical_key: 'x', path: '~root/x' }] });
    expect(user.text).toContain('"~user" paths are not supported');
  });

  it('a manifest cannot steer a write out of the install folder, nor a read out of the roots', async () => {
    // A registry written by hand (or by someone else): logical keys and physical keys are data.
    const evil = path.join(inside, 'evilreg');
    const plant = (name: string, lines: object[]) => {
      const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
      const hash = createHash('sha256').update(text).digest('hex');
      mkdirSync(path.join(evil, '.quilt', 'packages'), { recursive: true });
      mkdirSync(path.join(evil, '.quilt', 'named_packages', name), { recursive: true });
      writeFileSync(path.join(evil, '.quilt', 'packages', hash), text);
      writeFileSync(path.join(evil, '.quilt', 'named_packages', name, 'latest'), hash);
    };
    const entry = (lk: string, pk: string) => ({ logical_key: lk, physical_keys: [pk], size: 9, hash: { type: 'sha2-256-chunked', value: 'x' }, meta: {} });
    plant('e/climb', [{ version: 'v0' }, entry('../../outside/pwned.txt', fileUriOf(path.join(inside, 'folder', 'ok.txt')))]);
    plant('e/read', [{ version: 'v0' }, entry('secret.txt', fileUriOf(path.join(outside, 'secret.txt')))]);
    const climb = await call(h.client, 'package_install', { bucket: `file://${evil}`, name: 'e/climb', dest: path.join(inside, 'd2') });
    expect(climb.isError).toBe(true);
    expect(climb.text).toContain('".." path segment');
    const read = await call(h.client, 'package_install', { bucket: `file://${evil}`, name: 'e/read', dest: path.join(inside, 'd3') });
    refused(read);
    expect(existsSync(path.join(inside, 'd3', 'secret.txt'))).toBe(false);
    expect(readdirSync(outside)).toEqual(['secret.txt']);
  });
});

describe("the client's roots", () => {
  it('are asked for once the client says hello; a root removed by roots/list_changed is refused at once', async () => {
    const a = path.join(work, 'client-a');
    const b = path.join(work, 'client-b');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(path.join(a, 'a.txt'), 'A');
    writeFileSync(path.join(b, 'b.txt'), 'B');
    let roots = [{ uri: fileUriOf(a), name: 'A' }, { uri: fileUriOf(b), name: 'B' }];
    const transport = new StdioClientTransport({ command: process.execPath, args: [SERVER_ENTRY], env: isolatedEnv(), stderr: 'pipe' });
    const client = new Client({ name: 'roots-test', version: '0.0.0' }, { capabilities: { roots: { listChanged: true } } });
    let asked = 0;
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked++;
      return { roots };
    });
    await client.connect(transport);
    try {
      const make = (name: string, dir: string) => call(client, 'package_create', { bucket: 'local', name, source_uri_prefix: dir });
      expect((await make('c/a', a)).isError).toBe(false);
      expect((await make('c/b', b)).isError).toBe(false);
      roots = [{ uri: fileUriOf(a), name: 'A' }];
      await client.sendRootsListChanged();
      const gone = await make('c/b2', b);
      refused(gone);
      expect(gone.text).toContain('client root "A"');
      expect((await make('c/a2', a)).isError).toBe(false);
      expect(asked).toBe(2);
    } finally {
      await client.close();
    }
  });
});

describe('JWT mode offers nothing local', () => {
  let h: Harness;
  beforeAll(async () => {
    const token = await signToken({ sub: 'tenant', role_arn: 'arn:aws:iam::123456789012:role/t', buckets: ['tenant-bucket'] });
    h = await connectStdio(jwtEnv({ s3: 'http://127.0.0.1:9', sts: 'http://127.0.0.1:9' }, { MCP_JWT_TOKEN: token, QUILT_MCP_ROOTS: inside }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('no package_install in tools/list, and every local path or registry is refused saying why', async () => {
    const { tools } = await h.client.listTools();
    expect(tools.map((t) => t.name)).not.toContain('package_install');
    expect(tools.map((t) => t.name)).toContain('package_push');
    const install = await call(h.client, 'package_install', { bucket: 'tenant-bucket', name: 'a/b' });
    expect(install.isError).toBe(true);
    expect(install.text).toContain('JWT mode');
    for (const [tool, args] of [
      ['package_list', { bucket: 'local' }],
      ['package_browse', { bucket: `file://${inside}`, name: 'a/b' }],
      ['package_create', { bucket: 'tenant-bucket', name: 'a/b', entries: [{ logical_key: 'x', path: path.join(inside, 'folder', 'ok.txt') }] }],
      ['package_create', { bucket: 'tenant-bucket', name: 'a/b', source_uri_prefix: inside }],
      ['package_push', { bucket: 'local', name: 'a/b', to_bucket: 'tenant-bucket' }],
    ] as const) {
      const r = await call(h.client, tool, args);
      expect(r.isError, `${tool} ${r.text}`).toBe(true);
      expect(r.text, tool).toContain('JWT mode');
      expect(r.text, tool).toContain('nothing local is offered');
    }
    const status = await call(h.client, 'auth_status');
    expect(status.data.local).toBeUndefined();
    expect(status.text).toContain('Local: nothing (JWT mode');
    const resource = await h.client.readResource({ uri: `quilt+file://${inside}#package=a/b` }).then(
      () => 'read',
      (err: Error) => err.message,
    );
    expect(resource).toContain('JWT mode');
  });
});

describe('path forms', () => {
  const linux = { platform: 'linux' as const, homedir: '/home/me' };
  const win = { platform: 'win32' as const, homedir: 'C:\\Users\\me' };

  it('POSIX: absolute, "~", file URIs (local host only), ".." resolved as text; relative refused', () => {
    expect(parseLocalPath('/data/x/../y', linux)).toBe('/data/y');
    expect(parseLocalPath('~', linux)).toBe('/home/me');
    expect(parseLocalPath('~/d', linux)).toBe('/home/me/d');
    expect(parseLocalPath('file:///a%20b/%C3%BC', linux)).toBe('/a b/ü');
    expect(parseLocalPath('file://localhost/a', linux)).toBe('/a');
    expect(() => parseLocalPath('file://server/a', linux)).toThrow(/another host/);
    expect(() => parseLocalPath('file:///a%2Fb', linux)).toThrow(/encoded/);
    expect(() => parseLocalPath('data/x', linux)).toThrow(/relative/);
    expect(() => parseLocalPath('/a\0b', linux)).toThrow(/NUL/);
  });

  it('Windows: drives, shares, long-path prefixes, file URIs; a path without a drive is refused', () => {
    expect(parseLocalPath('C:\\Data\\..\\x', win)).toBe('C:\\x');
    expect(parseLocalPath('c:/data/x', win)).toBe('c:\\data\\x');
    expect(parseLocalPath('\\\\server\\share\\d', win)).toBe('\\\\server\\share\\d');
    expect(parseLocalPath('\\\\?\\C:\\long\\path', win)).toBe('C:\\long\\path');
    expect(parseLocalPath('\\\\?\\UNC\\server\\share\\d', win)).toBe('\\\\server\\share\\d');
    expect(parseLocalPath('file:///C:/Users/me/a%20b', win)).toBe('C:\\Users\\me\\a b');
    expect(parseLocalPath('file://server/share/d', win)).toBe('\\\\server\\share\\d');
    expect(parseLocalPath('~\\docs', win)).toBe('C:\\Users\\me\\docs');
    expect(() => parseLocalPath('\\data', win)).toThrow(/not absolute/);
    expect(fileUriOf('C:\\Users\\me\\a b', { platform: 'win32' })).toBe('file:///C:/Users/me/a%20b');
    expect(fileUriOf('\\\\server\\share\\d', { platform: 'win32' })).toBe('file://server/share/d');
    // Case folds on Windows (and the file-identity check covers case-insensitive macOS volumes).
    expect(isWithinText('c:\\users\\ME\\x', 'C:\\Users\\me', 'win32')).toBe(true);
    expect(isWithinText('C:\\Users\\meme', 'C:\\Users\\me', 'win32')).toBe(false);
    expect(isWithinText('/data2', '/data', 'linux')).toBe(false);
  });

  it.skipIf(!hasPython)("physical keys are Python's pathname2url of the real path", () => {
    const names = ['/a b/c', '/ü/ö (1)/x!y', "/q'r/~t/*u", '/100%/#h?q'];
    const py = JSON.parse(python("import json, sys, urllib.request; print(json.dumps(['file://' + urllib.request.pathname2url(p) for p in json.load(sys.stdin)]))", JSON.stringify(names)));
    expect(names.map((n) => fileUriOf(n, { platform: 'linux' }))).toEqual(py);
  });

  it.skipIf(!hasPython)(".quiltignore wildcards match as Python's fnmatch, on 2,000 random cases", () => {
    const alphabet = ['a', 'b', '/', '.', '*', '?', '[', ']', '!', '-', 'ü', 'z'];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const word = (max: number) => Array.from({ length: rnd(max) }, () => alphabet[rnd(alphabet.length)]).join('');
    const cases = Array.from({ length: 2000 }, () => [word(10).replace(/[*?[\]!]/g, 'a'), word(8)] as [string, string]);
    const expected = JSON.parse(python('import json, sys, fnmatch; print(json.dumps([fnmatch.fnmatchcase(n, p) for n, p in json.load(sys.stdin)]))', JSON.stringify(cases))) as boolean[];
    expect(cases.map(([n, p]) => fnmatch(n, p))).toEqual(expected);
  });

  it('folders matched with and without the trailing "/", files by the whole path, Windows folding case', () => {
    const ig = new QuiltIgnore('tmp\n*.log\ndata/raw/\n', false);
    expect(ig.ignoresFolder('/p/tmp')).toBe(true);
    expect(ig.ignoresFile('/p/tmp.txt')).toBe(false);
    expect(ig.ignoresFile('/p/x/run.log')).toBe(true);
    expect(ig.ignoresFolder('/p/data/raw')).toBe(true);
    expect(ig.ignoresFile('/p/data/raw')).toBe(false);
    const winIg = new QuiltIgnore('Build\n', true);
    expect(winIg.ignoresFolder('C:\\proj\\build')).toBe(true);
    expect(winIg.ignoresFile('C:\\proj\\src\\BUILD')).toBe(true);
  });
});
