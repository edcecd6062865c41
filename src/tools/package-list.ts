import { z } from 'zod';
import { checkKey } from '../aws/s3-uri.js';
import { mapS3 } from '../concurrency.js';
import { NAMED, listPackages, readPointer } from '../packages/registry.js';
import { openRegistry } from '../packages/registries.js';
import { ToolError } from '../errors.js';
import { count } from '../format.js';
import { cursorArg, isoDate, lines, moreLine } from './args.js';
import { defineTool } from './define.js';
import { openCursor, packageNameArg, registryArg, revisionLinks } from './package-args.js';
import { revisionsOutput, revisionsPage } from './package-revisions.js';

export const packageList = defineTool({
  name: 'package_list',
  title: 'List packages',
  description:
    "List a registry's packages (a bucket, \"local\": quilt3's local registry, or file:///dir): name, latest top hash, when set, revisions. With name: its revisions, newest first.",
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: registryArg,
    name: packageNameArg.optional(),
    prefix: z.string().optional().describe('Name prefix'),
    limit: z.number().int().min(1).max(1000).optional().describe('Per page (100; revisions: 20)'),
    cursor: cursorArg,
  },
  output: {
    ...revisionsOutput,
    name: revisionsOutput.name.optional().describe('With name: the package whose revisions are listed'),
    total: revisionsOutput.total.optional(),
    revisions: revisionsOutput.revisions.optional(),
    bucket: z.string(),
    packages: z.array(
      z.object({
        name: z.string(),
        top_hash: z.string(),
        modified: z.string().optional(),
        revisions: z.number(),
        quilt_uri: z.string(),
        catalog_url: z.string().optional(),
      }),
    )
      .optional()
      .describe('Without name: the packages'),
    unreadable: z
      .array(z.object({ name: z.string(), error: z.string() }))
      .optional()
      .describe('Packages whose latest pointer is not a pointer (damaged, or too large to be one): listed apart, not failing the rest'),
  },
  async handler(args, ctx, extras) {
    const reg = await openRegistry(ctx, args.bucket);
    if (args.name !== undefined) {
      if (args.prefix !== undefined) throw new ToolError('invalid_input', 'Give name (its revisions) or prefix (packages), not both.');
      return revisionsPage(reg, args.name, args.limit ?? 20, args.cursor, ctx, extras);
    }
    const limit = args.limit ?? 100;
    const bucket = reg.id;
    const prefix = checkKey((args.prefix ?? '').replace(/^\/+/, ''), 'Prefix');
    const startAfter = openCursor(ctx, 'package_list', args.cursor, ['start_after'], { bucket, prefix })?.start_after;
    // One page of packages, aggregated from the pointer listing as it goes (not the whole registry).
    const listed = await listPackages(reg, { prefix, limit, startAfter });
    const page = listed.packages;
    const unreadable: { name: string; error: string }[] = [];
    const packages = await mapS3(page, async ({ name, modified, revisions }) => {
      let latest: Awaited<ReturnType<typeof readPointer>>;
      try {
        latest = await readPointer(reg, name, 'latest');
      } catch (err) {
        // One damaged pointer (not a hash, or far too large) is reported with its package; access and
        // network failures still fail the call, since they are not about one package.
        if (!(err instanceof ToolError) || (err.code !== 'upstream_error' && err.code !== 'too_large')) throw err;
        unreadable.push({ name, error: err.message });
        return undefined;
      }
      if (!latest) return undefined; // deleted meanwhile
      return { name, top_hash: latest.hash, modified: isoDate(modified), revisions, ...revisionLinks(reg, name, latest.hash) };
    });
    const found = packages.filter((p) => p !== undefined);
    const damaged = unreadable.length
      ? `${unreadable.length} package(s) with an unreadable latest pointer:\n${unreadable.map((u) => `${u.name}: ${u.error}`).join('\n')}`
      : '';
    const extra = unreadable.length ? { unreadable } : {};
    const next_cursor = listed.more ? ctx.cursors.seal('package_list', { bucket, prefix, start_after: page[page.length - 1]!.lastKey }) : undefined;
    const note = moreLine('packages', 'cursor', next_cursor);
    const rows = found.map((p) => `${p.name}  ${p.top_hash}  ${p.modified ?? ''}  (${count(p.revisions, 'revision')})`);
    if (found.length === 0 && unreadable.length === 0) {
      // A real, empty answer (the listing succeeded); failures above are errors, never this.
      return {
        data: { bucket, packages: [], next_cursor },
        text: lines(`No packages${prefix ? ` starting "${prefix}"` : ''} in ${bucket}${startAfter ? ' after the cursor' : ''} (nothing under ${reg.uri}/${NAMED}${prefix}).`, note),
      };
    }
    return {
      data: { bucket, packages: found, ...extra, next_cursor },
      text: lines(`${found.length} package(s) in ${bucket} (name, latest top hash, set at):`, rows, damaged || undefined, note),
    };
  },
});
