/**
 * Deleting a package or one revision: only pointers, never manifests or data. Same commit
 * discipline as a push, mirrored: `latest` changes first (conditional on the ETag read, so a
 * revision committed meanwhile is never undone), then the timestamp pointers go, each only while it
 * still names what was read. So `latest` always names a revision that has its timestamp pointer, and
 * a lost race deletes nothing.
 */
import { mapS3 } from '../core/concurrency.js';
import { ToolError } from '../core/errors.js';
import { withPackageLock } from './build.js';
import { deleteKey, listKeys, pointerPrefix, pointsAt, putBody, readPointer, resolveRevision, type RegistryStore } from './registry.js';

export interface Removed {
  /** Pointer keys deleted. */
  removed: string[];
  /** Where latest points now (null: the package is gone). */
  latest: string | null;
  /** The revision deleted, when only one was. */
  target?: string | undefined;
}

export async function removePackage(reg: RegistryStore, name: string, hash?: string): Promise<Removed> {
  const bucket = reg.id;
  return withPackageLock(reg, name, async () => {
    const prefix = pointerPrefix(name);
    const { keys } = await listKeys(reg, prefix);
    const tags = keys.map((k) => k.key.slice(prefix.length)).filter((t) => /^(latest|\d+)$/.test(t));
    if (tags.length === 0) {
      throw new ToolError('not_found', `Package ${name} does not exist in ${bucket}.`, `See the packages with package_list(bucket="${bucket}").`);
    }
    const target = hash ? await resolveRevision(reg, name, hash) : undefined;
    // Each pointer with its ETag: the deletes below are conditional on what was read here.
    const pointers = (await mapS3(tags, async (tag) => ({ tag, ...(await readPointer(reg, name, tag)) }))).filter(
      (p): p is { tag: string; hash: string; etag: string | undefined } => typeof p.hash === 'string',
    );
    const latest = pointers.find((p) => p.tag === 'latest');
    const doomed = pointers.filter((p) => p.tag !== 'latest' && (target === undefined || p.hash === target));
    if (target && doomed.length === 0 && latest?.hash !== target) {
      throw new ToolError('not_found', `Package ${name} has no revision ${target} in ${bucket}.`, `package_list(bucket="${bucket}", name="${name}") lists its revisions.`);
    }
    const remaining = pointers.filter((p) => p.tag !== 'latest' && !doomed.includes(p)).sort((a, b) => Number(b.tag) - Number(a.tag));
    const removed: string[] = [];
    const latestKey = `${prefix}latest`;
    let newLatest: string | null = latest?.hash ?? null;

    if (latest && (target === undefined || latest.hash === target)) {
      const next = target === undefined ? undefined : remaining[0]?.hash;
      try {
        if (next) {
          await putBody(reg, latestKey, next, 'text/plain', latest.etag ? { ifMatch: latest.etag } : undefined);
          newLatest = next;
        } else {
          // Already gone (deleted by someone else at the same moment) is fine: it was to go.
          if (await deleteKey(reg, latestKey, latest.etag)) removed.push(latestKey);
          newLatest = null;
        }
      } catch (err) {
        if (!(err instanceof ToolError && err.code === 'conflict')) throw err;
        // A write whose answer was lost may have landed, and the SDK's retry of it been refused (412).
        if (next && (await pointsAt(reg, name, 'latest', next))) newLatest = next;
        else throw new ToolError(
          'conflict',
          `Package ${name} in ${bucket} changed while it was being deleted (latest moved to another revision at the same moment); nothing was deleted.`,
          'Browse the package to see its new latest revision, then retry the delete if it should still go.',
        );
      }
    } else if (!latest && target === undefined) {
      newLatest = null;
    }

    // All at once: each delete is conditional on its own pointer.
    const gone = await mapS3(doomed, async (p) => {
      try {
        return (await deleteKey(reg, `${prefix}${p.tag}`, p.etag)) ? `${prefix}${p.tag}` : undefined;
      } catch (err) {
        // Replaced meanwhile: it names another revision now, which this delete must not touch.
        if (!(err instanceof ToolError && err.code === 'conflict')) throw err;
        return undefined;
      }
    });
    for (const key of gone) if (key) removed.push(key);
    return { removed, latest: newLatest, target };
  });
}
