import { z } from 'zod';
import { count, formatBytes } from '../format.js';
import { parsePackageName } from '../packages/names.js';
import { pushRevision } from '../packages/push.js';
import { openRegistry } from '../packages/registries.js';
import { resolveRevision } from '../packages/registry.js';
import { lines } from './args.js';
import { defineTool } from './define.js';
import { hashOrTagArg, packageNameArg, registryArg, revisionLinks } from './package-args.js';

export const packagePush = defineTool({
  name: 'package_push',
  title: 'Push a package to S3',
  description:
    'Copy a revision (e.g. from the local registry) to a bucket, as quilt3 push: data to <to_bucket>/<name>/, hashes kept.',
  toolset: 'packages',
  kind: 'write',
  input: {
    bucket: registryArg,
    name: packageNameArg,
    hash_or_tag: hashOrTagArg,
    to_bucket: z.string().describe('Target bucket'),
    to_name: z.string().optional().describe('Default: name'),
    message: z.string().max(10_000).optional().describe('New commit message'),
  },
  output: {
    bucket: z.string(),
    name: z.string(),
    top_hash: z.string(),
    tag: z.string(),
    from_top_hash: z.string(),
    entries: z.number(),
    total_size: z.number(),
    copied: z.number().describe('Objects copied or uploaded (the rest were in place)'),
    quilt_uri: z.string(),
    catalog_url: z.string().optional(),
    note: z.string().optional(),
  },
  async handler(args, ctx, extras) {
    const src = await openRegistry(ctx, args.bucket);
    const dest = await openRegistry(ctx, args.to_bucket, 'write');
    const name = parsePackageName(args.name);
    const destName = args.to_name ? parsePackageName(args.to_name) : name;
    dest.authorize('write'); // before any read, so a read-only caller costs no AWS call
    const hash = await resolveRevision(src, name, args.hash_or_tag);
    const r = await pushRevision(src, name, hash, dest, destName, { message: args.message }, extras);
    const note = r.sameHash ? undefined : `The top hash differs from the source's (${hash}): the message or the target's workflow changed the header.`;
    const data = { bucket: dest.id, name: destName, top_hash: r.hash, tag: r.tag, from_top_hash: hash, entries: r.entries, total_size: r.totalSize, copied: r.copied, ...revisionLinks(dest, destName, r.hash), note };
    const text = lines(
      `Pushed ${name}@${hash} from ${src.id} to ${destName}@${r.hash} in ${dest.id}, tag ${r.tag} (${count(r.entries, 'entry', 'entries')}, ${formatBytes(r.totalSize)}; ${r.copied} copied).`,
      [data.quilt_uri, data.catalog_url],
      note,
    );
    return { data, text };
  },
});
