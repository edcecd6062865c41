/**
 * A registry in an S3 bucket. Every request goes through `withS3`, so the caller's bucket and action
 * checks come first; conditional writes (If-Match, If-None-Match) are S3's own.
 */
import type { Readable } from 'node:stream';
import { listAll, type ListedObject } from '../aws/list.js';
import { withS3 } from '../aws/s3.js';
import type { BucketAction, RuntimeContext } from '../context.js';
import { ToolError, fromAwsError } from '../errors.js';
import { formatPhysicalKey } from './physical-keys.js';
import { DENIED, type ListPackagesOptions, type ObjectText, type PackageListing, type RegistryStore, type WriteCondition, type ListedPackage } from './store.js';

/** S3's own 403 AccessDenied (not a refused signature or expired token, which are also 403). */
function isPlainDenied(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 403 && ['AccessDenied', 'Forbidden', '403', 'UnknownError'].includes(e.name ?? '');
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

const sizeText = (bytes: number) => (bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`);

/** The body as text, refused past the limit (declared or sent). */
export async function smallText(body: AsyncIterable<Uint8Array> & { destroy(): void }, declared: number | undefined, where: string, limit: { bytes: number; what: string }): Promise<string> {
  const tooLarge = () =>
    new ToolError(
      'too_large',
      `${where} is larger than the ${sizeText(limit.bytes)} ${limit.what} can be; it was not read.`,
      'Check what wrote that object: Quilt writes these as small text files.',
    );
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    if ((declared ?? 0) > limit.bytes) throw tooLarge();
    for await (const chunk of body) {
      size += chunk.length;
      if (size > limit.bytes) throw tooLarge();
      chunks.push(chunk);
    }
  } finally {
    body.destroy();
  }
  // As the SDK's transformToString: a byte order mark is dropped, bad bytes become U+FFFD.
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
}

/** Pointer keys `<user>/<name>/<tag>` under NAMED. */
export const POINTER = /^([^/]+\/[^/]+)\/([^/]+)$/;

export class S3Store implements RegistryStore {
  readonly kind = 's3' as const;
  readonly id: string;
  readonly uri: string;

  constructor(
    readonly ctx: RuntimeContext,
    readonly bucket: string,
  ) {
    this.id = bucket;
    this.uri = `s3://${bucket}`;
  }

  authorize(action: BucketAction): void {
    this.ctx.authorize(this.bucket, action);
  }

  async readText(key: string, signal: AbortSignal | undefined, limit: { bytes: number; what: string }): Promise<ObjectText | undefined | typeof DENIED> {
    const bucket = this.bucket;
    try {
      return await withS3(this.ctx, { bucket, key, action: 'read', verb: 'read' }, async (client, { GetObjectCommand }) => {
        try {
          // Options only with a signal: any per-request options make the SDK resolve its middleware again.
          const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), signal ? { abortSignal: signal } : undefined);
          const body = out.Body as Readable | undefined;
          const text = body ? await smallText(body, out.ContentLength, `s3://${bucket}/${key}`, limit) : '';
          return { text, lastModified: out.LastModified, etag: out.ETag, versionId: out.VersionId };
        } catch (err) {
          if (isPlainDenied(err)) return DENIED;
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof ToolError && err.code === 'not_found') return undefined;
      throw err;
    }
  }

  /** A failed precondition is a `conflict`: 412 (ETag changed, or the key exists for If-None-Match), 409 (a concurrent conditional write) or 404 (If-Match on a key deleted meanwhile). */
  async put(key: string, body: string | Uint8Array, contentType: string, condition?: WriteCondition) {
    const bucket = this.bucket;
    return withS3(this.ctx, { bucket, key, action: 'write', verb: 'write' }, async (client, { PutObjectCommand }) => {
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
        return { versionId: out.VersionId, etag: out.ETag };
      } catch (err) {
        const status = statusOf(err);
        if (condition && (status === 412 || status === 409 || (status === 404 && 'ifMatch' in condition))) {
          throw new ToolError('conflict', `s3://${bucket}/${key} was changed by someone else at the same moment.`);
        }
        throw err;
      }
    });
  }

  /** With `ifMatch`, only if its ETag is still that one (S3 conditional delete): another ETag is a `conflict`; a key already gone returns false. */
  async remove(key: string, ifMatch?: string): Promise<boolean> {
    const bucket = this.bucket;
    return withS3(this.ctx, { bucket, key, action: 'delete', verb: 'delete' }, async (client, { DeleteObjectCommand }) => {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, ...(ifMatch ? { IfMatch: ifMatch } : {}) }));
        return true;
      } catch (err) {
        const status = statusOf(err);
        if (ifMatch && status === 404) return false;
        if (ifMatch && (status === 412 || status === 409)) {
          throw new ToolError('conflict', `s3://${bucket}/${key} was changed by someone else at the same moment.`);
        }
        throw err;
      }
    });
  }

  list(prefix: string, { max, action = 'list', signal }: { max?: number | undefined; action?: BucketAction; signal?: AbortSignal | undefined }): Promise<{ keys: ListedObject[]; truncated: boolean }> {
    return listAll(this.ctx, this.bucket, prefix, { ...(max !== undefined ? { max } : {}), action, signal });
  }

  /**
   * From a listing of the pointers, in the order S3 lists keys (by name followed by "/", code point
   * by code point). A package's pointers are listed together, so the listing is aggregated as it
   * goes and memory holds the packages returned, never the registry's pointer keys: at most `limit`
   * packages after the key `startAfter` (`more`: others follow), stopping after `max` keys (`truncated`).
   */
  async listPackages({ prefix = '', max = Infinity, limit = Infinity, startAfter, signal }: ListPackagesOptions): Promise<PackageListing> {
    const bucket = this.bucket;
    const scan = `${NAMED}${prefix}`;
    return withS3(this.ctx, { bucket, key: scan, action: 'list', verb: 'list the objects of' }, async (client, { ListObjectsV2Command }) => {
      const agg = new PackageAggregator(limit);
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: scan, ContinuationToken: token, StartAfter: token ? undefined : startAfter, MaxKeys: 1000 }),
          signal ? { abortSignal: signal } : undefined,
        );
        for (const o of out.Contents ?? []) {
          if (o.Key === undefined) continue;
          if (agg.scanned >= max) return agg.done(true);
          if (agg.add(o.Key, o.LastModified)) return agg.done(false);
        }
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return agg.done(false);
    });
  }

  async open(key: string, verb: string): Promise<{ body: Readable; size: number | undefined }> {
    const bucket = this.bucket;
    return withS3(this.ctx, { bucket, key, action: 'read', verb }, async (client, { GetObjectCommand }) => {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return { body: out.Body as Readable, size: out.ContentLength };
    });
  }

  readError(err: unknown, verb: string, key: string): ToolError {
    return fromAwsError(err, { action: verb, bucket: this.bucket, key });
  }

  physicalKey(key: string, versionId?: string | undefined): string {
    return formatPhysicalKey({ bucket: this.bucket, key, versionId });
  }

  dataKey(name: string, logicalKey: string): string {
    return `${name}/${logicalKey}`;
  }
}

export const NAMED = '.quilt/named_packages/';

/**
 * Pointer keys in listing order, turned into packages as they come: a package is closed when the
 * next one starts (packages with a `latest` pointer are kept). `add` says when one package past the
 * page has been seen (more follow).
 */
export class PackageAggregator {
  private readonly found: ListedPackage[] = [];
  private current: ListedPackage | undefined;
  scanned = 0;

  constructor(private readonly limit: number) {}

  private close(): void {
    if (this.current?.modified) this.found.push(this.current);
    this.current = undefined;
  }

  /** Counts a pointer key; true once the page is full and one more package was seen. */
  add(key: string, lastModified: Date | undefined): boolean {
    this.scanned++;
    const m = POINTER.exec(key.slice(NAMED.length));
    if (!m) return false;
    const [, name = '', tag = ''] = m;
    if (this.current?.name !== name) {
      this.close();
      // One package past the page says that more follow.
      if (this.found.length > this.limit) return true;
      this.current = { name, revisions: 0, lastKey: key };
    }
    const cur = this.current!;
    cur.lastKey = key;
    if (tag === 'latest') cur.modified = lastModified;
    else if (/^\d+$/.test(tag)) cur.revisions++;
    return false;
  }

  done(truncated: boolean): PackageListing {
    this.close();
    return { packages: this.found.slice(0, this.limit), scanned: this.scanned, truncated, more: this.found.length > this.limit };
  }
}
