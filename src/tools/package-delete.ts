import { z } from 'zod';
import { parsePackageName } from '../packages/names.js';
import { removePackage } from '../packages/remove.js';
import { openRegistry } from '../packages/registries.js';
import { defineTool } from './define.js';
import { packageNameArg, registryArg } from './package-args.js';

export const packageDelete = defineTool({
  name: 'package_delete',
  title: 'Delete a package or revision',
  description:
    'Delete a package or one revision (its pointers; manifests and data stay, reachable by hash). Latest moves to the newest remaining revision.',
  toolset: 'packages',
  kind: 'destructive',
  input: {
    bucket: registryArg,
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
    const reg = await openRegistry(ctx, args.bucket, 'write');
    const bucket = reg.id;
    const name = parsePackageName(args.name);
    reg.authorize('delete');
    const { removed, latest: newLatest, target } = await removePackage(reg, name, args.hash);
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
