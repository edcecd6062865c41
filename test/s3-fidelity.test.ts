/**
 * What real S3 does and s3rver does not: 403 for missing keys without s3:ListBucket, buckets in
 * another region (301 + x-amz-bucket-region), conditional writes (If-Match / If-None-Match). The
 * proxy in helpers/s3.ts plays S3 here; the built server runs over stdio, two of them when a test
 * needs two writers in different processes (the per-process lock cannot help there).
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import http from 'node:http';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connectStdio, s3Env, type Harness, type ToolCall } from './helpers/mcp.js';
import { startS3, type LocalS3, type S3Request } from './helpers/s3.js';

const REG = 'fid-registry';
const NOLIST = 'fid-nolist';
const EU = 'fid-eu';
const NAMED = '.quilt/named_packages/';

let s3: LocalS3;
let h1: Harness;
let h2: Harness;
let before: (r: S3Request) => Promise<void> | void = () => undefined;
let deny: (r: S3Request) => string | undefined = () => undefined;

const ok = (r: ToolCall) => {
  expect(r.isError, r.text).toBe(false);
  return r.data;
};

async function getText(bucket: string, key: string): Promise<string | undefined> {
  try {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await out.Body!.transformToString();
  } catch {
    return undefined;
  }
}

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const out = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

/** The package's pointers: tag -> hash. */
async function pointers(bucket: string, name: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of await keys(bucket, `${NAMED}${name}/`)) out.set(k.slice(`${NAMED}${name}/`.length), (await getText(bucket, k))!);
  return out;
}

/**
 * No half-state: every pointer names a manifest that exists, and `latest` names a revision that
 * has its own timestamp pointer.
 */
async function expectConsistent(bucket: string, name: string) {
  const ptrs = await pointers(bucket, name);
  for (const [tag, hash] of ptrs) {
    expect(await getText(bucket, `.quilt/packages/${hash}`), `manifest of ${name}:${tag}`).toBeDefined();
  }
  const latest = ptrs.get('latest');
  if (latest) expect([...ptrs].filter(([t, h]) => t !== 'latest' && h === latest).length, 'latest has a timestamp pointer').toBeGreaterThan(0);
  return ptrs;
}

/** A `before` hook that holds matching requests until `count` of them arrived (or 10 s passed). */
function gate(match: (r: S3Request) => boolean, count: number) {
  const held: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  const releaseAll = () => {
    clearTimeout(timer);
    for (const go of held.splice(0)) go();
  };
  return async (r: S3Request) => {
    if (!match(r)) return;
    const wait = new Promise<void>((resolve) => held.push(resolve));
    if (held.length >= count) releaseAll();
    else timer ??= setTimeout(releaseAll, 10_000);
    await wait;
  };
}

/** A `before` hook that holds the first `count` matching requests until all arrived (or 10 s), then lets everything pass. */
function firstOnly(match: (r: S3Request) => boolean, count: number) {
  const held: Array<() => void> = [];
  let open = false;
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    open = true;
    clearTimeout(timer);
    for (const go of held.splice(0)) go();
  };
  return async (r: S3Request) => {
    if (open || !match(r)) return;
    const wait = new Promise<void>((resolve) => held.push(resolve));
    if (held.length >= count) release();
    else timer ??= setTimeout(release, 10_000);
    await wait;
  };
}

beforeAll(async () => {
  s3 = await startS3({
    buckets: [REG, NOLIST, EU],
    before: (r) => before(r),
    deny: (r) => deny(r),
    noListBucket: (r) => r.bucket === NOLIST,
    regions: { [EU]: 'eu-west-1' },
  });
  await s3.put(EU, 'data/hello.txt', 'Hello from Ireland');
  await s3.put(NOLIST, 'data/there.txt', 'here');
  [h1, h2] = await Promise.all([connectStdio(s3Env(s3.endpoint)), connectStdio(s3Env(s3.endpoint))]);
}, 60_000);

afterAll(async () => {
  await h1?.close();
  await h2?.close();
  await s3?.close();
});

describe('the stand-in plays S3, not s3rver', () => {
  // A client that goes through the proxy, as the server does.
  const viaProxy = (region = 'us-east-1') =>
    new S3Client({
      endpoint: s3.endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 200;
    } catch (err) {
      const e = err as { $metadata?: { httpStatusCode?: number }; name?: string; $response?: { headers?: Record<string, string> } };
      return `${e.$metadata?.httpStatusCode} ${e.name}${e.$response?.headers?.['x-amz-bucket-region'] ? ` ${e.$response.headers['x-amz-bucket-region']}` : ''}`;
    }
  };

  it('answers 403 AccessDenied for a missing key and refuses listing without s3:ListBucket', async () => {
    const c = viaProxy();
    try {
      expect(await status(c.send(new GetObjectCommand({ Bucket: NOLIST, Key: 'nope.txt' })))).toBe('403 AccessDenied');
      expect(await status(c.send(new ListObjectsV2Command({ Bucket: NOLIST })))).toBe('403 AccessDenied');
      expect(await status(c.send(new GetObjectCommand({ Bucket: NOLIST, Key: 'data/there.txt' })))).toBe(200);
      expect(await status(c.send(new GetObjectCommand({ Bucket: REG, Key: 'nope.txt' })))).toBe('404 NoSuchKey');
    } finally {
      c.destroy();
    }
  });

  it('enforces If-None-Match and If-Match on PUT and DELETE', async () => {
    const c = viaProxy();
    try {
      const key = 'cond/a.txt';
      expect(await status(c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: '1', IfNoneMatch: '*' })))).toBe(200);
      expect(await status(c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: '2', IfNoneMatch: '*' })))).toBe('412 PreconditionFailed');
      expect(await status(c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: '2', IfMatch: '"0123"' })))).toBe('412 PreconditionFailed');
      expect(await status(c.send(new PutObjectCommand({ Bucket: REG, Key: 'cond/missing.txt', Body: '2', IfMatch: '"0123"' })))).toBe('404 NoSuchKey');
      const put = await c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: '3' }));
      expect(await status(c.send(new DeleteObjectCommand({ Bucket: REG, Key: key, IfMatch: '"0123"' })))).toBe('412 PreconditionFailed');
      expect(await status(c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: '4', IfMatch: put.ETag })))).toBe(200);
      expect(await getText(REG, key)).toBe('4');
    } finally {
      c.destroy();
    }
  });

  it('serves an object whole while it is being overwritten (s3rver wrote in place: readers saw it cut)', async () => {
    const c = viaProxy();
    const direct = s3.client;
    try {
      const key = 'whole/object.bin';
      const versions = ['a', 'b', 'c', 'd'].map((ch) => ch.repeat(2 * 1024 * 1024));
      await c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: versions[0] }));
      const seen = new Set<string>();
      const reads = async (client: S3Client) => {
        for (let i = 0; i < 12; i++) {
          const text = await (await client.send(new GetObjectCommand({ Bucket: REG, Key: key }))).Body!.transformToString();
          seen.add(text.length === versions[0]!.length && versions.includes(text) ? 'whole' : `cut at ${text.length}`);
        }
      };
      // Writes through the proxy; reads through it and straight to s3rver (the store's own behaviour).
      await Promise.all([
        (async () => {
          for (const v of [...versions.slice(1), ...versions]) await c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: v }));
        })(),
        reads(c),
        reads(direct),
      ]);
      expect([...seen]).toEqual(['whole']);
    } finally {
      c.destroy();
    }
  });

  /**
   * A PUT sent by hand to the proxy: its headers and `sent` of its body's `length` bytes, then the
   * connection destroyed. The stand-in holds it until the client has gone, as when a server is
   * killed while S3 works on its write.
   */
  const hangUpPut = async (key: string, sent: Buffer, length: number) => {
    const c = viaProxy();
    const url = await getSignedUrl(c, new PutObjectCommand({ Bucket: REG, Key: key }), { expiresIn: 60 });
    c.destroy();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    before = (r) => (r.method === 'PUT' && r.key === key ? held : undefined);
    try {
      await new Promise<void>((resolve) => {
        const req = http.request(url, { method: 'PUT', headers: { 'content-length': length } });
        req.on('error', () => resolve());
        req.flushHeaders();
        req.write(sent, () => setTimeout(() => {
          req.destroy();
          resolve();
        }, 50));
      });
    } finally {
      release();
      before = () => undefined;
    }
  };
  /** What `p` gives, or a note that it gave nothing within `ms`. */
  const within = <T,>(p: Promise<T>, ms: number) =>
    Promise.race([p, new Promise<string>((r) => setTimeout(() => r(`no answer within ${ms / 1000} s`), ms))]);

  it('drops a write whose client went away before its body ended: reads of the key see the object before it', async () => {
    const c = viaProxy();
    const key = 'hangup/pointer';
    try {
      await c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: 'old' }));
      await hangUpPut(key, Buffer.from('new, cut'), 1000);
      const text = await within(c.send(new GetObjectCommand({ Bucket: REG, Key: key })).then((o) => o.Body!.transformToString()), 10_000);
      expect(text).toBe('old');
    } finally {
      c.destroy();
    }
  });

  it('carries out a write whose body arrived whole though its client went away before the answer', async () => {
    const c = viaProxy();
    const key = 'hangup/whole';
    try {
      await c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: 'old' }));
      await hangUpPut(key, Buffer.from('new'), 3);
      // A read after the write was received sees it (reads wait for the writes of their key under way).
      const text = await (await c.send(new GetObjectCommand({ Bucket: REG, Key: key }))).Body!.transformToString();
      expect(text).toBe('new');
    } finally {
      c.destroy();
    }
  });

  it('carries out a DELETE whose client went away while it waited, and later requests of the key are answered (a server killed mid-delete held them forever)', async () => {
    const c = viaProxy();
    const key = 'hangup/deleted';
    try {
      await c.send(new PutObjectCommand({ Bucket: REG, Key: key, Body: 'doomed' }));
      // Held until the stand-in has seen its client go.
      let noticed = false;
      before = async (r) => {
        if (r.method !== 'DELETE' || r.key !== key) return;
        for (const t = Date.now(); s3.open.has(r) && Date.now() - t < 3000; ) await new Promise((w) => setTimeout(w, 10));
        noticed = !s3.open.has(r);
      };
      const url = await getSignedUrl(c, new DeleteObjectCommand({ Bucket: REG, Key: key }), { expiresIn: 60 });
      await new Promise<void>((resolve) => {
        const req = http.request(url, { method: 'DELETE' });
        req.on('error', () => resolve());
        // Gone as soon as it is sent, as when the server is killed right after sending it.
        req.end(() => {
          req.destroy();
          setTimeout(resolve, 100);
        });
      });
      for (const t = Date.now(); !noticed && Date.now() - t < 4000; ) await new Promise((w) => setTimeout(w, 10));
      expect(noticed).toBe(true);
      before = () => undefined;
      expect(await within(status(c.send(new GetObjectCommand({ Bucket: REG, Key: key }))), 3_000)).toBe('404 NoSuchKey');
    } finally {
      before = () => undefined;
      c.destroy();
    }
  });

  it('redirects requests signed for the wrong region with 301 and the bucket region', async () => {
    const us = viaProxy('us-east-1');
    const eu = viaProxy('eu-west-1');
    try {
      expect(await status(us.send(new GetObjectCommand({ Bucket: EU, Key: 'data/hello.txt' })))).toMatch(/^301 .* eu-west-1$/);
      expect(await status(eu.send(new GetObjectCommand({ Bucket: EU, Key: 'data/hello.txt' })))).toBe(200);
    } finally {
      us.destroy();
      eu.destroy();
    }
  });
});

describe('403 for missing keys without s3:ListBucket', () => {
  it('creates a new package: a 403 on its not-yet-existing latest pointer means absent', async () => {
    const r = ok(await call(h1.client, 'package_create', { bucket: NOLIST, name: 'team/fresh', entries: [{ logical_key: 'a.txt', text: 'a' }] }));
    const ptrs = await expectConsistent(NOLIST, 'team/fresh');
    expect(ptrs.get('latest')).toBe(r.top_hash);
    expect(ptrs.get(r.tag)).toBe(r.top_hash);
    // It exists now: a second create without force is refused, not overwritten.
    const again = await call(h1.client, 'package_create', { bucket: NOLIST, name: 'team/fresh', entries: [{ logical_key: 'b.txt', text: 'b' }] });
    expect(again.isError).toBe(true);
    expect(again.text).toContain('already exists');
    // And updates work (latest exists, so every read succeeds).
    const up = ok(await call(h1.client, 'package_update', { bucket: NOLIST, name: 'team/fresh', add: [{ logical_key: 'b.txt', text: 'b' }] }));
    expect((await pointers(NOLIST, 'team/fresh')).get('latest')).toBe(up.top_hash);
  });

  it('says a 403 may mean "missing" when reading a package or object that does not exist', async () => {
    const browse = await call(h1.client, 'package_browse', { bucket: NOLIST, name: 'team/never' });
    expect(browse.isError).toBe(true);
    expect(browse.text).toMatch(/Access denied, or package team\/never has no "latest" pointer/);
    expect(browse.text).toContain('without s3:ListBucket');
    const update = await call(h1.client, 'package_update', { bucket: NOLIST, name: 'team/never', message: 'm' });
    expect(update.isError).toBe(true);
    expect(update.text).toContain('S3 answers 403 for both');
    const read = await call(h1.client, 'bucket_object_text', { uri: `s3://${NOLIST}/data/missing.txt` });
    expect(read.isError).toBe(true);
    expect(read.text).toMatch(/Access denied, or s3:\/\/fid-nolist\/data\/missing.txt does not exist: without s3:ListBucket/);
  });
});

describe('buckets in another region', () => {
  it('reads a bucket in eu-west-1 after one redirect, re-signed for eu-west-1', async () => {
    const n = s3.requests.length;
    const r = await call(h1.client, 'bucket_object_text', { uri: `s3://${EU}/data/hello.txt` });
    expect(r.isError, r.text).toBe(false);
    expect(r.text).toContain('Hello from Ireland');
    const seen = s3.requests.slice(n).filter((q) => q.bucket === EU);
    expect(seen[0]).toMatchObject({ region: 'us-east-1', status: 301 });
    expect(seen.length).toBeGreaterThan(1);
    for (const q of seen.slice(1)) expect(q).toMatchObject({ region: 'eu-west-1' });
    expect(seen.at(-1)!.status).toBeLessThan(300);
    // The region is remembered: the next call goes to eu-west-1 at once.
    const m = s3.requests.length;
    ok(await call(h1.client, 'bucket_object_info', { uri: `s3://${EU}/data/hello.txt` }));
    expect(s3.requests.slice(m).map((q) => q.region)).toEqual(['eu-west-1']);
  });

  it('creates and browses a package in eu-west-1', async () => {
    const c = ok(await call(h2.client, 'package_create', { bucket: EU, name: 'team/eu', entries: [{ logical_key: 'hello.txt', s3_uri: `s3://${EU}/data/hello.txt` }] }));
    const b = ok(await call(h2.client, 'package_browse', { bucket: EU, name: 'team/eu' }));
    expect(b.top_hash).toBe(c.top_hash);
    await expectConsistent(EU, 'team/eu');
  });

  it('signs download links for the bucket region (found by HeadBucket), and they work', async () => {
    // A server that has not met the bucket yet, so the region comes from HeadBucket's redirect.
    const h3 = await connectStdio(s3Env(s3.endpoint));
    let r;
    try {
      r = ok(await call(h3.client, 'bucket_object_link', { uri: `s3://${EU}/data/hello.txt`, expires_in: 60 }));
    } finally {
      await h3.close();
    }
    expect(new URL(r.url).searchParams.get('X-Amz-Credential')).toMatch(/\/eu-west-1\/s3\/aws4_request$/);
    const res = await fetch(r.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Hello from Ireland');
  });
});

describe('conditional writes of latest', () => {
  const latestOf = (name: string) => (r: S3Request) => r.method === 'PUT' && r.bucket === REG && r.key === `${NAMED}${name}/latest`;

  it('two servers updating at the same moment: exactly one wins, the other is told to retry', async () => {
    const base = ok(await call(h1.client, 'package_create', { bucket: REG, name: 'team/duel', entries: [{ logical_key: 'seed.txt', text: 's' }] }));
    before = gate(latestOf('team/duel'), 2);
    let results: ToolCall[];
    try {
      results = await Promise.all([
        call(h1.client, 'package_update', { bucket: REG, name: 'team/duel', add: [{ logical_key: 'one.txt', text: '1' }] }),
        call(h2.client, 'package_update', { bucket: REG, name: 'team/duel', add: [{ logical_key: 'two.txt', text: '2' }] }),
      ]);
    } finally {
      before = () => undefined;
    }
    const won = results.filter((r) => !r.isError);
    const lost = results.filter((r) => r.isError);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.text).toContain('changed by someone else at the same moment');
    expect(lost[0]!.text).toContain('retry');
    const ptrs = await expectConsistent(REG, 'team/duel');
    expect(ptrs.get('latest')).toBe(won[0]!.data.top_hash);
    // The loser's timestamp pointer was withdrawn: the base's and the winner's remain.
    expect([...ptrs.values()].sort()).toEqual([base.top_hash, won[0]!.data.top_hash, won[0]!.data.top_hash].sort());
  });

  it('two servers creating the same new package at the same moment: one wins', async () => {
    before = gate(latestOf('team/twins'), 2);
    let results: ToolCall[];
    try {
      results = await Promise.all([
        call(h1.client, 'package_create', { bucket: REG, name: 'team/twins', entries: [{ logical_key: 'a.txt', text: 'first' }] }),
        call(h2.client, 'package_create', { bucket: REG, name: 'team/twins', entries: [{ logical_key: 'a.txt', text: 'second' }] }),
      ]);
    } finally {
      before = () => undefined;
    }
    const won = results.filter((r) => !r.isError);
    expect(won).toHaveLength(1);
    expect(results.find((r) => r.isError)!.text).toMatch(/changed by someone else|created in .* by someone else/);
    const ptrs = await expectConsistent(REG, 'team/twins');
    expect(ptrs.size).toBe(2);
    expect(ptrs.get('latest')).toBe(won[0]!.data.top_hash);
  });

  it('a refused write of latest leaves no pointer behind', async () => {
    deny = (r) => (latestOf('team/refused')(r) ? 'AccessDenied' : undefined);
    try {
      const r = await call(h1.client, 'package_create', { bucket: REG, name: 'team/refused', entries: [{ logical_key: 'a.txt', text: 'a' }] });
      expect(r.isError).toBe(true);
      expect(r.text).toContain('Access denied');
    } finally {
      deny = () => undefined;
    }
    expect(await keys(REG, `${NAMED}team/refused/`)).toEqual([]);
  });
});

describe('timestamp pointers', () => {
  it('never overwrites a timestamp pointer that names another revision', async () => {
    const name = 'team/crowded';
    const foreign = ok(await call(h1.client, 'package_create', { bucket: REG, name: 'team/foreign', entries: [{ logical_key: 'f.txt', text: 'f' }] })).top_hash as string;
    // Every second of the next few already has a revision: the old search checked five, then wrote the sixth unchecked.
    const now = Math.floor(Date.now() / 1000);
    const taken = Array.from({ length: 12 }, (_, i) => String(now - 1 + i));
    for (const t of taken) await s3.put(REG, `${NAMED}${name}/${t}`, foreign);
    // 8 commits at once (one server applies them one after the other).
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call(h1.client, 'package_create', { bucket: REG, name, force: true, entries: [{ logical_key: 'n.txt', text: `commit ${i}` }] })),
    );
    const won = results.map((r) => ok(r) as { top_hash: string; tag: string });
    const ptrs = await pointers(REG, name);
    for (const t of taken) expect(ptrs.get(t), `pointer ${t}`).toBe(foreign);
    for (const w of won) {
      expect(taken).not.toContain(w.tag);
      expect(ptrs.get(w.tag)).toBe(w.top_hash);
    }
    expect(new Set(won.map((w) => w.tag)).size).toBe(won.length);
    const ours = [...ptrs].filter(([t, h]) => t !== 'latest' && h !== foreign);
    expect(ours).toHaveLength(won.length);
  });

  it('two servers claiming the same second: If-None-Match makes one of them take the next', async () => {
    const name = 'team/same-second';
    ok(await call(h1.client, 'package_create', { bucket: REG, name, entries: [{ logical_key: 'seed.txt', text: 's' }] }));
    const isClaim = (r: S3Request) => r.method === 'PUT' && r.bucket === REG && r.key.startsWith(`${NAMED}${name}/`) && /\/\d+$/.test(r.key);
    // Both servers must pick the same second, which a busy machine cannot promise: the first two
    // claims are held until both arrived, and an attempt whose two claims name different seconds is
    // run again (the scenario is the same second, not whatever timing gave).
    for (let attempt = 1; ; attempt++) {
      const n = s3.requests.length;
      const holdManifests = gate((r) => r.method === 'PUT' && r.bucket === REG && r.key.startsWith('.quilt/packages/'), 2);
      const holdClaims = firstOnly(isClaim, 2);
      before = async (r) => {
        await holdManifests(r);
        // Let both go just after a second starts, so both are likely to pick that second.
        if (r.method === 'PUT' && r.key.startsWith('.quilt/packages/')) await new Promise((go) => setTimeout(go, 1050 - (Date.now() % 1000)));
        await holdClaims(r);
      };
      let results: ToolCall[];
      try {
        results = await Promise.all([
          call(h1.client, 'package_create', { bucket: REG, name, force: true, entries: [{ logical_key: 'x.txt', text: `one ${attempt}` }] }),
          call(h2.client, 'package_create', { bucket: REG, name, force: true, entries: [{ logical_key: 'x.txt', text: `two ${attempt}` }] }),
        ]);
      } finally {
        before = () => undefined;
      }
      const claims = s3.requests.slice(n).filter(isClaim);
      if (claims[0]?.key !== claims[1]?.key && attempt < 5) continue;
      expect(claims[0]?.key, 'both servers claimed the same second').toBe(claims[1]?.key);
      // One wins latest; the other is refused and withdraws its pointer. The winner keeps its own.
      const won = results.filter((r) => !r.isError);
      expect(won).toHaveLength(1);
      const ptrs = await expectConsistent(REG, name);
      expect(ptrs.get(won[0]!.data.tag)).toBe(won[0]!.data.top_hash);
      expect(claims.every((q) => q.headers['if-none-match'] === '*')).toBe(true);
      expect(claims.slice(0, 2).map((q) => q.status).sort()).toEqual([200, 412]);
      return;
    }
  });

  it('8 commits from one server within a second each keep their own pointer', async () => {
    const name = 'team/rapid';
    ok(await call(h1.client, 'package_create', { bucket: REG, name, entries: [{ logical_key: 'seed.txt', text: 's' }] }));
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call(h1.client, 'package_update', { bucket: REG, name, add: [{ logical_key: `f${i}.txt`, text: String(i) }] })),
    );
    const tags = results.map((r) => ok(r).tag as string);
    expect(new Set(tags).size).toBe(8);
    const ptrs = await expectConsistent(REG, name);
    expect([...ptrs.keys()].filter((t) => t !== 'latest')).toHaveLength(9);
    for (const r of results) expect(ptrs.get(r.data.tag)).toBe(r.data.top_hash);
  });
});

describe('package_delete against a concurrent commit', () => {
  const latestKey = (name: string) => `${NAMED}${name}/latest`;

  async function twoRevisions(name: string) {
    const a = ok(await call(h1.client, 'package_create', { bucket: REG, name, entries: [{ logical_key: 'a.txt', text: `${name} a` }] }));
    const b = ok(await call(h1.client, 'package_update', { bucket: REG, name, add: [{ logical_key: 'b.txt', text: 'b' }] }));
    const other = ok(await call(h1.client, 'package_create', { bucket: REG, name: `${name}-other`, entries: [{ logical_key: 'o.txt', text: 'o' }] }));
    return { a: a.top_hash as string, b: b.top_hash as string, other: other.top_hash as string };
  }

  it('deleting a whole package while another writer moves latest deletes nothing', async () => {
    const name = 'team/doomed';
    const { other } = await twoRevisions(name);
    const beforeDelete = await pointers(REG, name);
    before = async (r) => {
      if (r.method === 'DELETE' && r.bucket === REG && r.key === latestKey(name)) {
        before = () => undefined;
        await s3.put(REG, latestKey(name), other); // the other writer commits first
      }
    };
    try {
      const r = await call(h2.client, 'package_delete', { bucket: REG, name });
      expect(r.isError, r.text).toBe(true);
      expect(r.text).toContain('changed while it was being deleted');
      expect(r.text).toContain('nothing was deleted');
    } finally {
      before = () => undefined;
    }
    const after = await pointers(REG, name);
    expect(after.get('latest')).toBe(other);
    expect([...after.keys()].sort()).toEqual([...beforeDelete.keys()].sort());
  });

  it('deleting the latest revision while another writer moves latest leaves theirs in place', async () => {
    const name = 'team/moving';
    const { a, b, other } = await twoRevisions(name);
    before = async (r) => {
      if (r.method === 'PUT' && r.bucket === REG && r.key === latestKey(name)) {
        before = () => undefined;
        await s3.put(REG, latestKey(name), other);
      }
    };
    try {
      const r = await call(h2.client, 'package_delete', { bucket: REG, name, hash: b });
      expect(r.isError, r.text).toBe(true);
      expect(r.text).toContain('changed while it was being deleted');
    } finally {
      before = () => undefined;
    }
    const after = await pointers(REG, name);
    expect(after.get('latest')).toBe(other);
    expect([...after.values()].filter((h) => h === b)).toHaveLength(1); // b's timestamp pointer is still there
    expect([...after.values()].filter((h) => h === a)).toHaveLength(1);
  });

  it('without a race, deletes a revision (latest moves back) and then the package', async () => {
    const name = 'team/calm';
    const { a, b } = await twoRevisions(name);
    const r1 = ok(await call(h2.client, 'package_delete', { bucket: REG, name, hash: b }));
    expect(r1.latest).toBe(a);
    await expectConsistent(REG, name);
    const r2 = ok(await call(h2.client, 'package_delete', { bucket: REG, name }));
    expect(r2.latest).toBeNull();
    expect(await keys(REG, `${NAMED}${name}/`)).toEqual([]);
  });
});
