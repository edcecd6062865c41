import { z } from 'zod';
import { formatS3Uri } from '../aws/s3-uri.js';
import { openRegistry } from '../packages/registries.js';
import { count, formatBytes } from '../format.js';
import { parsePhysicalKey } from '../packages/physical-keys.js';
import { browseManifest, type BrowseItem } from '../packages/browse.js';
import type { ManifestEntry } from '../packages/manifest.js';
import { parsePackageName, parseTopHash } from '../packages/names.js';
import { toPlain } from '../packages/pyjson.js';
import { resolveRevision, streamManifestLines } from '../packages/registry.js';
import { manifestWork } from '../packages/manifest-work.js';
import { cursorArg, lines, moreLine } from './args.js';
import { defineTool } from './define.js';
import { openCursor, packageNameArg, hashOrTagArg, registryArg, revisionLinks } from './package-args.js';

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

/** JSON on one line, for metadata in a text. */
const oneLine = (v: unknown) => JSON.stringify(v);

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
    "A package revision like a directory: message, metadata, and the files (size, location, metadata) and folders at path.",
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: registryArg,
    name: packageNameArg,
    hash_or_tag: hashOrTagArg,
    path: z.string().optional().describe('Folder ("data/") or file (default: top)'),
    recursive: z.boolean().default(false).describe('Every file below path'),
    limit: z.number().int().min(1).max(1000).default(100).describe('Items per page'),
    cursor: cursorArg,
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
    const reg = await openRegistry(ctx, args.bucket);
    const bucket = reg.id;
    const name = parsePackageName(args.name);
    const path = (args.path ?? '').replace(/^\/+/, '');
    const listing = { bucket, name, path, recursive: String(args.recursive) };
    const cur = openCursor(ctx, 'package_browse', args.cursor, ['hash', 'after'], listing);
    // A cursor pins the revision it started on, so pages stay consistent when latest moves.
    const hash = cur ? parseTopHash(cur.hash ?? '') : await resolveRevision(reg, name, args.hash_or_tag);
    const r = await manifestWork(
      ctx,
      { what: `Browsing ${name}@${hash.slice(0, 12)}`, tooLargeHint: 'Browse a path deeper in the package, or with a smaller limit.' },
      (memory) => browseManifest(streamManifestLines(reg, hash), { path, recursive: args.recursive, limit: args.limit, after: cur?.after, memory }),
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
      ...revisionLinks(reg, name, hash, path || undefined),
    };
    const meta = (label: string, v: unknown) => (v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0) ? undefined : `${label}: ${oneLine(v)}`);
    const row = (i: (typeof items)[number]) =>
      i.type === 'dir'
        ? `${i.logical_key}  (${count(i.files, 'file')}, ${formatBytes(i.size)})`
        : [`${i.logical_key}  ${i.size} B  ${i.s3_uri ?? i.physical_key ?? ''}`, meta('  meta', i.user_meta)].filter(Boolean).join('');
    const text = lines(
      `${name}@${hash} in ${bucket}: ${count(r.totalFiles, 'file')}, ${formatBytes(r.totalSize)}`,
      data.message ? `message: ${oneLine(data.message)}` : undefined,
      meta('metadata', data.user_meta),
      meta('workflow', data.workflow),
      [data.quilt_uri, data.catalog_url],
      r.file ? `${path}:` : `${path || '/'}: ${r.count} item(s)${next_cursor ? `, ${items.length} shown` : ''} (files: logical key, bytes, location, metadata):`,
      items.map(row),
      moreLine('items', 'cursor', next_cursor),
    );
    return { data, text };
  },
});
