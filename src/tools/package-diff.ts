import { z } from 'zod';
import { parseBucket } from '../aws/s3-uri.js';
import { diffManifests, type DiffItem } from '../packages/diff.js';
import { manifestWork } from '../packages/manifest-work.js';
import { parsePackageName } from '../packages/names.js';
import { resolveRevision, streamManifestBatches } from '../packages/registry.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';
import { packageNameArg } from './package-args.js';

const side = z.object({ size: z.number(), hash: z.string(), physical_key: z.string() });
const item = z.object({ logical_key: z.string(), from: side.optional(), to: side.optional(), changes: z.array(z.string()).optional() });
const revision = z.object({ bucket: z.string(), name: z.string(), top_hash: z.string(), message: z.string().nullable().optional() });

const out = (i: DiffItem) => ({
  logical_key: i.logical_key,
  from: i.from && { size: i.from.size, hash: i.from.hash, physical_key: i.from.physicalKey },
  to: i.to && { size: i.to.size, hash: i.to.hash, physical_key: i.to.physicalKey },
  changes: i.changes,
});

export const packageDiff = defineTool({
  name: 'package_diff',
  title: 'Compare package revisions',
  description:
    'Compare two revisions of a package (or two packages): files added, removed and modified (content, size, metadata or location), ' +
    'with complete counts and up to `limit` files listed per kind.',
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: bucketArg,
    name: packageNameArg,
    from: z.string().describe('Older revision: top hash, unique hash prefix, timestamp tag or "latest"'),
    to: z.string().default('latest').describe('Newer revision (default "latest")'),
    to_bucket: z.string().optional().describe('Compare with a package in another bucket (default: same bucket)'),
    to_name: z.string().optional().describe('Compare with another package (default: same package)'),
    limit: z.number().int().min(1).max(1000).default(200).describe('Files listed per kind (counts are always complete)'),
  },
  output: {
    from: revision,
    to: revision,
    counts: z.object({ added: z.number(), removed: z.number(), modified: z.number(), unchanged: z.number() }),
    added: z.array(item),
    removed: z.array(item),
    modified: z.array(item),
    truncated: z.boolean(),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    const name = parsePackageName(args.name);
    const toBucket = args.to_bucket ? parseBucket(args.to_bucket) : bucket;
    const toName = args.to_name ? parsePackageName(args.to_name) : name;
    const [from, to] = await Promise.all([resolveRevision(ctx, bucket, name, args.from), resolveRevision(ctx, toBucket, toName, args.to)]);
    const d = await manifestWork(
      ctx,
      {
        what: `Comparing ${name}@${from.slice(0, 12)} with ${toName}@${to.slice(0, 12)}`,
        tooLargeHint: 'One of the revisions is not in the order quilt3 writes, so it is compared in memory, and it is too large for that here; compare it with quilt3.',
      },
      (memory) => diffManifests({ from: () => streamManifestBatches(ctx, bucket, from), to: () => streamManifestBatches(ctx, toBucket, to) }, args.limit, memory),
    );
    const msg = (m: unknown) => (typeof m === 'string' || m === null ? m : undefined);
    const data = {
      from: { bucket, name, top_hash: from, message: msg(d.headers.from.message) },
      to: { bucket: toBucket, name: toName, top_hash: to, message: msg(d.headers.to.message) },
      counts: d.counts,
      added: d.added.map(out),
      removed: d.removed.map(out),
      modified: d.modified.map(out),
      truncated: d.counts.added > d.added.length || d.counts.removed > d.removed.length || d.counts.modified > d.modified.length,
    };
    const c = d.counts;
    const lines = [
      `${name}@${from.slice(0, 12)} -> ${toName}@${to.slice(0, 12)}: ${c.added} added, ${c.removed} removed, ${c.modified} modified, ${c.unchanged} unchanged`,
      ...d.added.map((i) => `+ ${i.logical_key}`),
      ...d.removed.map((i) => `- ${i.logical_key}`),
      ...d.modified.map((i) => `~ ${i.logical_key} (${i.changes?.join(', ')})`),
    ];
    if (data.truncated) lines.push(`(lists capped at ${args.limit} per kind)`);
    return { data, text: lines.join('\n') };
  },
});
