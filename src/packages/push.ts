/**
 * quilt3's `Package.push`: a revision from one registry (local or S3) to an S3 registry, its data
 * copied to `<bucket>/<name>/<logical key>` (S3 objects server-side, pinned to the version that was
 * packaged; local files uploaded with checksums, upload.ts), hashes kept and physical keys
 * rewritten to the copies. The header keeps its message and metadata (a new message replaces the
 * old) and gets the target bucket's workflow, checked as quilt3 checks it; so the top hash is the
 * source's unless the message or workflow changed. Nothing points at the new revision until every
 * object and the manifest are written (build.ts's commit), so a failure leaves no partial package.
 */
import { promises as fs } from 'node:fs';
import { checkKey, formatS3Uri } from '../aws/s3-uri.js';
import { allInOrder, mapLocal, mapS3 } from '../concurrency.js';
import { ToolError, toToolError } from '../errors.js';
import { localAccess } from '../local/access.js';
import { hashFile } from '../local/hash-file.js';
import type { ToolExtras } from '../tools/define.js';
import { push, withPackageLock, type Pushed } from './build.js';
import { copyObject } from './copy.js';
import { manifestWork } from './manifest-work.js';
import type { ManifestEntry, ManifestHeader } from './manifest.js';
import { formatPhysicalKey, parsePhysicalKey } from './physical-keys.js';
import { loadManifest, readPointer, type RegistryStore } from './registry.js';
import { headSource } from './s3-checksum.js';
import { uploadFile } from './upload.js';
import { loadWorkflow } from './workflow.js';

export interface PushResult extends Pushed {
  entries: number;
  totalSize: number;
  /** Objects copied or uploaded; the rest were already in place. */
  copied: number;
  /** The new revision's top hash is the source's (same header after the workflow check). */
  sameHash: boolean;
}

function entryError(logicalKey: string, where: string, err: unknown): ToolError {
  const e = toToolError(err);
  return new ToolError(e.code, `Entry "${logicalKey}" (from ${where}): ${e.message}`, e.hint);
}

export async function pushRevision(
  src: RegistryStore,
  name: string,
  hash: string,
  dest: RegistryStore,
  destName: string,
  opts: { message?: string | undefined; workflow?: string | null | undefined },
  extras: Pick<ToolExtras, 'progress' | 'signal'>,
): Promise<PushResult> {
  const bucket = dest.bucket;
  if (bucket === undefined) {
    throw new ToolError(
      'invalid_input',
      `package_push copies into an S3 registry; ${dest.id} is a local one.`,
      'To get a package\'s files onto this machine (and into the local registry), use package_install.',
    );
  }
  const ctx = dest.ctx;
  dest.authorize('write');
  return withPackageLock(dest, destName, async () => {
    const [latest, wf] = await allInOrder([readPointer(dest, destName, 'latest', { deniedMeansAbsent: true }), loadWorkflow(dest, opts.workflow)]);
    return manifestWork(
      ctx,
      { what: `Pushing ${name}@${hash.slice(0, 12)}`, tooLargeHint: 'package_push holds the whole manifest; push a package this large with quilt3.' },
      async (memory) => {
        // Entries as objects take a few times the manifest's bytes.
        const { header: old, entries } = await loadManifest(src, hash, { onSize: (n) => memory.hold(3 * n) });
        const head: ManifestHeader = { ...old, workflow: wf.record, message: opts.message ?? old.message ?? null };
        if (wf.record === undefined) delete head.workflow;
        await wf.before({ name: destName, message: head.message, userMeta: head.user_meta ?? undefined });
        await wf.after(entries);
        for (const e of entries) checkKey(`${destName}/${e.logical_key}`, 'Destination key');

        // Local files first: each read once to check it still holds the packaged bytes and to get
        // its chunks' checksums for the upload.
        const localFiles = entries.filter((e) => /^file:/i.test(e.physical_keys[0] ?? ''));
        const uploads = new Map<ManifestEntry, { path: string; chunks: Buffer[] }>();
        if (localFiles.length) {
          const local = localAccess(ctx, 'Pushing local files');
          await mapLocal(localFiles, async (e) => {
            const pk = e.physical_keys[0]!;
            try {
              const p = await local.roots.resolve(pk, 'The file', 'read');
              const st = await fs.stat(p);
              const chunks: Buffer[] = [];
              const got = st.size === e.size ? await hashFile(p, e.size, extras.signal, chunks) : undefined;
              if (e.hash.type !== 'sha2-256-chunked' || got !== e.hash.value) {
                throw new ToolError(
                  'conflict',
                  e.hash.type !== 'sha2-256-chunked' ? `its hash is of type ${e.hash.type}, which an upload's checksums cannot carry.` : 'it no longer holds the bytes the package names (its size or hash differs).',
                  'Make a new revision from the folder (package_create or package_update), then push that.',
                );
              }
              uploads.set(e, { path: p, chunks });
            } catch (err) {
              throw entryError(e.logical_key, pk, err);
            }
          });
        }

        let copied = 0;
        let done = 0;
        const step = Math.max(1, Math.ceil(entries.length / 100));
        const moved = await mapS3(entries, async (e): Promise<ManifestEntry> => {
          const pk = e.physical_keys[0] ?? '';
          const key = `${destName}/${e.logical_key}`;
          let out = e;
          try {
            const upload = uploads.get(e);
            if (upload) {
              const { versionId } = await uploadFile(ctx, { path: upload.path, size: e.size, chunks: upload.chunks }, { bucket, key }, extras.signal);
              out = { ...e, physical_keys: [formatPhysicalKey({ bucket, key, versionId })] };
              copied++;
            } else {
              const from = parsePhysicalKey(pk);
              // Already where it would go (a package pushed before): nothing to copy, as quilt3.
              if (!(from.bucket === bucket && from.key === key)) {
                const head = await headSource(ctx, from, extras.signal);
                if (head.size !== e.size) throw new ToolError('conflict', `${formatS3Uri(from)} is ${head.size} bytes, not the ${e.size} the package names.`, 'Push a revision that matches it.');
                const { versionId } = await copyObject(ctx, { ...from, versionId: head.versionId }, head, { bucket, key }, undefined, extras.signal);
                out = { ...e, physical_keys: [formatPhysicalKey({ bucket, key, versionId })] };
                copied++;
              }
            }
          } catch (err) {
            throw entryError(e.logical_key, pk, err);
          }
          done++;
          if (done === entries.length || done % step === 0) await extras.progress(done, entries.length, `${done} of ${entries.length} objects`);
          return out;
        });
        const pushed = await push(dest, destName, head, moved, latest ?? null);
        return { ...pushed, entries: moved.length, totalSize: moved.reduce((n, e) => n + e.size, 0), copied, sameHash: pushed.hash === hash };
      },
    );
  });
}
