/**
 * A package's revisions, newest first: one per timestamp pointer (`<name>/<unix seconds>`, as quilt3
 * names them), with the top hash it holds and its manifest's message. Pages are cut by tag, so a
 * revision committed between two pages never shifts the next one.
 */
import { mapBounded } from '../concurrency.js';
import { ToolError } from '../errors.js';
import { listKeys, pointerPrefix, readManifestHeader, readPointer, type RegistryStore } from './registry.js';

/**
 * Pointer keys read per listing (S3 lists them oldest first: a package with more is listed, and said
 * to be listed, from its oldest ones).
 */
export const MAX_POINTER_KEYS = 100_000;

export interface Revision {
  tag: string;
  /** When the revision was made (its tag), ISO 8601. */
  time: string;
  top_hash: string;
  message?: string | null | undefined;
  latest: boolean;
  /** Why the manifest's message could not be read (the revision is listed all the same). */
  error?: string | undefined;
}

export interface RevisionPage {
  revisions: Revision[];
  /** Revisions in all (timestamp pointers), as listed. */
  total: number;
  latest: string | undefined;
  /** The tag the next page starts below, when there is one. */
  before: string | undefined;
  /** The listing stopped at MAX_POINTER_KEYS pointer keys. */
  truncated: boolean;
}

export async function listRevisions(
  reg: RegistryStore,
  name: string,
  { limit, before, signal }: { limit: number; before?: string | undefined; signal?: AbortSignal | undefined },
): Promise<RevisionPage> {
  const bucket = reg.id;
  const prefix = pointerPrefix(name);
  const [{ keys, truncated }, latest] = await Promise.all([
    listKeys(reg, prefix, { max: MAX_POINTER_KEYS, signal }),
    readPointer(reg, name, 'latest', signal ? { signal } : {}),
  ]);
  const tags = keys
    .map((k) => k.key.slice(prefix.length))
    .filter((t) => /^\d{1,12}$/.test(t))
    .sort((a, b) => Number(b) - Number(a));
  if (tags.length === 0 && !latest) {
    throw new ToolError('not_found', `Package ${name} does not exist in ${bucket}.`, `package_list(bucket="${bucket}") shows its packages.`);
  }
  const after = before === undefined ? tags : tags.filter((t) => Number(t) < Number(before));
  const page = after.slice(0, limit);
  const revisions = await mapBounded(page, 8, async (tag): Promise<Revision | undefined> => {
    const pointer = await readPointer(reg, name, tag, signal ? { signal } : {});
    if (!pointer) return undefined; // deleted meanwhile
    const r: Revision = { tag, time: new Date(Number(tag) * 1000).toISOString(), top_hash: pointer.hash, latest: pointer.hash === latest?.hash };
    try {
      const header = await readManifestHeader(reg, pointer.hash);
      r.message = typeof header.message === 'string' || header.message === null ? header.message : undefined;
    } catch (err) {
      if (!(err instanceof ToolError) || err.code === 'access_denied' || err.code === 'credentials_expired') throw err;
      r.error = err.message;
    }
    return r;
  });
  const last = page[page.length - 1];
  return {
    revisions: revisions.filter((r): r is Revision => r !== undefined),
    total: tags.length,
    latest: latest?.hash,
    before: after.length > page.length && last ? last : undefined,
    truncated,
  };
}
