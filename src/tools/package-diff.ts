import { z } from 'zod';
import { diffManifests, type DiffItem } from '../packages/diff.js';
import { manifestWork } from '../packages/manifest-work.js';
import { parsePackageName } from '../packages/names.js';
import { resolveRevision, streamManifestBatches } from '../packages/registry.js';
import { formatS3Uri } from '../aws/s3-uri.js';
import { parsePhysicalKey } from '../packages/physical-keys.js';
import { lines } from './args.js';
import { openRegistry } from '../packages/registries.js';
import { defineTool } from './define.js';
import { packageNameArg, registryArg } from './package-args.js';

const side = z.object({
  size: z.number(),
  hash: z.string(),
  physical_key: z.string(),
  s3_uri: z.string().optional().describe('The same location as an s3:// URI the bucket_object_* tools take'),
});
const item = z.object({ logical_key: z.string(), from: side.optional(), to: side.optional(), changes: z.array(z.string()).optional() });
const revision = z.object({ bucket: z.string(), name: z.string(), top_hash: z.string(), message: z.string().nullable().optional() });

const s3UriOf = (pk: string) => {
  try {
    return formatS3Uri(parsePhysicalKey(pk));
  } catch {
    return undefined; // not in S3 (a local path from an old quilt3 build)
  }
};
const sideOf = (s: DiffItem['from']) => s && { size: s.size, hash: s.hash, physical_key: s.physicalKey, s3_uri: s3UriOf(s.physicalKey) };
const out = (i: DiffItem) => ({ logical_key: i.logical_key, from: sideOf(i.from), to: sideOf(i.to), changes: i.changes });
const where = (s: ReturnType<typeof sideOf>) => (s ? (s.s3_uri ?? s.physical_key) : '');

export const packageDiff = defineTool({
  name: 'package_diff',
  title: 'Compare package revisions',
  description:
    'Compare two revisions (or packages): files added, removed and modified, with complete counts.',
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: registryArg,
    name: packageNameArg,
    from: z.string().describe('Older revision (hash, prefix or tag)'),
    to: z.string().default('latest').describe('Newer revision'),
    to_bucket: z.string().optional().describe("Newer side's registry (default: bucket)"),
    to_name: z.string().optional().describe("Newer side's package (default: name)"),
    limit: z.number().int().min(1).max(1000).default(200).describe('Files listed per kind'),
  },
  output: {
    from: revision,
    to: revision,
    counts: z.object({ added: z.number(), removed: z.number(), modified: z.number(), unchanged: z.number() }),
    added: z.array(item),
    removed: z.array(item),
    modified: z.array(item),
    truncated: z.boolean(),
    note: z.string().optional().describe('What the lists leave out'),
  },
  async handler(args, ctx) {
    const reg = await openRegistry(ctx, args.bucket);
    const toReg = args.to_bucket ? await openRegistry(ctx, args.to_bucket) : reg;
    const bucket = reg.id;
    const name = parsePackageName(args.name);
    const toBucket = toReg.id;
    const toName = args.to_name ? parsePackageName(args.to_name) : name;
    const [from, to] = await Promise.all([resolveRevision(reg, name, args.from), resolveRevision(toReg, toName, args.to)]);
    const d = await manifestWork(
      ctx,
      {
        what: `Comparing ${name}@${from.slice(0, 12)} with ${toName}@${to.slice(0, 12)}`,
        tooLargeHint: 'One of the revisions is not in the order quilt3 writes, so it is compared in memory, and it is too large for that here; compare it with quilt3.',
      },
      (memory) => diffManifests({ from: () => streamManifestBatches(reg, from), to: () => streamManifestBatches(toReg, to) }, args.limit, memory),
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
    const note = data.truncated ? `Lists are capped at ${args.limit} files per kind (counts are complete); raise limit (up to 1000) for more.` : undefined;
    const rev = (r: typeof data.from) => `${r.name}@${r.top_hash}${r.bucket !== bucket ? ` in ${r.bucket}` : ''}${r.message ? ` ${JSON.stringify(r.message)}` : ''}`;
    const text = lines(
      `${c.added} added, ${c.removed} removed, ${c.modified} modified, ${c.unchanged} unchanged in ${bucket}`,
      `from ${rev(data.from)}`,
      `to   ${rev(data.to)}`,
      data.added.map((i) => `+ ${i.logical_key}  ${where(i.to)}`),
      data.removed.map((i) => `- ${i.logical_key}  ${where(i.from)}`),
      data.modified.map((i) => {
        const [a, b] = [where(i.from), where(i.to)];
        return `~ ${i.logical_key} (${i.changes?.join(', ')})  ${a === b ? b : `${a} -> ${b}`}`;
      }),
      note,
    );
    return { data: { ...data, note }, text };
  },
});
