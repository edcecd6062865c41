import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import { parsePackageName } from '../packages/names.js';
import { removePackage } from '../packages/remove.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';
import { packageNameArg } from './package-args.js';

export const packageDelete = defineTool({
  name: 'package_delete',
  title: 'Delete a package or revision',
  description:
    'Delete a package or one revision (its pointers; manifests and data stay, reachable by hash). Latest moves to the newest remaining revision.',
  toolset: 'packages',
  kind: 'destructive',
  input: {
    bucket: bucketArg,
    name: packageNameArg,
    hash: z.string().optional().describe('Only this revision (top hash or prefix); omit for the whole package'),
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
    const { removed, latest: newLatest, target } = await removePackage(ctx, bucket, name, args.hash);
    const what = target ? `revision ${target} of ${name}` : `package ${name}`;
    return {
      data: { bucket, name, removed, latest: newLatest },
      text:
        `Deleted ${what} from ${bucket}: ${removed.length} pointer(s) removed; ` +
        (newLatest ? `latest is now ${newLatest}.` : 'the package no longer exists.') +
        ` Manifests and data objects were left in place.${removed.length ? `\nRemoved: ${removed.join(', ')}` : ''}`,
    };
  },
});
