/**
 * The tools that add package revisions: create (from S3 objects, local files and folders, text),
 * create from an S3 prefix (its former name), update.
 */
import { z } from 'zod';
import { count, formatBytes } from '../format.js';
import { parseS3Uri } from '../aws/s3-uri.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { allInOrder } from '../concurrency.js';
import { materialize, push, pushEncoded, withPackageLock, type Expected, type Pushed, type Source } from '../packages/build.js';
import { newManifestHeader, validateLogicalKey, type ManifestEntry, type ManifestHeader } from '../packages/manifest.js';
import { openStored } from '../packages/update.js';
import { parsePackageName } from '../packages/names.js';
import { compileGlobs } from '../patterns.js';
import { loadWorkflow, type WorkflowCheck } from '../packages/workflow.js';
import { listKeys, readPointer, resolveRevision, type RegistryStore } from '../packages/registry.js';
import { isLocalRegistryArg, openRegistry, s3Registry } from '../packages/registries.js';
import type { PyJson } from '../packages/pyjson.js';
import { localAccess } from '../local/access.js';
import { listFolder } from '../local/folder.js';
import { lines } from './args.js';
import { defineTool, type ToolExtras } from './define.js';
import { entrySource, metaArg, packageNameArg, registryArg, revisionLinks, userMeta } from './package-args.js';
import { promises as fs } from 'node:fs';

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
  .describe('Copy S3 sources into the registry, as quilt3 push');

const messageArg = z.string().max(10_000).optional().describe('Commit message');

type EntryArg = z.infer<typeof entrySource>;

/** The entries given, checked before any I/O; local paths (files and folders) are resolved by `resolve`. */
function sourcesOf(entries: EntryArg[]): { sources: Source[]; local: EntryArg[] } {
  const sources: Source[] = [];
  const local: EntryArg[] = [];
  for (const e of entries) {
    const given = [e.s3_uri, e.path, e.text].filter((v) => v !== undefined).length;
    if (given !== 1) {
      throw new ToolError('invalid_input', `Entry "${e.logical_key}" needs exactly one of s3_uri, path or text.`);
    }
    const meta = userMeta(e.meta, `The meta of "${e.logical_key}"`);
    if (e.path !== undefined) local.push(e);
    else sources.push(e.s3_uri !== undefined ? { logicalKey: e.logical_key, meta, s3: parseS3Uri(e.s3_uri) } : { logicalKey: e.logical_key, meta, text: e.text ?? '' });
  }
  return { sources, local };
}

interface LocalSources {
  sources: Source[];
  /**
   * A folder was given for the top of the package: quilt3's set_dir('/', path, meta) then sets the
   * package metadata to `meta` (None too, which the manifest keeps as `"user_meta": null`).
   */
  topFolderMeta?: { [k: string]: PyJson } | null;
}

/**
 * Local entries as sources: a file at its logical key; a folder as quilt3's set_dir(logical_key,
 * path) takes it (every file below it, .quiltignore honoured, under the logical key as a prefix;
 * "/" for the top of the package). Every path is checked against the caller's roots.
 */
async function localSources(ctx: RuntimeContext, entries: EntryArg[], max: number, signal: AbortSignal): Promise<LocalSources> {
  if (entries.length === 0) return { sources: [] };
  const local = localAccess(ctx, 'Local files as package sources');
  const out: Source[] = [];
  let topFolderMeta: LocalSources['topFolderMeta'];
  for (const e of entries) {
    const meta = userMeta(e.meta, `The meta of "${e.logical_key}"`);
    const real = await local.roots.resolve(e.path!, `The path of entry "${e.logical_key}"`, 'read');
    const st = await fs.stat(real).catch((err: NodeJS.ErrnoException) => {
      throw new ToolError('not_found', `The path of entry "${e.logical_key}", ${real}, ${err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.code})`}.`);
    });
    if (st.isFile()) {
      out.push({ logicalKey: e.logical_key, meta, file: { path: real, size: st.size } });
      continue;
    }
    if (!st.isDirectory()) throw new ToolError('invalid_input', `${real} is neither a file nor a folder.`);
    const prefix = e.logical_key.replace(/^\/+|\/+$/g, '');
    const top = prefix === '' || prefix === '.';
    if (top) topFolderMeta = meta ?? null;
    else if (meta !== undefined) {
      throw new ToolError(
        'invalid_input',
        `Entry "${e.logical_key}" is a folder: its meta would be folder metadata, which quilt3 keeps outside the files' entries and this server does not write.`,
        'Give the metadata to the package (meta), or to its files one by one.',
      );
    }
    const under = top ? '' : `${validateLogicalKey(prefix)}/`;
    const files = await listFolder(local.roots, real, { max: max - out.length, signal });
    for (const f of files) out.push({ logicalKey: `${under}${f.rel}`, file: { path: f.path, size: f.size } });
  }
  return { sources: out, ...(topFolderMeta !== undefined ? { topFolderMeta } : {}) };
}

/** Files package_update takes from local folders (package_create's max_objects at its largest). */
const MAX_FOLDER_FILES = 100_000;

const workflowArg = z.string().nullable().optional().describe('Workflow id (null: none)');
const forceArg = z.boolean().default(false).describe('Make a revision of only these files even if the package exists');

/** Checks the bucket's workflow, hashes the sources, then stores and pushes: nothing is written before every check passed. */
async function commit(
  _ctx: RuntimeContext,
  extras: ToolExtras,
  target: { reg: RegistryStore; name: string; expected: Expected; wf: WorkflowCheck; copy: boolean },
  makeHeader: (workflow: ManifestHeader['workflow']) => ManifestHeader,
  kept: ManifestEntry[],
  sources: Source[],
) {
  const { reg, name, wf } = target;
  const head = makeHeader(wf.record);
  await wf.before({ name, message: head.message, userMeta: head.user_meta ?? undefined });
  const added = await materialize(reg, name, sources, extras, { copy: target.copy });
  const entries = [...kept, ...added.entries];
  await wf.after(entries);
  await added.store();
  const pushed = await push(reg, name, head, entries, target.expected);
  return committed(reg, name, pushed, entries.length, entries.reduce((n, e) => n + e.size, 0));
}

export function committed(reg: RegistryStore, name: string, pushed: Pushed, entries: number, total_size: number) {
  const bucket = reg.id;
  const data = { bucket, name, top_hash: pushed.hash, tag: pushed.tag, entries, total_size, ...revisionLinks(reg, name, pushed.hash) };
  return {
    data,
    text: lines(`Committed ${name}@${pushed.hash} to ${bucket}, tag ${pushed.tag} (${count(entries, 'entry', 'entries')}, ${formatBytes(total_size)}).`, [data.quilt_uri, data.catalog_url]),
  };
}

async function refuseExisting(reg: RegistryStore, name: string, force: boolean): Promise<Expected> {
  const bucket = reg.id;
  // Without s3:ListBucket a missing `latest` is a 403: read as absent, since the commit's
  // If-None-Match write still refuses to replace a package that exists.
  const latest = (await readPointer(reg, name, 'latest', { deniedMeansAbsent: true })) ?? null;
  if (latest && !force) {
    throw new ToolError(
      'conflict',
      `Package ${name} already exists in ${bucket} (latest ${latest.hash}).`,
      'Use package_update to change it, or pass force=true to make a new revision holding only the given entries.',
    );
  }
  return latest;
}

interface CreateArgs {
  bucket: string;
  name: string;
  entries?: z.infer<typeof entrySource>[] | undefined;
  source_uri_prefix?: string | undefined;
  include?: string[] | undefined;
  exclude?: string[] | undefined;
  max_objects: number;
  message?: string | undefined;
  meta?: Record<string, unknown> | undefined;
  workflow?: string | null | undefined;
  force: boolean;
  copy: boolean;
}

/**
 * The objects under a prefix as sources (logical keys relative to it, filtered by the globs): the
 * prefix and globs are checked now, before any AWS call; `list` lists and filters.
 */
function prefixSources(ctx: RuntimeContext, args: CreateArgs & { source_uri_prefix: string }): { list(signal: AbortSignal): Promise<Source[]> } {
  if (isLocalRegistryArg(args.source_uri_prefix) && !/^local$/i.test(args.source_uri_prefix.trim())) return folderSources(ctx, args);
  const src = parseS3Uri(args.source_uri_prefix, { requireKey: false });
  const prefix = src.key && !src.key.endsWith('/') ? `${src.key}/` : src.key;
  // Shell-style globs on keys relative to the prefix: `*` within a folder, `**` across folders, `?` one character.
  const include = args.include && compileGlobs(args.include, 'include');
  const exclude = args.exclude && compileGlobs(args.exclude, 'exclude');
  return {
    async list(signal) {
      const { keys, truncated } = await listKeys(s3Registry(ctx, src.bucket), prefix, { max: args.max_objects, signal });
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
      return sources;
    },
  };
}

/**
 * A local folder as source_uri_prefix: quilt3's set_dir('/', folder), its .quiltignore honoured,
 * narrowed by the include/exclude globs, refused past max_objects.
 */
function folderSources(ctx: RuntimeContext, args: CreateArgs & { source_uri_prefix: string }): { list(signal: AbortSignal): Promise<Source[]> } {
  const local = localAccess(ctx, 'A local folder as source_uri_prefix');
  const include = args.include && compileGlobs(args.include, 'include');
  const exclude = args.exclude && compileGlobs(args.exclude, 'exclude');
  return {
    async list(signal) {
      const folder = await local.roots.resolve(args.source_uri_prefix, 'The folder', 'read');
      const st = await fs.stat(folder).catch(() => undefined);
      if (!st?.isDirectory()) throw new ToolError('not_found', `${folder} is not a folder.`, 'Give the folder to package (a single file goes in entries, with path).');
      const files = await listFolder(local.roots, folder, { include, exclude, max: args.max_objects, signal });
      if (files.length === 0) {
        throw new ToolError('not_found', `No files in ${folder}${include || exclude ? ' match the include/exclude globs' : ''} (after its .quiltignore).`, 'Check the folder and the globs.');
      }
      return files.map((f) => ({ logicalKey: validateLogicalKey(f.rel), file: { path: f.path, size: f.size } }));
    },
  };
}

async function createPackage(args: CreateArgs, ctx: RuntimeContext, extras: ToolExtras) {
  const reg = await openRegistry(ctx, args.bucket, 'write');
  const name = parsePackageName(args.name);
  reg.authorize('write'); // before any read, so a read-only caller costs no AWS call
  if (!args.entries?.length && args.source_uri_prefix === undefined) {
    throw new ToolError('invalid_input', 'Nothing to package: give entries, source_uri_prefix, or both.');
  }
  const given = sourcesOf(args.entries ?? []);
  // Refused now in JWT mode, before any request.
  if (given.local.length) localAccess(ctx, 'Local files as package sources');
  const user_meta = userMeta(args.meta, 'meta');
  const prefix = args.source_uri_prefix !== undefined ? prefixSources(ctx, { ...args, source_uri_prefix: args.source_uri_prefix }) : undefined;
  const folderPrefix = args.source_uri_prefix !== undefined && isLocalRegistryArg(args.source_uri_prefix);
  return withPackageLock(reg, name, async () => {
    // The latest pointer, the listing and the workflow config at once, their errors reported in that
    // order; the listing stops when an existing package is refused first.
    const stopListing = new AbortController();
    const existing = refuseExisting(reg, name, args.force);
    existing.catch(() => stopListing.abort());
    const listing = AbortSignal.any([extras.signal, stopListing.signal]);
    const [expected, listed, wf, local] = await allInOrder([
      existing,
      prefix ? prefix.list(listing) : Promise.resolve([] as Source[]),
      loadWorkflow(reg, args.workflow),
      localSources(ctx, given.local, args.max_objects, listing),
    ]);
    const explicit = new Set([...given.sources, ...local.sources].map((g) => g.logicalKey));
    // An entry given by name wins over the object of the prefix at the same logical key.
    const sources = [...given.sources, ...local.sources, ...listed.filter((l) => !explicit.has(l.logicalKey))];
    // A folder at the top (quilt3's set_dir('/', folder, meta)) makes its meta, or null, the package's.
    const top = user_meta ?? (local.topFolderMeta !== undefined ? local.topFolderMeta : folderPrefix ? null : undefined);
    const head = (workflow: ManifestHeader['workflow']) => newManifestHeader({ message: args.message, user_meta: top, workflow });
    return commit(ctx, extras, { reg, name, expected, wf, copy: args.copy }, head, [], sources);
  });
}

const prefixArgs = {
  source_uri_prefix: z.string().describe('s3://bucket/prefix/ or a local folder: all its files (keys relative to it)'),
  // compileGlobs bounds their number and length (patterns.ts MAX_GLOBS, MAX_GLOB_LENGTH), with a message.
  include: z.array(z.string()).optional().describe('Globs of keys to take, e.g. "**/*.csv"'),
  exclude: z.array(z.string()).optional().describe('Globs of keys to leave out'),
  max_objects: z.number().int().min(1).max(100_000).default(10_000).describe('Refuse more files'),
};

export const packageCreate = defineTool({
  name: 'package_create',
  title: 'Create a package',
  description:
    'Create a package, as quilt3 writes one, from S3 objects or local files (entries, or all under source_uri_prefix; referenced in place unless copy) and/or text.',
  toolset: 'packages',
  kind: 'write',
  input: {
    bucket: registryArg,
    name: packageNameArg,
    entries: z.array(entrySource).max(1000).optional().describe('Files; each has s3_uri, path or text'),
    ...prefixArgs,
    source_uri_prefix: prefixArgs.source_uri_prefix.optional(),
    message: messageArg,
    meta: metaArg,
    workflow: workflowArg,
    force: forceArg,
    copy: copyArg,
  },
  output: result,
  handler: (args, ctx, extras) => createPackage(args, ctx, extras),
});

/** The former name of package_create with source_uri_prefix: still answers, no longer listed. */
export const packageCreateFromS3 = defineTool({
  name: 'package_create_from_s3',
  title: 'Package an S3 prefix',
  description: 'Create a package from every object under an S3 prefix (package_create with source_uri_prefix).',
  toolset: 'packages',
  kind: 'write',
  listed: false,
  input: {
    bucket: registryArg,
    name: packageNameArg,
    ...prefixArgs,
    message: messageArg,
    meta: metaArg,
    workflow: workflowArg,
    force: forceArg,
    copy: copyArg,
  },
  output: result,
  handler: (args, ctx, extras) => createPackage(args, ctx, extras),
});

export const packageUpdate = defineTool({
  name: 'package_update',
  title: 'Update a package',
  description:
    'New revision of a package: latest with files added, replaced or removed, or new message or metadata. Refused if latest moves meanwhile.',
  toolset: 'packages',
  kind: 'write',
  input: {
    bucket: registryArg,
    name: packageNameArg,
    add: z.array(entrySource).max(1000).optional().describe('Files to add or replace'),
    remove: z.array(z.string()).max(1000).optional().describe('Logical keys to remove ("dir/": a folder)'),
    message: messageArg,
    meta: metaArg.describe('New metadata, replacing the old'),
    workflow: workflowArg,
    base: z.string().optional().describe('Top hash it is based on: refused if latest differs'),
    copy: copyArg,
  },
  output: result,
  async handler(args, ctx, extras) {
    const reg = await openRegistry(ctx, args.bucket, 'write');
    const bucket = reg.id;
    const name = parsePackageName(args.name);
    reg.authorize('write'); // before any read, so a read-only caller costs no AWS call
    if (!args.add?.length && !args.remove?.length && args.meta === undefined && args.message === undefined) {
      throw new ToolError('invalid_input', 'Nothing to change: give add, remove, meta or message.');
    }
    const given = sourcesOf(args.add ?? []);
    if (given.local.length) localAccess(ctx, 'Local files as package sources');
    const wanted = args.base ? await resolveRevision(reg, name, args.base) : undefined;
    return withPackageLock(reg, name, async () => {
      const workflow = loadWorkflow(reg, args.workflow);
      workflow.catch(() => undefined); // reported below, after the checks of latest
      const local = await localSources(ctx, given.local, MAX_FOLDER_FILES, extras.signal).catch((err: unknown) => {
        workflow.catch(() => undefined);
        throw err;
      });
      if (local.topFolderMeta) {
        throw new ToolError('invalid_input', 'In package_update a folder entry\'s meta is not used.', 'Pass the package metadata as meta.');
      }
      const sources = [...given.sources, ...local.sources];
      const latest = await readPointer(reg, name, 'latest');
      if (!latest) {
        throw new ToolError('not_found', `Package ${name} does not exist in ${bucket}.`, 'Create it with package_create; see existing ones with package_list.');
      }
      if (wanted && wanted !== latest.hash) {
        throw new ToolError(
          'conflict',
          `Package ${name} in ${bucket} is at ${latest.hash}, not ${wanted}; nothing was committed.`,
          `package_list(bucket="${bucket}", name="${name}") lists its revisions: apply the change to latest (omit base), after package_diff(from="${wanted}") shows what changed since.`,
        );
      }
      const removes = (args.remove ?? []).map((r) => r.replace(/^\/+/, ''));
      // The base is opened while the workflow config loads; a workflow problem is still the one
      // reported first. When the added entries need no reading, one GET of the base gives its header
      // now and its entries to the merge below.
      const [wfRead, baseRead] = await Promise.allSettled([workflow, openStored(reg, name, latest.hash, { hold: sources.every((s) => 'text' in s) })]);
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
        await wf.before({ name, message: head.message, userMeta: head.user_meta ?? undefined });
        const added = await materialize(reg, name, sources, extras, { copy: args.copy });
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
          if (merged.listing) await wf.after(merged.listing);
          await added.store();
          const pushed = await pushEncoded(reg, name, merged.hash, merged.encode(), latest);
          return committed(reg, name, pushed, merged.entries, merged.totalSize);
        } finally {
          merged.release();
        }
      } finally {
        await base.close();
      }
    });
  },
});
