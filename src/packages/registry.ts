/**
 * The package registry layout (quilt-formats.md): pointers under `.quilt/named_packages/<name>/` and
 * manifests under `.quilt/packages/<top hash>`, in a bucket or a local folder (store.ts). Every
 * request goes through the store, which checks the caller first (S3: `withS3`; local: the roots).
 */
import type { ListedObject } from '../aws/list.js';
import type { BucketAction } from '../context.js';
import { ToolError, deniedOrMissing } from '../core/errors.js';
import { TOP_HASH, SHORT_HASH, parseTopHash } from './names.js';
import { packageMemory } from '../core/memory.js';
import { readManifest, readManifestBatches, readManifestLines, manifestLines, type ManifestEntry, type ManifestHeader, type ManifestRecord, type ReadMemory, type RecordWithLine } from './manifest.js';
import { DENIED, type ListPackagesOptions, type ObjectText, type PackageListing, type RegistryStore, type WriteCondition } from './store.js';

export type { ListedPackage, RegistryStore, WriteCondition } from './store.js';

export const NAMED = '.quilt/named_packages/';
export const MANIFESTS = '.quilt/packages/';

export const pointerPrefix = (name: string) => `${NAMED}${name}/`;
export const manifestKey = (hash: string) => `${MANIFESTS}${hash}`;

/**
 * Keys that most buckets do not have, read only to learn whether they exist: without
 * s3:ListBucket S3 answers 403 for them when missing, which must not stop a push (quilt
 * workflows are checks the pushing client applies, not an access control).
 */
const OPTIONAL_KEYS = new Set(['.quilt/workflows/config.yml']);

export interface GetTextOptions {
  signal?: AbortSignal | undefined;
  /**
   * Read a plain 403 AccessDenied as "absent". Without s3:ListBucket S3 answers 403 for a missing
   * key, so callers that expect absence (a new package's `latest`) and are guarded by a
   * conditional write anyway set this; others get an error that states the ambiguity.
   */
  deniedMeansAbsent?: boolean;
  /** Largest object read (default MAX_SMALL_OBJECT_BYTES), and what such an object is, for the refusal. */
  limit?: { bytes: number; what: string };
}

/**
 * Pointers, workflow configs and their schemas are small. A bucket may hold anything under those
 * keys (in JWT mode, whatever its tenant wrote), so a larger object is refused, not read into memory.
 */
export const MAX_SMALL_OBJECT_BYTES = 8 * 1024 * 1024;

const SMALL_OBJECT = { bytes: MAX_SMALL_OBJECT_BYTES, what: 'a Quilt pointer, workflow config or schema' };

/** A small object's text, or undefined when it does not exist. */
export async function getText(reg: RegistryStore, key: string, signal?: AbortSignal, opts: GetTextOptions = {}): Promise<ObjectText | undefined> {
  const got = await reg.readText(key, signal ?? opts.signal, opts.limit ?? SMALL_OBJECT);
  if (got !== DENIED) return got;
  if (opts.deniedMeansAbsent ?? OPTIONAL_KEYS.has(key)) {
    reg.ctx.logger.debug('403 on a key expected to be missing: read as absent (no s3:ListBucket?)', { bucket: reg.id, key });
    return undefined;
  }
  throw deniedOrMissing(`${reg.uri}/${key}`, { action: 'read', bucket: reg.id });
}

/** Writes an object; a failed precondition is a `conflict` (see the stores). */
export function putBody(reg: RegistryStore, key: string, body: string | Uint8Array, contentType: string, condition?: WriteCondition) {
  return reg.put(key, body, contentType, condition);
}

/**
 * Deletes an object. With `ifMatch`, only if its ETag is still that one (S3 conditional delete):
 * another ETag is a `conflict`; a key already gone returns false.
 */
export function deleteKey(reg: RegistryStore, key: string, ifMatch?: string): Promise<boolean> {
  return reg.remove(key, ifMatch);
}

export type ListedKey = ListedObject;

/** Every key under a prefix (S3: sub-prefixes listed concurrently, see aws/list.ts), optionally stopping after `max` keys. */
export async function listKeys(
  reg: RegistryStore,
  prefix: string,
  { max, action = 'list' as BucketAction, signal }: { max?: number; action?: BucketAction; signal?: AbortSignal | undefined } = {},
): Promise<{ keys: ListedKey[]; truncated: boolean }> {
  return reg.list(prefix, { max, action, signal });
}

/**
 * The packages of a registry (those with a `latest` pointer), from a listing of their pointers in
 * key order, aggregated as it goes: at most `limit` packages after the key `startAfter` (`more`:
 * others follow), stopping after `max` keys (`truncated`).
 */
export function listPackages(reg: RegistryStore, opts: ListPackagesOptions = {}): Promise<PackageListing> {
  return reg.listPackages(opts);
}

/**
 * The hash a pointer holds (and the pointer's ETag), or undefined when it does not exist. A 403
 * is "absent" only with `deniedMeansAbsent`; otherwise it is an error that says it may be either.
 */
export async function readPointer(reg: RegistryStore, name: string, tag: string, signalOrOpts: AbortSignal | GetTextOptions = {}) {
  const opts: GetTextOptions = signalOrOpts instanceof AbortSignal ? { signal: signalOrOpts } : signalOrOpts;
  const key = `${pointerPrefix(name)}${tag}`;
  const obj = await reg.readText(key, opts.signal, SMALL_OBJECT);
  if (obj === DENIED) {
    if (opts.deniedMeansAbsent) {
      reg.ctx.logger.debug('403 on a pointer expected to be missing: read as absent (no s3:ListBucket?)', { bucket: reg.id, key });
      return undefined;
    }
    throw new ToolError(
      'access_denied',
      `Access denied, or package ${name} has no "${tag}" pointer in ${reg.id}: without s3:ListBucket on the bucket S3 answers 403 for both.`,
      `Check the package name and bucket (package_list needs s3:ListBucket); if it exists, ask an administrator for s3:GetObject on ${reg.uri}/${NAMED}*.`,
    );
  }
  if (!obj) return undefined;
  const hash = obj.text.trim();
  if (!TOP_HASH.test(hash)) {
    throw new ToolError('upstream_error', `The pointer ${name}:${tag} in ${reg.id} does not hold a top hash.`);
  }
  return { hash, etag: obj.etag };
}

/** The top hash of `latest` (default), a timestamp tag, a full top hash or a unique hash prefix. */
export async function resolveRevision(reg: RegistryStore, name: string, ref = 'latest'): Promise<string> {
  const r = ref.trim();
  if (TOP_HASH.test(r)) return r;
  if (SHORT_HASH.test(r) && !/^\d+$/.test(r)) {
    const { keys } = await listKeys(reg, `${MANIFESTS}${r}`, { max: 2, action: 'read' });
    if (keys.length === 1) return parseTopHash(keys[0]!.key.slice(MANIFESTS.length));
    throw new ToolError(
      'not_found',
      keys.length ? `The hash prefix "${r}" matches several revisions in ${reg.id}.` : `No revision in ${reg.id} has a hash starting "${r}".`,
      keys.length ? 'Give more digits of the hash.' : `package_list(bucket="${reg.id}", name="${name}") lists the revisions and their hashes.`,
    );
  }
  if (!/^(latest|\d+)$/.test(r)) {
    throw new ToolError('invalid_input', `"${ref}" is neither a top hash nor a tag ("latest" or a unix timestamp).`);
  }
  const p = await readPointer(reg, name, r);
  if (!p) {
    throw new ToolError(
      'not_found',
      r === 'latest' ? `Package ${name} does not exist in ${reg.id}.` : `Package ${name} has no revision tagged ${r} in ${reg.id}.`,
      r === 'latest' ? `See the packages of the bucket with package_list(bucket="${reg.id}").` : `package_list(bucket="${reg.id}", name="${name}") lists its revisions and their tags.`,
    );
  }
  return p.hash;
}

/**
 * Streams a manifest: the header first, then its entries. S3 failures while streaming become the
 * same ToolErrors as failures at the start.
 */
export function streamManifest(reg: RegistryStore, hash: string, opts: StreamOptions = {}): AsyncGenerator<ManifestRecord> {
  return streamWith(reg, hash, opts, readManifest);
}

/** streamManifest in batches (see readManifestBatches). */
export function streamManifestBatches(reg: RegistryStore, hash: string, opts: StreamOptions = {}): AsyncGenerator<ManifestRecord[]> {
  return streamWith(reg, hash, opts, readManifestBatches);
}

/** streamManifest in batches, with each record's line as read (package_update copies unchanged lines). */
export function streamManifestLines(reg: RegistryStore, hash: string, opts: StreamOptions = {}): AsyncGenerator<RecordWithLine[]> {
  return streamWith(reg, hash, opts, readManifestLines);
}

interface StreamOptions {
  /** Told the manifest's length before anything is read; may throw to refuse it. */
  onSize?: (bytes: number) => void;
}

async function* streamWith<T>(
  reg: RegistryStore,
  hash: string,
  opts: StreamOptions,
  read: (body: AsyncIterable<Uint8Array>, memory: ReadMemory) => AsyncGenerator<T>,
): AsyncGenerator<T> {
  const key = manifestKey(hash);
  const { body, size } = await reg.open(key, 'read the package manifest').catch((err: unknown) => {
    if (err instanceof ToolError && err.code === 'not_found') {
      throw new ToolError('not_found', `There is no package revision ${hash} in ${reg.id} (no manifest at ${key}).`, 'Check the hash; package_browse without hash_or_tag shows the latest revision.');
    }
    throw err;
  });
  // Long lines being read count against the process's memory for package data (memory.ts).
  const lease = packageMemory.lease({
    what: `Reading the manifest of revision ${hash.slice(0, 12)} in ${reg.id}`,
    tooLargeHint: 'The manifest has lines far longer than quilt3 writes; check what wrote it.',
  });
  try {
    // Inside the try: onSize may refuse the manifest, and the body is closed either way.
    if (size !== undefined) opts.onSize?.(size);
    yield* read(body, lease);
  } catch (err) {
    if (err instanceof ToolError) throw err;
    throw reg.readError(err, 'read the package manifest', key);
  } finally {
    body.destroy();
    lease.release();
  }
}

/** A manifest's header alone: the read stops after its first line. */
export async function readManifestHeader(reg: RegistryStore, hash: string): Promise<ManifestHeader> {
  for await (const rec of streamManifest(reg, hash)) return rec as ManifestHeader;
  throw new ToolError('upstream_error', `The manifest of revision ${hash} in ${reg.id} is empty.`);
}

/** Header and all entries of a manifest (package_update's fallback for a manifest out of walk order). */
export async function loadManifest(reg: RegistryStore, hash: string, opts: StreamOptions = {}) {
  let header: ManifestHeader | undefined;
  const entries: ManifestEntry[] = [];
  for await (const rec of streamManifest(reg, hash, opts)) {
    if (!header) header = rec as ManifestHeader;
    else entries.push(rec as ManifestEntry);
  }
  if (!header) throw new ToolError('upstream_error', `The manifest of revision ${hash} in ${reg.id} is empty.`);
  return { header, entries };
}

/** Writes a manifest under its top hash. */
export async function putManifest(reg: RegistryStore, hash: string, header: ManifestHeader, entries: ManifestEntry[]) {
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
  await putBody(reg, manifestKey(hash), body, 'application/jsonl');
}

/** How many seconds after now a revision's timestamp pointer may be placed before giving up. */
export const MAX_TAG_TRIES = 60;

/** The second a commit starts in, and what its timestamp pointer holds (read while the manifest uploads). */
export interface FirstSecond {
  seconds: number;
  taken: Promise<{ hash: string } | undefined>;
}

/**
 * Reads the timestamp pointer of this second. Issued alongside the manifest's upload, it saves
 * claimTimestamp a round trip; nothing it reads can name the new revision before the upload ends.
 */
export function readFirstSecond(reg: RegistryStore, name: string): FirstSecond {
  const seconds = Math.floor(Date.now() / 1000);
  return { seconds, taken: readPointer(reg, name, String(seconds), { deniedMeansAbsent: true }) };
}

/**
 * Creates the revision's timestamp pointer `<name>/<unix seconds>` (as quilt3 names them) without
 * ever replacing one that names another revision: created with If-None-Match: *, and when the
 * second is taken, the next one is tried (up to MAX_TAG_TRIES). A pointer that already names this
 * hash is this revision's. Returns the tag, and the ETag when this call created it.
 */
async function claimTimestamp(
  reg: RegistryStore,
  name: string,
  hash: string,
  first: FirstSecond,
): Promise<{ tag: string; etag?: string | undefined; created: boolean }> {
  for (let seconds = first.seconds; seconds < first.seconds + MAX_TAG_TRIES; seconds++) {
    const tag = String(seconds);
    // Read first: it skips taken seconds cheaply, and keeps stores that ignore If-None-Match
    // (some S3-compatible ones) from overwriting a pointer written before this commit started.
    let taken = seconds === first.seconds ? await first.taken : await readPointer(reg, name, tag, { deniedMeansAbsent: true });
    if (!taken) {
      try {
        const { etag } = await putBody(reg, `${pointerPrefix(name)}${tag}`, hash, 'text/plain', { ifNoneMatch: '*' });
        return { tag, etag, created: true };
      } catch (err) {
        if (!(err instanceof ToolError && err.code === 'conflict')) throw err;
      }
      taken = await readPointer(reg, name, tag, { deniedMeansAbsent: true });
    }
    if (taken?.hash === hash) return { tag, created: false };
  }
  throw new ToolError(
    'conflict',
    `Package ${name} in ${reg.id} has revisions at every second from ${first.seconds} to ${first.seconds + MAX_TAG_TRIES - 1}, so this revision got no timestamp pointer; latest was not changed.`,
    'Wait a minute and retry (its manifest is written; retrying reuses it).',
  );
}

/**
 * Writes the timestamp pointer, then `latest`: `latest` only ever names a revision that has its
 * timestamp pointer, and moving it is the commit point. `check` runs while the timestamp pointer is
 * claimed (one round trip for both): it reads what `latest` must still be and gives the condition
 * to write it with (S3 conditional write: two writers cannot both win), or throws to stop the
 * commit. A commit stopped there, or refused when writing `latest`, removes the timestamp pointer it
 * created and reports why.
 */
export async function putPointers(
  reg: RegistryStore,
  name: string,
  hash: string,
  check: () => Promise<WriteCondition | undefined>,
  first: FirstSecond = readFirstSecond(reg, name),
) {
  const [claim, checked] = await Promise.allSettled([claimTimestamp(reg, name, hash, first), check()]);
  if (claim.status === 'rejected') throw claim.reason;
  const claimed = claim.value;
  /** Removes the timestamp pointer this call created (only while unchanged); says so when it could not. */
  const withdraw = async (): Promise<string> => {
    if (!claimed.created) return '';
    return deleteKey(reg, `${pointerPrefix(name)}${claimed.tag}`, claimed.etag).then(
      () => '',
      (e: unknown) => ` Its timestamp pointer ${name}:${claimed.tag} could not be removed (${(e as Error).message}); it names a complete revision that is not latest.`,
    );
  };
  const withLeftover = (err: unknown, leftover: string) =>
    leftover && err instanceof ToolError ? new ToolError(err.code, `${err.message}${leftover}`, err.hint) : err;
  if (checked.status === 'rejected') throw withLeftover(checked.reason, await withdraw());
  const latestKey = `${pointerPrefix(name)}latest`;
  try {
    await putBody(reg, latestKey, hash, 'text/plain', checked.value);
  } catch (err) {
    // The write may have landed with its answer lost (a reset connection): the SDK's retry of it is
    // then refused (412), or the call ends on the network error. `latest` read again tells.
    if (await pointsAt(reg, name, 'latest', hash)) return claimed.tag;
    // After a definite refusal `latest` was not written, so the new timestamp pointer is withdrawn;
    // after a network failure or 5xx it may have been, and the pointer stays.
    const refused = err instanceof ToolError && REFUSALS.has(err.code);
    const leftover = refused ? await withdraw() : '';
    if (!(err instanceof ToolError && err.code === 'conflict')) throw withLeftover(err, leftover);
    throw new ToolError(
      'conflict',
      `Package ${name} in ${reg.id} was changed by someone else at the same moment (latest moved); this revision was not committed.${leftover}`,
      'Browse the new latest revision, apply your change on top of it and retry.',
    );
  }
  return claimed.tag;
}

/** Whether a pointer holds `hash` now (false when it cannot be read either). */
export async function pointsAt(reg: RegistryStore, name: string, tag: string, hash: string): Promise<boolean> {
  return readPointer(reg, name, tag, { deniedMeansAbsent: true }).then(
    (p) => p?.hash === hash,
    () => false,
  );
}

/** Errors that mean the store refused a write (it did not happen), unlike a network failure or a 5xx. */
const REFUSALS = new Set(['conflict', 'access_denied', 'credentials_expired', 'not_found', 'invalid_input', 'too_large']);
