/**
 * A checker that walks a Quilt registry after a fault or a crash and says what is wrong with it,
 * through a small view of the registry (`RegistryView`) so that every kind of registry can be
 * walked the same way: S3 (here, read directly, past every proxy) and, once the registry layer has
 * one, a local `file://` registry.
 *
 * What must hold, whatever happened to the writer (the commit order of docs/DESIGN.md: data,
 * manifest, timestamp pointer, `latest`):
 *  - every pointer holds a top hash whose manifest exists;
 *  - `latest` names a revision that has a timestamp pointer (it moves last);
 *  - every object a pointed-to manifest names inside the registry's own storage (what a write
 *    creates: text entries and copies) exists;
 *  - for a write that was interrupted, `latest` is what it was before or the revision the write
 *    was making, nothing else.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export interface PointerRef {
  name: string;
  /** `latest` or a timestamp. */
  tag: string;
}

export interface NamedObject {
  logicalKey: string;
  /** Where the manifest says its bytes are (its physical key). */
  location: string;
  /** Whether the location is in the registry's own storage (written by a package write), not data referenced in place. */
  inRegistry: boolean;
}

/** What the checker needs of a registry. */
export interface RegistryView {
  /** Names the registry in messages (s3://bucket, file:///path). */
  readonly where: string;
  /** Every pointer, optionally of one package. */
  listPointers(name?: string): Promise<PointerRef[]>;
  /** The text a pointer holds, trimmed (undefined: no such pointer). */
  readPointer(name: string, tag: string): Promise<string | undefined>;
  manifestExists(hash: string): Promise<boolean>;
  /** The objects a manifest names (undefined when it does not exist). */
  manifestObjects(hash: string): Promise<NamedObject[] | undefined>;
  /** Whether the object at a location (a physical key in the registry's storage) exists. */
  objectExists(location: string): Promise<boolean>;
}

export interface Expectation {
  name: string;
  /** What `latest` may name: the revision before the write and the one it was making (null: none). */
  latest: ReadonlyArray<string | null>;
}

const TOP_HASH = /^[0-9a-f]{64}$/;

/** The problems found (empty: the registry is consistent). */
export async function checkRegistry(view: RegistryView, { names, expect = [] }: { names?: readonly string[]; expect?: readonly Expectation[] } = {}): Promise<string[]> {
  const problems: string[] = [];
  const pointers = names ? (await Promise.all(names.map((n) => view.listPointers(n)))).flat() : await view.listPointers();
  const byName = new Map<string, Map<string, string>>();
  const manifests = new Map<string, Promise<NamedObject[] | undefined>>();
  for (const p of pointers) {
    const hash = await view.readPointer(p.name, p.tag);
    if (hash === undefined) continue; // deleted meanwhile: nothing to check
    if (!TOP_HASH.test(hash)) {
      problems.push(`${view.where}: pointer ${p.name}:${p.tag} holds ${JSON.stringify(hash.slice(0, 80))}, not a top hash`);
      continue;
    }
    let tags = byName.get(p.name);
    if (!tags) byName.set(p.name, (tags = new Map()));
    tags.set(p.tag, hash);
    if (!manifests.has(hash)) manifests.set(hash, view.manifestObjects(hash));
  }
  for (const [name, tags] of byName) {
    for (const [tag, hash] of tags) {
      const objects = await manifests.get(hash);
      if (!objects) {
        problems.push(`${view.where}: pointer ${name}:${tag} names ${hash}, whose manifest does not exist`);
        continue;
      }
    }
    const latest = tags.get('latest');
    if (latest && ![...tags].some(([tag, h]) => tag !== 'latest' && h === latest)) {
      problems.push(`${view.where}: ${name}:latest names ${latest}, which has no timestamp pointer`);
    }
  }
  // Objects named by pointed-to manifests, in the registry's storage.
  for (const [hash, pending] of manifests) {
    const objects = await pending;
    for (const o of objects ?? []) {
      if (o.inRegistry && !(await view.objectExists(o.location))) {
        problems.push(`${view.where}: manifest ${hash} names ${o.location} (${o.logicalKey}), which does not exist`);
      }
    }
  }
  for (const e of expect) {
    const latest = byName.get(e.name)?.get('latest') ?? null;
    if (!e.latest.includes(latest)) {
      problems.push(`${view.where}: ${e.name}:latest is ${latest ?? 'absent'}, expected ${e.latest.map((h) => h ?? 'absent').join(' or ')}`);
    }
  }
  return problems;
}

const NAMED = '.quilt/named_packages/';
const MANIFESTS = '.quilt/packages/';

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** The physical key's bucket and key (s3://bucket/quoted-key?versionId=...). */
function s3Location(pk: string): { bucket: string; key: string; versionId: string | undefined } | undefined {
  const m = /^s3:\/\/([^/?#]+)\/([^?#]*)(?:\?(.*))?$/.exec(pk);
  if (!m) return undefined;
  return { bucket: m[1]!, key: decodeURIComponent(m[2]!), versionId: new URLSearchParams(m[3] ?? '').get('versionId') ?? undefined };
}

/** A registry in an S3 bucket, read with `client` (the test's own, straight to the store). */
export function s3Registry(client: S3Client, bucket: string): RegistryView {
  const text = async (key: string): Promise<string | undefined> => {
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await out.Body!.transformToString();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  };
  const exists = async (b: string, key: string) => {
    try {
      await client.send(new HeadObjectCommand({ Bucket: b, Key: key }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  };
  return {
    where: `s3://${bucket}`,
    async listPointers(name) {
      const prefix = name ? `${NAMED}${name}/` : NAMED;
      const out: PointerRef[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) {
          const m = /^(.+)\/([^/]+)$/.exec(o.Key!.slice(NAMED.length));
          if (m) out.push({ name: m[1]!, tag: m[2]! });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out;
    },
    async readPointer(name, tag) {
      return (await text(`${NAMED}${name}/${tag}`))?.trim();
    },
    manifestExists: (hash) => exists(bucket, `${MANIFESTS}${hash}`),
    async manifestObjects(hash) {
      const body = await text(`${MANIFESTS}${hash}`);
      if (body === undefined) return undefined;
      const objects: NamedObject[] = [];
      for (const line of body.split('\n').slice(1)) {
        if (!line.trim()) continue;
        const entry = JSON.parse(line) as { logical_key: string; physical_keys?: string[] };
        for (const pk of entry.physical_keys ?? []) {
          objects.push({ logicalKey: entry.logical_key, location: pk, inRegistry: s3Location(pk)?.bucket === bucket });
        }
      }
      return objects;
    },
    async objectExists(location) {
      const loc = s3Location(location);
      if (!loc) return false;
      return exists(loc.bucket, loc.key);
    },
  };
}

/** The manifest's entries as the objects it names (undefined for no manifest). */
function namedObjects(body: string | undefined, inRegistry: (pk: string) => boolean): NamedObject[] | undefined {
  if (body === undefined) return undefined;
  const objects: NamedObject[] = [];
  for (const line of body.split('\n').slice(1)) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as { logical_key: string; physical_keys?: string[] };
    for (const pk of entry.physical_keys ?? []) objects.push({ logicalKey: entry.logical_key, location: pk, inRegistry: inRegistry(pk) });
  }
  return objects;
}

/** A local registry (quilt3's layout under `dir`), read from the file system. */
export function localRegistry(dir: string): RegistryView {
  const text = (file: string) => fs.readFile(path.join(dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  const filePath = (pk: string) => {
    try {
      return fileURLToPath(pk.split('?')[0]!);
    } catch {
      return undefined;
    }
  };
  return {
    where: `file://${dir}`,
    async listPointers(name) {
      const root = path.join(dir, NAMED);
      const out: PointerRef[] = [];
      const walk = async (rel: string): Promise<void> => {
        const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
        for (const e of entries) {
          const at = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) await walk(at);
          else if (rel) out.push({ name: rel, tag: e.name });
        }
      };
      await walk(name ?? '');
      return out;
    },
    async readPointer(name, tag) {
      return (await text(`${NAMED}${name}/${tag}`))?.trim();
    },
    manifestExists: async (hash) => (await text(`${MANIFESTS}${hash}`)) !== undefined,
    async manifestObjects(hash) {
      return namedObjects(await text(`${MANIFESTS}${hash}`), (pk) => {
        const p = filePath(pk);
        return p !== undefined && !path.relative(dir, p).startsWith('..');
      });
    },
    async objectExists(location) {
      const p = filePath(location);
      return p !== undefined && (await fs.stat(p).then((st) => st.isFile(), () => false));
    },
  };
}
