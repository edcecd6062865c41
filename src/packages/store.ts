/**
 * Where a registry keeps its keys: an S3 bucket (s3-store.ts) or a local folder laid out as quilt3
 * lays out its local registry (local-store.ts). The registry's logic (registry.ts: pointers,
 * revisions, the commit order) is written once against this interface; keys are the same in both
 * (`.quilt/named_packages/<name>/<tag>`, `.quilt/packages/<top hash>`, data keys).
 * Tools name a registry with registries.ts.
 */
import type { Readable } from 'node:stream';
import type { ListedObject } from '../aws/list.js';
import type { BucketAction, RuntimeContext } from '../context.js';
import type { ToolError } from '../errors.js';

export interface ObjectText {
  text: string;
  lastModified?: Date | undefined;
  etag?: string | undefined;
  versionId?: string | undefined;
}

/** A read refused with a plain 403 (S3 without s3:ListBucket answers that for a missing key too). */
export const DENIED = Symbol('denied');

/** Preconditions for a write (S3 conditional writes; a local store plays them): the key's current ETag, or that it is absent. */
export type WriteCondition = { ifMatch: string } | { ifNoneMatch: '*' };

export interface ListedPackage {
  name: string;
  /** When `latest` was last written. */
  modified?: Date | undefined;
  /** Timestamp pointers. */
  revisions: number;
  /** The last pointer key listed for it: a listing that goes on starts after it. */
  lastKey: string;
}

export interface PackageListing {
  packages: ListedPackage[];
  scanned: number;
  truncated: boolean;
  more: boolean;
}

export interface ListPackagesOptions {
  prefix?: string;
  max?: number;
  limit?: number;
  startAfter?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface RegistryStore {
  readonly kind: 's3' | 'local';
  readonly ctx: RuntimeContext;
  /** What tools take and print for this registry: the bucket name, `local`, or `file:///dir`. */
  readonly id: string;
  /** Where it is: `s3://bucket` or `file:///dir`. */
  readonly uri: string;
  /** The bucket of an S3 registry. */
  readonly bucket: string | undefined;
  /** Checked before the first request of a call (S3: the caller's claims). */
  authorize(action: BucketAction): void;
  /** A small object's text (refused past `limit`), undefined when missing, DENIED for a plain 403. */
  readText(key: string, signal: AbortSignal | undefined, limit: { bytes: number; what: string }): Promise<ObjectText | undefined | typeof DENIED>;
  /** Writes an object; a failed precondition is a `conflict`. */
  put(key: string, body: string | Uint8Array, contentType: string, condition?: WriteCondition): Promise<{ versionId?: string | undefined; etag?: string | undefined }>;
  /** Deletes an object; with `ifMatch` only while unchanged (else `conflict`); false when already gone under ifMatch. */
  remove(key: string, ifMatch?: string): Promise<boolean>;
  /** Every key under a prefix, in S3's order (code points), optionally stopping after `max`. */
  list(prefix: string, opts: { max?: number | undefined; action?: BucketAction; signal?: AbortSignal | undefined }): Promise<{ keys: ListedObject[]; truncated: boolean }>;
  /** The packages of the registry (those with `latest`), aggregated from the pointer listing (registry.ts). */
  listPackages(opts: ListPackagesOptions): Promise<PackageListing>;
  /** An object's bytes, streamed; a missing key is a `not_found` ToolError. */
  open(key: string, verb: string): Promise<{ body: Readable; size: number | undefined }>;
  /** A failure while reading what `open` gave, as a ToolError. */
  readError(err: unknown, verb: string, key: string): ToolError;
  /** The physical key (manifest form) of a key written here. */
  physicalKey(key: string, versionId?: string | undefined): string;
  /** Where data written for a package goes: `<name>/<logical key>` (S3, as quilt3 push), content-addressed locally. */
  dataKey(name: string, logicalKey: string, sha256Hex: string): string;
}
