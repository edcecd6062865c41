/**
 * The package registry layout in S3 (quilt-formats.md): pointers under
 * `.quilt/named_packages/<name>/` and manifests under `.quilt/packages/<top hash>`. Every call goes
 * through `withS3`, so the caller's permissions are checked before any AWS call.
 */
import type { Readable } from 'node:stream';
import { withS3 } from '../aws/s3.js';
import type { BucketAction, RuntimeContext } from '../context.js';
import { ToolError, fromAwsError } from '../errors.js';
import { TOP_HASH, SHORT_HASH, parseTopHash } from './names.js';
import { compareCodePoints } from './pyjson.js';
import { readManifest, manifestLines, type ManifestEntry, type ManifestHeader } from './manifest.js';

export const NAMED = '.quilt/named_packages/';
export const MANIFESTS = '.quilt/packages/';

export const pointerPrefix = (name: string) => `${NAMED}${name}/`;
export const manifestKey = (hash: string) => `${MANIFESTS}${hash}`;

interface ObjectText {
  text: string;
  lastModified?: Date | undefined;
  etag?: string | undefined;
  versionId?: string | undefined;
}

/** A small object's text, or undefined when it does not exist. */
export async function getText(ctx: RuntimeContext, bucket: string, key: string, signal?: AbortSignal): Promise<ObjectText | undefined> {
  try {
    return await withS3(ctx, { bucket, key, action: 'read', verb: 'read' }, async (client, { GetObjectCommand }) => {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      const text = (await out.Body?.transformToString('utf-8')) ?? '';
      return { text, lastModified: out.LastModified, etag: out.ETag, versionId: out.VersionId };
    });
  } catch (err) {
    if (err instanceof ToolError && err.code === 'not_found') return undefined;
    throw err;
  }
}

/** Preconditions for a write (S3 conditional writes): the key's current ETag, or that it is absent. */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: '*' };

/** Writes an object; a failed precondition is a `conflict`. */
export async function putBody(
  ctx: RuntimeContext,
  bucket: string,
  key: string,
  body: string | Uint8Array,
  contentType: string,
  condition?: WriteCondition,
): Promise<{ versionId?: string | undefined }> {
  return withS3(ctx, { bucket, key, action: 'write', verb: 'write' }, async (client, { PutObjectCommand }) => {
    try {
      const out = await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ...(condition && 'ifMatch' in condition ? { IfMatch: condition.ifMatch } : {}),
          ...(condition && 'ifNoneMatch' in condition ? { IfNoneMatch: condition.ifNoneMatch } : {}),
        }),
      );
      return { versionId: out.VersionId };
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (condition && (status === 412 || status === 409)) {
        throw new ToolError('conflict', `s3://${bucket}/${key} was changed by someone else at the same moment.`);
      }
      throw err;
    }
  });
}

export async function deleteKey(ctx: RuntimeContext, bucket: string, key: string): Promise<void> {
  await withS3(ctx, { bucket, key, action: 'delete', verb: 'delete' }, (client, { DeleteObjectCommand }) =>
    client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
  );
}

export interface ListedKey {
  key: string;
  lastModified?: Date | undefined;
}

/** Every key under a prefix (all pages), optionally stopping after `max` keys. */
export async function listKeys(
  ctx: RuntimeContext,
  bucket: string,
  prefix: string,
  { max = Infinity, action = 'list' as BucketAction, signal }: { max?: number; action?: BucketAction; signal?: AbortSignal | undefined } = {},
): Promise<{ keys: ListedKey[]; truncated: boolean }> {
  return withS3(ctx, { bucket, key: prefix, action, verb: 'list the objects of' }, async (client, { ListObjectsV2Command }) => {
    const keys: ListedKey[] = [];
    let token: string | undefined;
    do {
      const out = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: 1000 }),
        { abortSignal: signal },
      );
      for (const o of out.Contents ?? []) {
        if (keys.length >= max) return { keys, truncated: true };
        if (o.Key !== undefined) keys.push({ key: o.Key, lastModified: o.LastModified });
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return { keys, truncated: false };
  });
}

export interface ListedPackage {
  name: string;
  /** When `latest` was last written. */
  modified?: Date | undefined;
  /** Timestamp pointers. */
  revisions: number;
}

/**
 * The packages of a registry (those with a `latest` pointer), sorted by name, from one listing of
 * their pointers. With `max`, stops after that many pointer keys and says so.
 */
export async function listPackages(
  ctx: RuntimeContext,
  bucket: string,
  { prefix = '', max, signal }: { prefix?: string; max?: number; signal?: AbortSignal } = {},
): Promise<{ packages: ListedPackage[]; scanned: number; truncated: boolean }> {
  const { keys, truncated } = await listKeys(ctx, bucket, `${NAMED}${prefix}`, { max, signal });
  const byName = new Map<string, ListedPackage>();
  for (const k of keys) {
    const m = /^([^/]+\/[^/]+)\/([^/]+)$/.exec(k.key.slice(NAMED.length));
    if (!m) continue;
    const [, name = '', tag = ''] = m;
    const p = byName.get(name) ?? { name, revisions: 0 };
    if (tag === 'latest') p.modified = k.lastModified;
    else if (/^\d+$/.test(tag)) p.revisions++;
    byName.set(name, p);
  }
  const packages = [...byName.values()].filter((p) => p.modified).sort((a, b) => compareCodePoints(a.name, b.name));
  return { packages, scanned: keys.length, truncated };
}

/** The hash a pointer holds, or undefined when the pointer does not exist. */
export async function readPointer(ctx: RuntimeContext, bucket: string, name: string, tag: string, signal?: AbortSignal) {
  const obj = await getText(ctx, bucket, `${pointerPrefix(name)}${tag}`, signal);
  if (!obj) return undefined;
  const hash = obj.text.trim();
  if (!TOP_HASH.test(hash)) {
    throw new ToolError('upstream_error', `The pointer ${name}:${tag} in ${bucket} does not hold a top hash.`);
  }
  return { hash, etag: obj.etag };
}

/** The top hash of `latest` (default), a timestamp tag, a full top hash or a unique hash prefix. */
export async function resolveRevision(ctx: RuntimeContext, bucket: string, name: string, ref = 'latest'): Promise<string> {
  const r = ref.trim();
  if (TOP_HASH.test(r)) return r;
  if (SHORT_HASH.test(r) && !/^\d+$/.test(r)) {
    const { keys } = await listKeys(ctx, bucket, `${MANIFESTS}${r}`, { max: 2, action: 'read' });
    if (keys.length === 1) return parseTopHash(keys[0]!.key.slice(MANIFESTS.length));
    throw new ToolError(
      'not_found',
      keys.length ? `The hash prefix "${r}" matches several revisions in ${bucket}.` : `No revision in ${bucket} has a hash starting "${r}".`,
      keys.length ? 'Give more digits of the hash.' : 'Check the hash; package_browse without hash_or_tag shows the latest revision.',
    );
  }
  if (!/^(latest|\d+)$/.test(r)) {
    throw new ToolError('invalid_input', `"${ref}" is neither a top hash nor a tag ("latest" or a unix timestamp).`);
  }
  const p = await readPointer(ctx, bucket, name, r);
  if (!p) {
    throw new ToolError(
      'not_found',
      r === 'latest' ? `Package ${name} does not exist in ${bucket}.` : `Package ${name} has no revision tagged ${r} in ${bucket}.`,
      `See the packages of the bucket with package_list(bucket="${bucket}").`,
    );
  }
  return p.hash;
}

/**
 * Streams a manifest: the header first, then its entries. S3 failures while streaming become the
 * same ToolErrors as failures at the start.
 */
export async function* streamManifest(ctx: RuntimeContext, bucket: string, hash: string): AsyncGenerator<ManifestHeader | ManifestEntry> {
  const key = manifestKey(hash);
  const body = await withS3(ctx, { bucket, key, action: 'read', verb: 'read the package manifest' }, async (client, { GetObjectCommand }) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return out.Body as Readable;
  }).catch((err: unknown) => {
    if (err instanceof ToolError && err.code === 'not_found') {
      throw new ToolError('not_found', `There is no package revision ${hash} in ${bucket} (no manifest at ${key}).`, 'Check the hash; package_browse without hash_or_tag shows the latest revision.');
    }
    throw err;
  });
  try {
    yield* readManifest(body);
  } catch (err) {
    if (err instanceof ToolError) throw err;
    throw fromAwsError(err, { action: 'read the package manifest', bucket, key });
  } finally {
    body.destroy();
  }
}

/** Header and all entries of a manifest (for writers, which rewrite them all anyway). */
export async function loadManifest(ctx: RuntimeContext, bucket: string, hash: string) {
  let header: ManifestHeader | undefined;
  const entries: ManifestEntry[] = [];
  for await (const rec of streamManifest(ctx, bucket, hash)) {
    if (!header) header = rec as ManifestHeader;
    else entries.push(rec as ManifestEntry);
  }
  if (!header) throw new ToolError('upstream_error', `The manifest of revision ${hash} in ${bucket} is empty.`);
  return { header, entries };
}

/** Writes a manifest under its top hash. */
export async function putManifest(ctx: RuntimeContext, bucket: string, hash: string, header: ManifestHeader, entries: ManifestEntry[]) {
  // Encoded in ~1 MiB pieces, so a 100,000-entry manifest is never also held as one large string.
  const pieces: Buffer[] = [];
  let text = '';
  for (const line of manifestLines(header, entries)) {
    text += line;
    if (text.length >= 1 << 20) {
      pieces.push(Buffer.from(text, 'utf8'));
      text = '';
    }
  }
  pieces.push(Buffer.from(text, 'utf8'));
  const body = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  pieces.length = 0;
  await putBody(ctx, bucket, manifestKey(hash), body, 'application/jsonl');
}

/**
 * Writes `latest` and the timestamped pointer. With a condition, `latest` goes first and only if it
 * is still what the caller read (S3 conditional write), so two writers cannot both win.
 */
export async function putPointers(ctx: RuntimeContext, bucket: string, name: string, hash: string, condition?: WriteCondition) {
  // Two commits within one second would share a timestamp tag and the older revision would lose
  // its pointer; the later one takes the next free second instead (a few tries at most).
  let seconds = Math.floor(Date.now() / 1000);
  for (let tries = 0; tries < 5; tries++, seconds++) {
    const taken = await readPointer(ctx, bucket, name, String(seconds));
    if (!taken || taken.hash === hash) break;
  }
  const tag = String(seconds);
  if (condition) await putBody(ctx, bucket, `${pointerPrefix(name)}latest`, hash, 'text/plain', condition);
  await putBody(ctx, bucket, `${pointerPrefix(name)}${tag}`, hash, 'text/plain');
  if (!condition) await putBody(ctx, bucket, `${pointerPrefix(name)}latest`, hash, 'text/plain');
  return tag;
}
