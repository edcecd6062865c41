/**
 * A registry as tools name it: a bucket (`my-bucket` or `s3://my-bucket`), a folder
 * (`file:///abs/path`), or `local`, quilt3's local registry (as `quilt3.Package.install(registry=
 * 'local')` names it). A bucket literally called "local" is `s3://local`.
 */
import { parseBucket } from '../aws/s3-uri.js';
import type { RuntimeContext } from '../context.js';
import { localAccess } from '../local/access.js';
import { S3Store } from './s3-store.js';
import type { RegistryStore } from './store.js';

/** An S3 registry, for callers that only know buckets (search, resources/list). */
export function s3Registry(ctx: RuntimeContext, bucket: string): RegistryStore {
  return new S3Store(ctx, bucket);
}

/** `local`, quilt3's short name for its local registry (and `file://` URIs, and absolute folders). */
export const isLocalRegistryArg = (arg: string) => /^(?:local$|file:|[/~]|[A-Za-z]:[\\/]|\\\\)/i.test(arg.trim());

/**
 * The registry a tool argument names: `local`, `file:///dir`, a bucket, or `s3://bucket`. A local
 * one is checked against the caller's roots (and refused in JWT mode) before anything is read.
 */
export async function openRegistry(ctx: RuntimeContext, arg: string, action: 'read' | 'write' = 'read'): Promise<RegistryStore> {
  const raw = arg.trim();
  if (isLocalRegistryArg(raw)) {
    const local = localAccess(ctx, `The registry "${raw.length > 80 ? `${raw.slice(0, 80)}...` : raw}"`);
    const isDefault = raw.toLowerCase() === 'local';
    const dir = isDefault ? await local.roots.check(local.registry, 'The local registry', action) : await local.roots.resolve(raw, 'The registry', action);
    const { LocalStore } = await import('./local-store.js');
    return new LocalStore(ctx, dir, isDefault ? 'local' : undefined);
  }
  return s3Registry(ctx, parseBucket(raw));
}
