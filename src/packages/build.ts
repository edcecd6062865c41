/**
 * Turning sources into manifest entries and pushing a revision. Each S3 source is hashed from S3's
 * own SHA-256 checksum when it has the right shape, else read exactly once through the chunked
 * hasher; a local file is read once and hashed as it streams. Into an S3 registry, text sources
 * and local files are uploaded next to the package (`<bucket>/<name>/<logical key>`, where quilt3
 * push puts data), and so are S3 sources in copy mode (server-side copies); into a local registry,
 * files are referenced where they are (as quilt3 build does) and text is stored by content in the
 * registry. Nothing points at a revision until its data and manifest are written, so a failure
 * midway never leaves a half-written package.
 */
import type { Readable } from 'node:stream';
import type { ListedObject } from '../aws/list.js';
import { checkKey, formatS3Uri, type S3Location } from '../aws/s3-uri.js';
import { withS3 } from '../aws/s3.js';
import { KeyedMutex, mapLocal, mapS3 } from '../concurrency.js';
import type { RuntimeContext } from '../context.js';
import { ToolError, fromAwsError, toToolError } from '../errors.js';
import { guessContentType } from '../content-type.js';
import type { ToolExtras } from '../tools/define.js';
import { chunkedHashOf, chunkedHashOfStream } from './chunked-hash.js';
import { createHash } from 'node:crypto';
import type { LocalFile } from '../local/folder.js';
import { fileUriOf } from '../local/paths.js';
import { hashFile } from '../local/hash-file.js';
import { uploadFile } from './upload.js';
import { copyObject, type CopyOptions } from './copy.js';
import { chunkedHashFromS3, headSource, type SourceHead } from './s3-checksum.js';
import { topHash, validateLogicalKey, type ManifestEntry, type ManifestHeader } from './manifest.js';
import { formatPhysicalKey } from './physical-keys.js';
import type { PyJson } from './pyjson.js';
import { manifestKey, putBody, putManifest, putPointers, readFirstSecond, readPointer, type RegistryStore } from './registry.js';

export type Source = { logicalKey: string; meta?: { [k: string]: PyJson } | undefined } & (
  | {
      s3: S3Location;
      /** What a listing said of the object (its checksums tell whether a HEAD can give the hash). */
      listed?: ListedObject | undefined;
    }
  | { text: string }
  /** A local file (desktop mode), its real path checked against the roots. */
  | { file: Pick<LocalFile, 'path' | 'size'> }
);

/** quilt3 keeps an entry's user metadata under `user_meta` in the entry's `meta`. */
export const entryMeta = (userMeta: { [k: string]: PyJson } | undefined): { [k: string]: PyJson } => (userMeta ? { user_meta: userMeta } : {});

/**
 * A body up to this size whose hash S3's checksum gave is read to its end anyway (it is mostly here
 * already), so its connection can serve the next request; a larger one is cut.
 */
const DRAIN_BYTES = 256 * 1024;

/**
 * Size, version and hash of an S3 source, in one request where one suffices: a GET whose answer
 * carries the size, version, ETag and any SHA-256 checksum S3 stores (see s3-checksum.ts), so the
 * body is hashed as it streams, or not read at all when the checksum gives the hash. A source a
 * listing says has a SHA-256 checksum is asked with a HEAD instead (no body), and read only when
 * that checksum cannot give the hash; that read is pinned to the version (or ETag) the HEAD saw,
 * so size and bytes belong together.
 */
async function hashS3Object(ctx: RuntimeContext, loc: S3Location, signal: AbortSignal, listed?: ListedObject): Promise<{ hash: string; head: SourceHead }> {
  if (listed?.checksums?.includes('SHA256')) {
    if (signal.aborted) throw cancelled();
    const head = await headSource(ctx, loc, signal);
    const known = await chunkedHashFromS3(ctx, loc, head, signal);
    if (known) return { hash: known, head };
    return readAndHash(ctx, loc, signal, head);
  }
  return readAndHash(ctx, loc, signal);
}

/** One GET of the source (pinned to what `seen` saw, when given), hashed as described above. */
async function readAndHash(ctx: RuntimeContext, loc: S3Location, signal: AbortSignal, seen?: SourceHead): Promise<{ hash: string; head: SourceHead }> {
  const versionId = loc.versionId ?? seen?.versionId;
  // No abortSignal option on send (it would make the SDK resolve its middleware again for every
  // source): a cancelled call stops before each request and cuts the body it is reading.
  if (signal.aborted) throw cancelled();
  const out = await withS3(ctx, { bucket: loc.bucket, key: loc.key, action: 'read', verb: 'read' }, (client, { GetObjectCommand }) =>
    client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key, VersionId: versionId, IfMatch: versionId ? undefined : seen?.etag, ChecksumMode: 'ENABLED' })),
  );
  const body = out.Body as Readable;
  const cut = () => body.destroy(cancelled());
  signal.addEventListener('abort', cut, { once: true });
  try {
    const size = out.ContentLength;
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
      throw new ToolError('upstream_error', `S3 gave no size for s3://${loc.bucket}/${loc.key}.`);
    }
    const head: SourceHead = {
      size,
      versionId: versionId ?? out.VersionId,
      etag: out.ETag,
      contentType: out.ContentType,
      metadata: out.Metadata,
      sha256: out.ChecksumSHA256,
      checksumType: out.ChecksumType,
    };
    // (A multipart object's checksum needs its part sizes: one more request while the body waits.)
    const known = seen ? undefined : await chunkedHashFromS3(ctx, loc, head, signal);
    if (known) {
      // Best effort: the hash is known, the read only keeps the connection.
      if (size <= DRAIN_BYTES) await drain(body).catch(() => undefined);
      return { hash: known, head };
    }
    return { hash: await chunkedHashOfStream(body, size), head };
  } catch (err) {
    if (err instanceof ToolError) throw err;
    throw fromAwsError(err, { action: 'read', bucket: loc.bucket, key: loc.key });
  } finally {
    signal.removeEventListener('abort', cut);
    body.destroy();
  }
}

async function drain(body: Readable): Promise<void> {
  for await (const _ of body as AsyncIterable<Buffer>) void _;
}

const cancelled = () => new ToolError('invalid_input', 'Cancelled by the client; nothing was committed.');

export interface Materialized {
  entries: ManifestEntry[];
  /**
   * Stores the text entries and, in copy mode, copies the S3 sources into the registry (and fills
   * in their physical keys). Separate, so that everything that can refuse a revision (workflow
   * checks) runs before anything is written.
   */
  store(): Promise<void>;
}

export interface MaterializeOptions {
  /**
   * Copy S3 sources into the registry bucket at `<name>/<logical key>` (server-side) and point the
   * entries at the copies, as quilt3 push does; otherwise they are referenced where they are.
   */
  copy?: boolean;
  /** Internal tuning of the copies (tests lower the multipart threshold). */
  copyOptions?: CopyOptions;
}

/** Entries for the sources: S3 objects read once and checksummed; text checksummed in memory. */
export async function materialize(
  reg: RegistryStore,
  name: string,
  sources: readonly Source[],
  extras: Pick<ToolExtras, 'progress' | 'signal'>,
  options: MaterializeOptions = {},
): Promise<Materialized> {
  const ctx = reg.ctx;
  const registry = reg.bucket;
  const seen = new Set<string>();
  for (const s of sources) {
    validateLogicalKey(s.logicalKey);
    if (seen.has(s.logicalKey)) throw new ToolError('invalid_input', `The logical key "${s.logicalKey}" is given twice.`);
    // Text, local files and, in copy mode, every source are stored at <name>/<logical key> of a
    // bucket: refuse now what the S3 key guard would refuse mid-write.
    if (registry !== undefined && ('text' in s || 'file' in s || options.copy)) checkKey(`${name}/${s.logicalKey}`, 'text' in s ? 'Text entry key' : 'Copy destination key');
    seen.add(s.logicalKey);
  }
  if (options.copy) {
    if (registry === undefined) {
      throw new ToolError(
        'invalid_input',
        `copy copies S3 sources into the registry's bucket; ${reg.id} is a local registry, which references files where they are (as quilt3 build does).`,
        'Omit copy. To keep a copy of a package\'s files on this machine, use package_install.',
      );
    }
    reg.authorize('write');
  }
  const texts: { entry: ManifestEntry; body: Buffer }[] = [];
  const copies: { entry: ManifestEntry; src: S3Location; head: SourceHead }[] = [];
  const uploads: { entry: ManifestEntry; path: string; size: number; chunks: Buffer[] }[] = [];
  let done = 0;
  const step = Math.max(1, Math.ceil(sources.length / 100));
  const counted = async (entry: ManifestEntry) => {
    done++;
    // At most ~100 notifications, however many sources.
    if (done === sources.length || done % step === 0) await extras.progress(done, sources.length, `${done} of ${sources.length} entries`);
    return entry;
  };
  const remote = sources.filter((s) => !('file' in s));
  const local = sources.filter((s): s is Source & { file: { path: string; size: number } } => 'file' in s);
  const [remoteEntries, localEntries] = await Promise.all([
    mapS3(remote, async (s) => {
      if (extras.signal.aborted) throw cancelled();
      let entry: ManifestEntry;
      if ('s3' in s) {
        try {
          const { hash, head } = await hashS3Object(ctx, s.s3, extras.signal, s.listed);
          const { size, versionId } = head;
          const src = { ...s.s3, versionId };
          entry = {
            logical_key: s.logicalKey,
            physical_keys: [formatPhysicalKey(src)],
            size,
            hash: { type: 'sha2-256-chunked', value: hash },
            meta: entryMeta(s.meta),
          };
          // Already at its place in the registry (re-adding a copied file): nothing to copy.
          if (options.copy && !(src.bucket === registry && src.key === `${name}/${s.logicalKey}`)) copies.push({ entry, src, head });
        } catch (err) {
          throw entryError(s.logicalKey, formatS3Uri(s.s3), err);
        }
      } else {
        const body = Buffer.from((s as { text: string }).text, 'utf8');
        entry = { logical_key: s.logicalKey, physical_keys: [], size: body.length, hash: { type: 'sha2-256-chunked', value: chunkedHashOf(body) }, meta: entryMeta(s.meta) };
        texts.push({ entry, body });
      }
      return counted(entry);
    }),
    // Local files: read once each, a few at a time (the process's local I/O share, concurrency.ts).
    mapLocal(local, async (s) => {
      if (extras.signal.aborted) throw cancelled();
      const { path, size } = s.file;
      // Into a bucket the file is uploaded; the chunks' sha256s become the upload's checksums.
      const chunks = registry !== undefined ? ([] as Buffer[]) : undefined;
      let hash: string;
      try {
        hash = await hashFile(path, size, extras.signal, chunks);
      } catch (err) {
        throw entryError(s.logicalKey, path, err);
      }
      const entry: ManifestEntry = {
        logical_key: s.logicalKey,
        physical_keys: [fileUriOf(path)],
        size,
        hash: { type: 'sha2-256-chunked', value: hash },
        meta: entryMeta(s.meta),
      };
      if (chunks) uploads.push({ entry, path, size, chunks });
      return counted(entry);
    }),
  ]);
  // In the order the sources were given.
  const byKey = new Map([...remoteEntries, ...localEntries].map((e) => [e.logical_key, e]));
  const entries = sources.map((s) => byKey.get(s.logicalKey)!);
  return {
    entries,
    async store() {
      if (registry === undefined) {
        // A local registry: text by content under .quilt/data/ (never replaced: the same name is the same bytes).
        await mapLocal(texts, async ({ entry, body }) => {
          const key = reg.dataKey(name, entry.logical_key, createHash('sha256').update(body).digest('hex'));
          try {
            await putBody(reg, key, body, guessContentType(key, true), { ifNoneMatch: '*' });
          } catch (err) {
            if (!(err instanceof ToolError && err.code === 'conflict')) throw entryError(entry.logical_key, 'its text', err);
          }
          entry.physical_keys = [reg.physicalKey(key)];
        });
        return;
      }
      // Copies, text and file uploads all at once: they are independent of each other.
      const writes: Array<() => Promise<void>> = [
        ...copies.map(({ entry, src, head }) => async () => {
          const key = `${name}/${entry.logical_key}`;
          try {
            const { versionId } = await copyObject(ctx, src, head, { bucket: registry, key }, options.copyOptions, extras.signal);
            entry.physical_keys = [formatPhysicalKey({ bucket: registry, key, versionId })];
          } catch (err) {
            throw entryError(entry.logical_key, formatS3Uri(src), err);
          }
        }),
        ...texts.map(({ entry, body }) => async () => {
          const key = `${name}/${entry.logical_key}`;
          try {
            const { versionId } = await putBody(reg, key, body, guessContentType(key, true));
            entry.physical_keys = [formatPhysicalKey({ bucket: registry, key, versionId })];
          } catch (err) {
            throw entryError(entry.logical_key, 'its text', err);
          }
        }),
        ...uploads.map(({ entry, path, size, chunks }) => async () => {
          const key = `${name}/${entry.logical_key}`;
          try {
            const { versionId } = await uploadFile(ctx, { path, size, chunks }, { bucket: registry, key }, extras.signal);
            entry.physical_keys = [formatPhysicalKey({ bucket: registry, key, versionId })];
          } catch (err) {
            throw entryError(entry.logical_key, path, err);
          }
        }),
      ];
      await mapS3(writes, (write) => write());
    },
  };
}

function entryError(logicalKey: string, where: string, err: unknown): ToolError {
  const e = toToolError(err);
  return new ToolError(e.code, `Entry "${logicalKey}" (from ${where}): ${e.message}`, e.hint);
}

export interface Pushed {
  hash: string;
  tag: string;
}

/** Serializes commits to one package within this process; other processes are held off by S3 conditional writes. */
const commits = new KeyedMutex();

export function withPackageLock<T>(reg: RegistryStore, name: string, fn: () => Promise<T>): Promise<T> {
  return commits.run(`${reg.uri}/${name}`, fn);
}

/** What `latest` held when the change was started: its hash and ETag, or null for a new package. */
export type Expected = { hash: string; etag?: string | undefined } | null;

/**
 * Writes the manifest, then the pointers (timestamp, then `latest`), refusing (after writing only
 * the immutable manifest) when `latest` moved since the caller read it: a concurrent update is
 * reported, never silently overwritten. The re-read of `latest` here catches most races early; the
 * conditional write of `latest` in putPointers catches the rest, across processes.
 */
export async function push(reg: RegistryStore, name: string, header: ManifestHeader, entries: ManifestEntry[], expected: Expected): Promise<Pushed> {
  const hash = topHash(header, entries);
  return commitManifest(reg, name, hash, () => putManifest(reg, hash, header, entries), expected);
}

/** push for a manifest already encoded under its top hash (see update.ts). */
export async function pushEncoded(reg: RegistryStore, name: string, hash: string, body: Uint8Array, expected: Expected): Promise<Pushed> {
  return commitManifest(reg, name, hash, () => putBody(reg, manifestKey(hash), body, 'application/jsonl'), expected);
}

/**
 * The commit, in three round trips: the manifest (with the read of this second's timestamp
 * pointer beside it), the timestamp pointer (with `latest` read again beside it), then `latest`.
 */
async function commitManifest(reg: RegistryStore, name: string, hash: string, write: () => Promise<unknown>, expected: Expected): Promise<Pushed> {
  const bucket = reg.id;
  const first = readFirstSecond(reg, name);
  await Promise.all([write(), first.taken]);
  const tag = await putPointers(
    reg,
    name,
    hash,
    async () => {
      const now = (await readPointer(reg, name, 'latest', { deniedMeansAbsent: true })) ?? null;
      if (now?.hash !== expected?.hash) {
        throw new ToolError(
          'conflict',
          now === null
            ? `Package ${name} was deleted from ${bucket} while this revision was being built; nothing was committed.`
            : expected === null
              ? `Package ${name} was created in ${bucket} by someone else meanwhile (latest ${now.hash}); nothing was committed.`
              : `Package ${name} in ${bucket} changed meanwhile: latest is now ${now.hash}, not ${expected.hash}. Nothing was committed.`,
          'Browse the new latest revision, apply your change on top of it and retry.',
        );
      }
      return now?.etag ? { ifMatch: now.etag } : now === null ? { ifNoneMatch: '*' } : undefined;
    },
    first,
  );
  return { hash, tag };
}
