/** The tools that add package revisions: create, create from an S3 prefix, update. */
import { z } from 'zod';
import { count, formatBytes } from '../format.js';
import { parseBucket, parseS3Uri } from '../aws/s3-uri.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { allInOrder } from '../concurrency.js';
import { materialize, push, pushEncoded, withPackageLock, type Expected, type Pushed, type Source } from '../packages/build.js';
import { newManifestHeader, validateLogicalKey, type ManifestEntry, type ManifestHeader } from '../packages/manifest.js';
import { openStored } from '../packages/update.js';
import { parsePackageName } from '../packages/names.js';
import { compileGlobs, MAX_GLOB_LENGTH, MAX_GLOBS } from '../patterns.js';
import { loadWorkflow, type WorkflowCheck } from '../packages/workflow.js';
import { listKeys, readPointer, resolveRevision } from '../packages/registry.js';
import { bucketArg } from './args.js';
import { defineTool, type ToolExtras } from './define.js';
import { entrySource, metaArg, packageNameArg, revisionLinks, userMeta } from './package-args.js';

const result = {
  bucket: z.string(),
  name: z.string(),
  top_hash: z.string(),
  tag: z.string().describe('Timestamp pointer written for this revision'),
  entries: z.number(),
  total_size: z.number(),
  quilt_uri: z.string(),
  catalog_url: z.string().optional(),
};

/**
 * Copy mode. Default off: this server has always referenced S3 sources in place (no duplicated
 * storage, no write traffic, existing prompts unchanged); quilt3 push copies by default.
 */
const copyArg = z
  .boolean()
  .default(false)
  .describe(
    'Copy each S3 source into the registry bucket at <name>/<logical key> (server-side, as quilt3 push does) and point the package at the copies. ' +
      'Default false: reference the sources where they are',
  );

const messageArg = z.string().max(10_000).optional().describe('Commit message of the revision');

function sourcesOf(entries: z.infer<typeof entrySource>[]): Source[] {
  return entries.map((e) => {
    if ((e.s3_uri === undefined) === (e.text === undefined)) {
      throw new ToolError('invalid_input', `Entry "${e.logical_key}" needs exactly one of s3_uri or text.`);
    }
    const meta = userMeta(e.meta, `The meta of "${e.logical_key}"`);
    return e.s3_uri !== undefined ? { logicalKey: e.logical_key, meta, s3: parseS3Uri(e.s3_uri) } : { logicalKey: e.logical_key, meta, text: e.text ?? '' };
  });
}

const workflowArg = z
  .string()
  .nullable()
  .optional()
  .describe("Bucket workflow id (from .quilt/workflows/config.yml); omit for the bucket's default, null for none when allowed");

/** Checks the bucket's workflow, hashes the sources, then stores and pushes: nothing is written before every check passed. */
async function commit(
  ctx: RuntimeContext,
  extras: ToolExtras,
  target: { bucket: string; name: string; expected: Expected; wf: WorkflowCheck; copy: boolean },
  makeHeader: (workflow: ManifestHeader['workflow']) => ManifestHeader,
  kept: ManifestEntry[],
  sources: Source[],
) {
  const { bucket, name, wf } = target;
  const head = makeHeader(wf.record);
  wf.before({ name, message: head.message, userMeta: head.user_meta ?? undefined });
  const added = await materialize(ctx, bucket, name, sources, extras, { copy: target.copy });
  const entries = [...kept, ...added.entries];
  wf.after(entries);
  await added.store();
  const pushed = await push(ctx, bucket, name, head, entries, target.expected);
  return committed(ctx, bucket, name, pushed, entries.length, entries.reduce((n, e) => n + e.size, 0));
}

function committed(ctx: RuntimeContext, bucket: string, name: string, pushed: Pushed, entries: number, total_size: number) {
  const data = { bucket, name, top_hash: pushed.hash, tag: pushed.tag, entries, total_size, ...revisionLinks(ctx, bucket, name, pushed.hash) };
  return {
    data,
    text: `Committed ${name}@${pushed.hash} to ${bucket} (${count(entries, 'entry', 'entries')}, ${formatBytes(total_size)}).\n${data.quilt_uri}${data.catalog_url ? `\n${data.catalog_url}` : ''}`,
  };
}

async function refuseExisting(ctx: RuntimeContext, bucket: string, name: string, force: boolean): Promise<Expected> {
  // Without s3:ListBucket a missing `latest` is a 403: read as absent, since the commit's
  // If-None-Match write still refuses to replace a package that exists.
  const latest = (await readPointer(ctx, bucket, name, 'latest', { deniedMeansAbsent: true })) ?? null;
  if (latest && !force) {
    throw new ToolError(
      'conflict',
      `Package ${name} already exists in ${bucket} (latest ${latest.hash}).`,
      'Use package_update to change it, or pass force=true to make a new revision holding only the given entries.',
    );
  }
  return latest;
}

export const packageCreate = defineTool({
  name: 'package_create',
  title: 'Create a package',
  description:
    'Create a Quilt package revision from S3 objects (referenced in place by default, or copied into the registry bucket with copy=true) and/or text (stored next to the package). ' +
      'S3 objects are checksummed once, without a download when S3 already holds a usable SHA-256 checksum. ' +
    'Writes the manifest and the latest and timestamp pointers exactly as quilt3 does. Refuses to replace an existing package unless force=true.',
  toolset: 'packages',
  kind: 'write',
  input: {
    bucket: bucketArg,
    name: packageNameArg,
    entries: z.array(entrySource).min(1).max(1000).describe('Files of the package (1-1000); each has s3_uri or text'),
    message: messageArg,
    meta: metaArg,
    workflow: workflowArg,
    force: z.boolean().default(false).describe('Make a new revision even when the package exists'),
    copy: copyArg,
  },
  output: result,
  async handler(args, ctx, extras) {
    const bucket = parseBucket(args.bucket);
    const name = parsePackageName(args.name);
    ctx.authorize(bucket, 'write'); // before any read, so a read-only caller costs no AWS call
    const sources = sourcesOf(args.entries);
    const user_meta = userMeta(args.meta, 'meta');
    return withPackageLock(bucket, name, async () => {
      // Both reads at once; an existing package is still the error reported first.
      const [expected, wf] = await allInOrder([refuseExisting(ctx, bucket, name, args.force), loadWorkflow(ctx, bucket, args.workflow)]);
      const head = (workflow: ManifestHeader['workflow']) => newManifestHeader({ message: args.message, user_meta, workflow });
      return commit(ctx, extras, { bucket, name, expected, wf, copy: args.copy }, head, [], sources);
    });
  },
});

export const packageCreateFromS3 = defineTool({
  name: 'package_create_from_s3',
  title: 'Package an S3 prefix',
  description:
    'Create a Quilt package from every object under an S3 prefix (optionally filtered by include/exclude globs such as "**/*.csv"). ' +
    'Objects are referenced in place (or copied into the registry bucket with copy=true) and checksummed once; logical keys are the keys relative to the prefix.',
  toolset: 'packages',
  kind: 'write',
  input: {
    bucket: bucketArg.describe('Registry bucket the package is written to'),
    name: packageNameArg,
    source_uri_prefix: z.string().describe('s3://bucket/prefix/ whose objects become the package'),
    include: z.array(z.string().max(MAX_GLOB_LENGTH)).max(MAX_GLOBS).optional().describe('Globs of keys to take (relative to the prefix); default all'),
    exclude: z.array(z.string().max(MAX_GLOB_LENGTH)).max(MAX_GLOBS).optional().describe('Globs of keys to leave out'),
    message: messageArg,
    meta: metaArg,
    workflow: workflowArg,
    force: z.boolean().default(false).describe('Make a new revision even when the package exists'),
    copy: copyArg,
    max_objects: z.number().int().min(1).max(100_000).default(10_000).describe('Refuse prefixes with more objects than this'),
  },
  output: result,
  async handler(args, ctx, extras) {
    const bucket = parseBucket(args.bucket);
    const name = parsePackageName(args.name);
    ctx.authorize(bucket, 'write'); // before any read, so a read-only caller costs no AWS call
    const src = parseS3Uri(args.source_uri_prefix, { requireKey: false });
    const prefix = src.key && !src.key.endsWith('/') ? `${src.key}/` : src.key;
    // Shell-style globs on keys relative to the prefix: `*` within a folder, `**` across folders, `?` one character.
    const include = args.include && compileGlobs(args.include, 'include');
    const exclude = args.exclude && compileGlobs(args.exclude, 'exclude');
    const user_meta = userMeta(args.meta, 'meta');
    return withPackageLock(bucket, name, async () => {
      // The latest pointer, the listing and the workflow config at once, their errors reported in
      // that order; the listing stops when an existing package is refused first.
      const stopListing = new AbortController();
      const existing = refuseExisting(ctx, bucket, name, args.force);
      existing.catch(() => stopListing.abort());
      const [expected, { keys, truncated }, wf] = await allInOrder([
        existing,
        listKeys(ctx, src.bucket, prefix, { max: args.max_objects, signal: AbortSignal.any([extras.signal, stopListing.signal]) }),
        loadWorkflow(ctx, bucket, args.workflow),
      ]);
      if (truncated) {
        throw new ToolError(
          'too_large',
          `More than ${args.max_objects} objects are under s3://${src.bucket}/${prefix}.`,
          'Narrow the prefix or the include globs, or raise max_objects (up to 100000).',
        );
      }
      const sources: Source[] = keys
        .map((k) => ({ listed: k, rel: k.key.slice(prefix.length) }))
        // Folder markers and registries are not package data.
        .filter(({ listed, rel }) => rel && !listed.key.endsWith('/') && !listed.key.startsWith('.quilt/'))
        .filter(({ rel }) => (!include || include.test(rel)) && !exclude?.test(rel))
        .map(({ listed, rel }) => ({ logicalKey: rel, s3: { bucket: src.bucket, key: listed.key }, listed }));
      if (sources.length === 0) {
        throw new ToolError(
          'not_found',
          `No objects under s3://${src.bucket}/${prefix} match${include || exclude ? ' the include/exclude globs' : ''}.`,
          'Check the prefix with bucket_objects_list.',
        );
      }
      for (const s of sources) validateLogicalKey(s.logicalKey);
      const head = (workflow: ManifestHeader['workflow']) => newManifestHeader({ message: args.message, user_meta, workflow });
      return commit(ctx, extras, { bucket, name, expected, wf, copy: args.copy }, head, [], sources);
    });
  },
});

export const packageUpdate = defineTool({
  name: 'package_update',
  title: 'Update a package',
  description:
    'Make a new revision of an existing package: the latest revision (or `base`) with files added or replaced and files or folders removed, ' +
    'optionally a new message and metadata. If someone else moved latest meanwhile, nothing is committed and the conflict is reported.',
  toolset: 'packages',
  kind: 'write',
  input: {
    bucket: bucketArg,
    name: packageNameArg,
    add: z.array(entrySource).max(1000).optional().describe('Files to add or replace (each has s3_uri or text)'),
    remove: z.array(z.string()).max(1000).optional().describe('Logical keys to remove; a key ending in "/" removes a folder'),
    message: messageArg,
    meta: metaArg.describe('New package metadata (replaces the old); omit to keep it'),
    workflow: workflowArg,
    base: z.string().optional().describe('Top hash the change is based on (default: current latest); the update fails if latest is different'),
    copy: copyArg.describe('Copy the added S3 sources into the registry bucket at <name>/<logical key> (server-side) and point the entries at the copies; default false: reference them in place'),
  },
  output: result,
  async handler(args, ctx, extras) {
    const bucket = parseBucket(args.bucket);
    const name = parsePackageName(args.name);
    ctx.authorize(bucket, 'write'); // before any read, so a read-only caller costs no AWS call
    if (!args.add?.length && !args.remove?.length && args.meta === undefined && args.message === undefined) {
      throw new ToolError('invalid_input', 'Nothing to change: give add, remove, meta or message.');
    }
    const sources = sourcesOf(args.add ?? []);
    const wanted = args.base ? await resolveRevision(ctx, bucket, name, args.base) : undefined;
    return withPackageLock(bucket, name, async () => {
      const workflow = loadWorkflow(ctx, bucket, args.workflow);
      workflow.catch(() => undefined); // reported below, after the checks of latest
      const latest = await readPointer(ctx, bucket, name, 'latest');
      if (!latest) {
        throw new ToolError('not_found', `Package ${name} does not exist in ${bucket}.`, 'Create it with package_create; see existing ones with package_list.');
      }
      if (wanted && wanted !== latest.hash) {
        throw new ToolError('conflict', `Package ${name} in ${bucket} is at ${latest.hash}, not ${wanted}.`, 'Browse the latest revision and apply your change to it.');
      }
      const removes = (args.remove ?? []).map((r) => r.replace(/^\/+/, ''));
      // The base is opened while the workflow config loads; a workflow problem is still the one
      // reported first. When the added entries need no reading, one GET of the base gives its header
      // now and its entries to the merge below.
      const [wfRead, baseRead] = await Promise.allSettled([workflow, openStored(ctx, bucket, name, latest.hash, { hold: sources.every((s) => 'text' in s) })]);
      if (wfRead.status === 'rejected') {
        if (baseRead.status === 'fulfilled') await baseRead.value.close();
        throw wfRead.reason;
      }
      if (baseRead.status === 'rejected') throw baseRead.reason;
      const wf = wfRead.value;
      const base = baseRead.value;
      try {
        const oldHeader = base.header;
        const user_meta = args.meta === undefined ? oldHeader.user_meta : userMeta(args.meta, 'meta');
        // The old header's keys keep their places (as in quilt3); the workflow is checked anew.
        const head: ManifestHeader = { ...oldHeader, user_meta, workflow: wf.record, message: args.message ?? null };
        if (user_meta === undefined) delete head.user_meta;
        if (wf.record === undefined) delete head.workflow;
        wf.before({ name, message: head.message, userMeta: head.user_meta ?? undefined });
        const added = await materialize(ctx, bucket, name, sources, extras, { copy: args.copy });
        // The new manifest is held whole until uploaded; the merge reserves its bytes until then.
        const merged = await base.merge(head, added.entries, removes, { listing: wf.checksEntries });
        try {
          if (merged.missing.length) {
            throw new ToolError(
              'not_found',
              `Not in ${name}@${latest.hash.slice(0, 12)}: ${merged.missing.map((m) => `"${m}"`).join(', ')}. Nothing was committed.`,
              'See the files with package_browse.',
            );
          }
          if (merged.listing) wf.after(merged.listing);
          await added.store();
          const pushed = await pushEncoded(ctx, bucket, name, merged.hash, merged.encode(), latest);
          return committed(ctx, bucket, name, pushed, merged.entries, merged.totalSize);
        } finally {
          merged.release();
        }
      } finally {
        await base.close();
      }
    });
  },
});
