import { z } from 'zod';
import { formatS3Uri, parseBucket } from '../aws/s3-uri.js';
import { count, formatBytes } from '../format.js';
import { parsePhysicalKey } from '../packages/physical-keys.js';
import { browseManifest, type BrowseItem } from '../packages/browse.js';
import type { ManifestEntry } from '../packages/manifest.js';
import { parsePackageName, parseTopHash } from '../packages/names.js';
import { toPlain } from '../packages/pyjson.js';
import { resolveRevision, streamManifestLines } from '../packages/registry.js';
import { manifestWork } from '../packages/manifest-work.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';
import { openCursor, packageNameArg, hashOrTagArg, revisionLinks } from './package-args.js';

const item = z.object({
  type: z.enum(['file', 'dir']),
  logical_key: z.string(),
  size: z.number().describe('Bytes (for a directory: all files under it)'),
  files: z.number().optional().describe('Directories: number of files under it'),
  hash: z.string().optional(),
  hash_type: z.string().optional(),
  physical_key: z.string().optional().describe('As stored in the manifest (URL-quoted, quilt3 form)'),
  s3_uri: z.string().optional().describe('The same object as an s3:// URI the bucket_object_* tools take'),
  user_meta: z.unknown().optional(),
});

const userMetaOf = (e: ManifestEntry) => {
  const m = e.meta && typeof e.meta === 'object' ? e.meta['user_meta'] : undefined;
  return m === undefined || m === null ? undefined : toPlain(m);
};

const s3UriOf = (pk: string | undefined) => {
  try {
    return pk ? formatS3Uri(parsePhysicalKey(pk)) : undefined;
  } catch {
    return undefined; // not in S3 (a local path from an old quilt3 build)
  }
};

const fileItem = (e: ManifestEntry) => ({
  type: 'file' as const,
  logical_key: e.logical_key,
  size: e.size,
  hash: e.hash.value,
  hash_type: e.hash.type,
  physical_key: e.physical_keys[0],
  s3_uri: s3UriOf(e.physical_keys[0]),
  user_meta: userMetaOf(e),
});

export const packageBrowse = defineTool({
  name: 'package_browse',
  title: 'Browse a package',
  description:
    "Show a Quilt package revision like a directory: its message and metadata, then the files and folders at a path (or every file " +
    'below it with recursive=true), each with size, hash and location (s3_uri, readable with bucket_object_text). Give a file\'s logical key as path to see that one entry. ' +
    'Pages through large packages with next_cursor.',
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: bucketArg,
    name: packageNameArg,
    hash_or_tag: hashOrTagArg,
    path: z.string().optional().describe('Folder ("data/") or file ("data/table.csv") inside the package; default: top level'),
    recursive: z.boolean().default(false).describe('List every file below path instead of one level'),
    limit: z.number().int().min(1).max(1000).default(100).describe('Items per page (1-1000, default 100)'),
    cursor: z.string().optional().describe('next_cursor of the previous page'),
  },
  output: {
    bucket: z.string(),
    name: z.string(),
    top_hash: z.string(),
    message: z.string().nullable().optional(),
    user_meta: z.unknown().optional(),
    workflow: z.unknown().optional(),
    path: z.string(),
    total_files: z.number().describe('Files in the whole package'),
    total_size: z.number().describe('Bytes in the whole package'),
    count: z.number().describe('Items at this path'),
    items: z.array(item),
    next_cursor: z.string().optional(),
    quilt_uri: z.string(),
    catalog_url: z.string().optional(),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    const name = parsePackageName(args.name);
    const path = (args.path ?? '').replace(/^\/+/, '');
    const listing = { bucket, name, path, recursive: String(args.recursive) };
    const cur = openCursor(ctx, 'package_browse', args.cursor, ['hash', 'after'], listing);
    // A cursor pins the revision it started on, so pages stay consistent when latest moves.
    const hash = cur ? parseTopHash(cur.hash ?? '') : await resolveRevision(ctx, bucket, name, args.hash_or_tag);
    const r = await manifestWork(
      ctx,
      { what: `Browsing ${name}@${hash.slice(0, 12)}`, tooLargeHint: 'Browse a path deeper in the package, or with a smaller limit.' },
      (memory) => browseManifest(streamManifestLines(ctx, bucket, hash), { path, recursive: args.recursive, limit: args.limit, after: cur?.after, memory }),
    );
    const dir = path.replace(/\/+$/, '');
    const prefix = dir ? `${dir}/` : '';
    const items = r.file
      ? [fileItem(r.file)]
      : r.items.map((it: BrowseItem) =>
          it.type === 'file'
            ? fileItem(it.entry)
            : { type: 'dir' as const, logical_key: `${prefix}${it.name}/`, size: it.size, files: it.files },
        );
    const last = r.items[r.items.length - 1];
    const next_cursor = r.more && last ? ctx.cursors.seal('package_browse', { ...listing, hash, after: last.name }) : undefined;
    const data = {
      bucket,
      name,
      top_hash: hash,
      message: typeof r.header.message === 'string' || r.header.message === null ? r.header.message : undefined,
      user_meta: r.header.user_meta === undefined ? undefined : toPlain(r.header.user_meta),
      workflow: r.header.workflow === undefined ? undefined : toPlain(r.header.workflow),
      path,
      total_files: r.totalFiles,
      total_size: r.totalSize,
      count: r.count,
      items,
      next_cursor,
      ...revisionLinks(ctx, bucket, name, hash, path || undefined),
    };
    const head = `${name}@${hash.slice(0, 12)} in ${bucket}: ${count(r.totalFiles, 'file')}, ${formatBytes(r.totalSize)}${data.message ? ` — "${data.message}"` : ''}`;
    const lines = items.map((i) => (i.type === 'dir' ? `${i.logical_key}  (${count(i.files, 'file')}, ${formatBytes(i.size)})` : `${i.logical_key}  ${formatBytes(i.size)}`));
    const shown = r.file ? `${path}:` : `${path || '/'}: ${r.count} item(s)${next_cursor ? `, showing ${items.length} (more: pass next_cursor)` : ''}`;
    return { data, text: [head, shown, ...lines].join('\n') };
  },
});
