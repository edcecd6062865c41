/**
 * MCP resources end to end: the built server over stdio (desktop mode, the real SDK client)
 * against s3rver. Listing pages through the packages of every visible bucket with sealed cursors;
 * package manifests, package entries and S3 objects read inline or as links; `..` refused before
 * any S3 request; errors are JSON-RPC errors that say what to do.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Resource } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestLines, newManifestHeader, type ManifestEntry } from '../src/packages/manifest.js';
import { PAGE_SIZE } from '../src/resources/list.js';
import { INLINE_TEXT_BYTES } from '../src/resources/content.js';
import { call, connectStdio, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

const REG = 'res-registry';
const BULK = 'res-bulk';
const DATA = 'res-data';
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
const BIG = 'x'.repeat(INLINE_TEXT_BYTES + 10);
const BULK_COUNT = PAGE_SIZE + 7;
const HOSTILE_HASH = 'f'.repeat(64);

let s3: LocalS3;
let h: Harness;
let alpha: string;

async function readError(uri: string): Promise<McpError> {
  try {
    await h.client.readResource({ uri });
  } catch (err) {
    if (err instanceof McpError) return err;
    throw err;
  }
  throw new Error(`reading ${uri} succeeded`);
}

/** The text of a read's first content item. */
const textOf = (r: { contents: readonly unknown[] }) => (r.contents[0] as { text?: string } | undefined)?.text;
const json = (r: { contents: readonly unknown[] }) => JSON.parse(String(textOf(r))) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  s3 = await startS3({ buckets: [REG, BULK, DATA] });
  await s3.put(DATA, 'raw/table.csv', 'a,b\n1,2\n', 'text/csv');
  await s3.put(DATA, 'raw/image.png', PNG, 'image/png');
  await s3.put(DATA, 'raw/big.txt', BIG, 'text/plain');
  await s3.put(DATA, 'secret/other.txt', 'not through a package');
  for (let i = 0; i < BULK_COUNT; i++) {
    await s3.put(BULK, `.quilt/named_packages/bulk/p-${String(i).padStart(2, '0')}/latest`, i.toString(16).padStart(64, '0'));
  }
  // A manifest whose entry's physical key climbs out of its bucket (written directly: the
  // server's own writers never produce one).
  const entry: ManifestEntry = { logical_key: 'evil.txt', physical_keys: [`s3://${DATA}/raw/../secret/other.txt`], size: 5, hash: { type: 'SHA256', value: '0'.repeat(64) } };
  await s3.put(REG, `.quilt/packages/${HOSTILE_HASH}`, [...manifestLines(newManifestHeader({ message: 'hostile' }), [entry])].join(''));
  h = await connectStdio(s3Env(s3.endpoint));
  const r = await call(h.client, 'package_create', {
    bucket: REG,
    name: 'team/alpha',
    message: 'first',
    meta: { organism: 'mouse', count: 3 },
    entries: [
      { logical_key: 'data/table.csv', s3_uri: `s3://${DATA}/raw/table.csv` },
      { logical_key: 'img/image.png', s3_uri: `s3://${DATA}/raw/image.png` },
      { logical_key: 'big.txt', s3_uri: `s3://${DATA}/raw/big.txt` },
      { logical_key: 'README.md', text: '# Alpha\n' },
    ],
  });
  expect(r.isError, r.text).toBe(false);
  alpha = r.data.top_hash;
}, 60_000);

afterAll(async () => {
  await h?.close();
  await s3?.close();
});

describe('declaration', () => {
  it('declares resources (no subscriptions, a fixed set) and lists the templates', async () => {
    expect(h.client.getServerCapabilities()?.resources).toEqual({ listChanged: false });
    const { resourceTemplates } = await h.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual([
      'quilt+s3://{bucket}#package={+name}@{hash}',
      'quilt+s3://{bucket}#package={+name}@{hash}&path={+path}',
      's3://{bucket}/{+key}',
    ]);
    for (const t of resourceTemplates) expect(t.description?.length).toBeGreaterThan(40);
  });
});

describe('resources/list', () => {
  it('pages through the fixed resources and every package of the visible buckets, newest first, with sealed cursors', async () => {
    const pages: Resource[][] = [];
    let cursor: string | undefined;
    do {
      const page = await h.client.listResources(cursor ? { cursor } : {});
      pages.push(page.resources);
      cursor = page.nextCursor;
      expect(pages.length).toBeLessThan(20);
    } while (cursor);
    expect(pages.length).toBeGreaterThan(1);
    for (const p of pages) expect(p.length).toBeLessThanOrEqual(PAGE_SIZE + 1);
    const all = pages.flat();
    expect(all[0]).toMatchObject({ uri: 'auth://status', name: 'auth-status', mimeType: 'application/json' });
    const uris = all.map((r) => r.uri);
    expect(new Set(uris).size).toBe(uris.length);
    const packages = all.filter((r) => r.uri.startsWith('quilt+s3://'));
    expect(packages).toHaveLength(BULK_COUNT + 1);
    expect(packages.find((r) => r.name === `${REG}/team/alpha`)).toMatchObject({
      uri: `quilt+s3://${REG}#package=team/alpha@${alpha}`,
      title: `team/alpha (${REG})`,
      mimeType: 'application/json',
    });
    // Pinned to the hash latest held when listed.
    expect(packages.find((r) => r.name === `${BULK}/bulk/p-10`)?.uri).toBe(`quilt+s3://${BULK}#package=bulk/p-10@${(10).toString(16).padStart(64, '0')}`);
    // Within a bucket: newest first, then by name (pointers written in the same second).
    const bulk = packages.filter((r) => r.name.startsWith(`${BULK}/`));
    for (let i = 1; i < bulk.length; i++) {
      const [a, b] = [bulk[i - 1]!, bulk[i]!];
      const [ta, tb] = [a.annotations?.lastModified ?? '', b.annotations?.lastModified ?? ''];
      expect(ta >= tb && (ta !== tb || a.name < b.name), `${a.name} ${ta} before ${b.name} ${tb}`).toBe(true);
    }
  });

  it('refuses a cursor it did not issue, an altered one and another tool\'s', async () => {
    const first = await h.client.listResources();
    expect(first.nextCursor).toBeDefined();
    const [payload, tag] = first.nextCursor!.split('.');
    const altered = `${Buffer.from(JSON.stringify({ b: ['some-other-bucket'], i: 0 })).toString('base64url')}.${tag}`;
    const pl = await call(h.client, 'package_list', { bucket: BULK, limit: 1 });
    for (const cursor of ['garbage', altered, `${payload}.AAAA`, pl.data.next_cursor as string]) {
      const err = await h.client.listResources({ cursor }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, cursor).toBeInstanceOf(McpError);
      expect((err as McpError).code).toBe(-32602);
      expect((err as McpError).message).toMatch(/cursor was refused/);
    }
  });
});

describe('resources/read', () => {
  it('a package revision: header metadata, entry count, total size and the first entries with their URIs', async () => {
    const uri = `quilt+s3://${REG}#package=team/alpha@${alpha}`;
    const r = await h.client.readResource({ uri });
    expect(r.contents[0]).toMatchObject({ uri, mimeType: 'application/json' });
    const d = json(r);
    expect(d).toMatchObject({ bucket: REG, name: 'team/alpha', top_hash: alpha, message: 'first', user_meta: { organism: 'mouse', count: 3 }, entries: 4, shown_entries: 4 });
    expect(d.total_size).toBe(8 + PNG.length + BIG.length + 8);
    expect(d.first_entries.map((e: { logical_key: string }) => e.logical_key)).toEqual(['README.md', 'big.txt', 'data/table.csv', 'img/image.png']);
    expect(d.first_entries[2].uri).toBe(`${uri}&path=data/table.csv`);
    // :latest, no ref and a hash prefix name the same revision.
    for (const other of [`quilt+s3://${REG}#package=team/alpha:latest`, `quilt+s3://${REG}#package=team/alpha`, `quilt+s3://${REG}#package=team/alpha@${alpha.slice(0, 10)}`]) {
      expect(json(await h.client.readResource({ uri: other })).top_hash).toBe(alpha);
    }
  });

  it('a small text entry inline, with its content type', async () => {
    const uri = `quilt+s3://${REG}#package=team/alpha@${alpha}&path=data/table.csv`;
    const r = await h.client.readResource({ uri });
    expect(r.contents).toEqual([{ uri, mimeType: 'text/csv', text: 'a,b\n1,2\n' }]);
    const readme = await h.client.readResource({ uri: `quilt+s3://${REG}#package=team/alpha@${alpha}&path=README.md` });
    expect(textOf(readme)).toBe('# Alpha\n');
  });

  it('a binary or large entry as metadata and a presigned link that works', async () => {
    for (const [path, why, body] of [
      ['img/image.png', /not text \(content type image\/png\)/, PNG],
      ['big.txt', new RegExp(`\\(${BIG.length} bytes\\), more than the ${INLINE_TEXT_BYTES} bytes`), Buffer.from(BIG)],
    ] as const) {
      const uri = `quilt+s3://${REG}#package=team/alpha@${alpha}&path=${path}`;
      const r = await h.client.readResource({ uri });
      expect(r.contents[0]?.mimeType).toBe('application/json');
      const d = json(r);
      expect(d).toMatchObject({ uri, logical_key: path, top_hash: alpha, inline: false, size: body.length });
      expect(d.why_not_inline).toMatch(why);
      expect(d.hash).toMatch(/.{20,}/);
      expect(d.note).toMatch(/secret/);
      const res = await fetch(d.download_url as string);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    }
  });

  it('s3:// objects the same way', async () => {
    const r = await h.client.readResource({ uri: `s3://${DATA}/raw/table.csv` });
    expect(r.contents).toEqual([{ uri: `s3://${DATA}/raw/table.csv`, mimeType: 'text/csv', text: 'a,b\n1,2\n' }]);
    const png = json(await h.client.readResource({ uri: `s3://${DATA}/raw/image.png` }));
    expect(png).toMatchObject({ s3_uri: `s3://${DATA}/raw/image.png`, content_type: 'image/png', inline: false });
    expect(png.download_url).toMatch(/^http/);
  });

  it('auth://status: the auth_status tool\'s answer', async () => {
    const r = await h.client.readResource({ uri: 'auth://status' });
    const d = json(r);
    const tool = await call(h.client, 'auth_status');
    expect(d.mode).toBe('desktop');
    expect(Object.keys(d).sort()).toEqual(Object.keys(tool.data).sort());
    expect(d.aws.source).toBe(tool.data.aws.source);
  });

  it('refuses ".." in keys, logical keys and physical keys before any S3 request', async () => {
    const before = s3.requests.length;
    for (const uri of [
      `s3://${DATA}/raw/../secret/other.txt`,
      `s3://${DATA}/%2e%2e/secret/other.txt`,
      `s3://${DATA}/raw/%252E%252E/x`,
      `s3://${DATA}/raw\\..\\x`,
      `quilt+s3://${REG}#package=team/alpha@${alpha}&path=../x`,
      `quilt+s3://${REG}#package=team/alpha@${alpha}&path=data/%2E%2E/x`,
    ]) {
      const err = await readError(uri);
      expect(err.code, uri).toBe(-32602);
      expect(err.message, uri).toMatch(/"\.\."|dot segment/);
      expect(err.message).toMatch(/Fix: /);
    }
    expect(s3.requests.length).toBe(before);
    // A manifest entry's physical key gets the same refusal (after the manifest is read, before the object is).
    const err = await readError(`quilt+s3://${REG}#package=team/evil@${HOSTILE_HASH}&path=evil.txt`);
    expect(err.message).toMatch(/physical key .*"\.\."/);
    expect(s3.requests.some((r) => r.key.includes('secret/other.txt'))).toBe(false);
  });

  it('answers what is wrong and how to fix it, as JSON-RPC errors', async () => {
    const cases: Array<[string, number, RegExp]> = [
      ['test://static-text', -32002, /not found: this server reads auth:\/\/status, quilt\+s3:\/\/.*s3:\/\/\{bucket\}/],
      [`quilt+s3://${REG}#package=team/missing`, -32002, /team\/missing does not exist in res-registry/],
      [`quilt+s3://${REG}#package=team/alpha@${alpha}&path=nope.txt`, -32002, /has no file "nope.txt"/],
      [`s3://${DATA}/raw/missing.txt`, -32002, /missing\.txt/],
      [`quilt+s3://${REG}`, -32602, /not a package resource URI.*Fix: Use the form quilt\+s3:\/\/bucket#package=/s],
      [`quilt+s3://${REG}#package=notaname`, -32602, /not a package name/],
      [`quilt+s3://${REG}#package=team/alpha&path=dir/`, -32602, /one file/],
      [`s3://${DATA}`, -32602, /names a bucket but no object key/],
    ];
    for (const [uri, code, message] of cases) {
      const err = await readError(uri);
      expect([uri, err.code]).toEqual([uri, code]);
      expect(err.message).toMatch(message);
      expect(err.message).not.toMatch(/S3RVER|at .*\.js:\d+/);
    }
  });
});

describe('configuration', () => {
  it('MCP_TOOLSETS without packages drops the package resources; MCP_READ_ONLY keeps everything', async () => {
    const only = await connectStdio(s3Env(s3.endpoint, { MCP_TOOLSETS: 'buckets' }));
    try {
      const { resourceTemplates } = await only.client.listResourceTemplates();
      expect(resourceTemplates.map((t) => t.name)).toEqual(['s3-object']);
      const list = await only.client.listResources();
      expect(list.resources.map((r) => r.uri)).toEqual(['auth://status']);
      expect(list.nextCursor).toBeUndefined();
      const err = await only.client.readResource({ uri: `quilt+s3://${REG}#package=team/alpha` }).catch((e: unknown) => e as McpError);
      expect((err as McpError).message).toMatch(/not offered: this server runs with MCP_TOOLSETS without "packages"/);
      expect(textOf(await only.client.readResource({ uri: `s3://${DATA}/raw/table.csv` }))).toBe('a,b\n1,2\n');
    } finally {
      await only.close();
    }
    const ro = await connectStdio(s3Env(s3.endpoint, { MCP_READ_ONLY: 'true' }));
    try {
      expect((await ro.client.listResourceTemplates()).resourceTemplates).toHaveLength(3);
      expect(json(await ro.client.readResource({ uri: `quilt+s3://${REG}#package=team/alpha@${alpha}` })).entries).toBe(4);
    } finally {
      await ro.close();
    }
  });
});
