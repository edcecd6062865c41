import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import { mapBounded } from '../concurrency.js';
import { ToolError } from '../errors.js';
import { parsePackageName } from '../packages/names.js';
import { deleteKey, listKeys, pointerPrefix, putBody, readPointer, resolveRevision } from '../packages/registry.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';
import { packageNameArg } from './package-args.js';

export const packageDelete = defineTool({
  name: 'package_delete',
  title: 'Delete a package or revision',
  description:
    'Delete a package (all its pointers) or one revision (the pointers to that top hash) from a bucket registry. ' +
    'Data objects and manifests are never deleted, so a revision stays reachable by its hash. ' +
    'When the latest revision is deleted, latest moves to the newest remaining one.',
  toolset: 'packages',
  kind: 'destructive',
  input: {
    bucket: bucketArg,
    name: packageNameArg,
    hash: z.string().optional().describe('Delete only this revision (top hash or unique prefix); omit to delete the whole package'),
  },
  output: {
    bucket: z.string(),
    name: z.string(),
    removed: z.array(z.string()).describe('Pointer keys deleted'),
    latest: z.string().nullable().describe('Where latest points now (null: the package is gone)'),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    const name = parsePackageName(args.name);
    ctx.authorize(bucket, 'delete');
    const prefix = pointerPrefix(name);
    const { keys } = await listKeys(ctx, bucket, prefix);
    const tags = keys.map((k) => k.key.slice(prefix.length)).filter((t) => /^(latest|\d+)$/.test(t));
    if (tags.length === 0) {
      throw new ToolError('not_found', `Package ${name} does not exist in ${bucket}.`, `See the packages with package_list(bucket="${bucket}").`);
    }
    const target = args.hash ? await resolveRevision(ctx, bucket, name, args.hash) : undefined;
    const pointers = await mapBounded(tags, 8, async (tag) => ({ tag, hash: (await readPointer(ctx, bucket, name, tag))?.hash }));
    const doomed = pointers.filter((p) => p.tag !== 'latest' && (target === undefined || p.hash === target));
    const latest = pointers.find((p) => p.tag === 'latest')?.hash;
    if (target && doomed.length === 0 && latest !== target) {
      throw new ToolError('not_found', `Package ${name} has no revision ${target} in ${bucket}.`, 'package_browse without hash_or_tag shows the latest revision.');
    }
    const remaining = pointers
      .filter((p) => p.tag !== 'latest' && !doomed.includes(p) && p.hash)
      .sort((a, b) => Number(b.tag) - Number(a.tag));
    const removed: string[] = [];
    // Timestamp pointers first, latest last: a failure midway leaves latest pointing at a manifest that exists.
    for (const p of doomed) {
      await deleteKey(ctx, bucket, `${prefix}${p.tag}`);
      removed.push(`${prefix}${p.tag}`);
    }
    let newLatest: string | null = latest ?? null;
    if (target === undefined || latest === target) {
      const next = target === undefined ? undefined : remaining[0]?.hash;
      if (next) {
        await putBody(ctx, bucket, `${prefix}latest`, next, 'text/plain');
        newLatest = next;
      } else {
        await deleteKey(ctx, bucket, `${prefix}latest`);
        removed.push(`${prefix}latest`);
        newLatest = null;
      }
    }
    const what = target ? `revision ${target} of ${name}` : `package ${name}`;
    return {
      data: { bucket, name, removed, latest: newLatest },
      text:
        `Deleted ${what} from ${bucket}: ${removed.length} pointer(s) removed; ` +
        (newLatest ? `latest is now ${newLatest}.` : 'the package no longer exists.') +
        ' Manifests and data objects were left in place.',
    };
  },
});
