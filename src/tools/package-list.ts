import { z } from 'zod';
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { mapS3 } from '../concurrency.js';
import { compareCodePoints } from '../packages/pyjson.js';
import { NAMED, listPackages, readPointer } from '../packages/registry.js';
import { ToolError } from '../errors.js';
import { bucketArg, isoDate } from './args.js';
import { defineTool } from './define.js';
import { openCursor, revisionLinks } from './package-args.js';

export const packageList = defineTool({
  name: 'package_list',
  title: 'List packages',
  description:
    'List the Quilt packages in a bucket (its .quilt/named_packages registry, read straight from S3, no catalog needed): ' +
    'name, latest top hash, when latest was set, number of revisions, links.',
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: bucketArg,
    prefix: z.string().optional().describe('Only names starting with this, e.g. "team/" or "team/data"'),
    limit: z.number().int().min(1).max(1000).default(100).describe('Packages per page (1-1000, default 100)'),
    cursor: z.string().optional().describe('next_cursor of the previous page'),
  },
  output: {
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
    ),
    unreadable: z
      .array(z.object({ name: z.string(), error: z.string() }))
      .optional()
      .describe('Packages whose latest pointer is not a pointer (damaged, or too large to be one): listed apart, not failing the rest'),
    next_cursor: z.string().optional(),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    const prefix = checkKey((args.prefix ?? '').replace(/^\/+/, ''), 'Prefix');
    const after = openCursor(ctx, 'package_list', args.cursor, ['after'], { bucket, prefix })?.after;
    const listed = (await listPackages(ctx, bucket, { prefix })).packages;
    const names = listed.filter((p) => after === undefined || compareCodePoints(p.name, after) > 0);
    const page = names.slice(0, args.limit);
    const unreadable: { name: string; error: string }[] = [];
    const packages = await mapS3(page, async ({ name, modified, revisions }) => {
      let latest: Awaited<ReturnType<typeof readPointer>>;
      try {
        latest = await readPointer(ctx, bucket, name, 'latest');
      } catch (err) {
        // One damaged pointer (not a hash, or far too large) is reported with its package; access and
        // network failures still fail the call, since they are not about one package.
        if (!(err instanceof ToolError) || (err.code !== 'upstream_error' && err.code !== 'too_large')) throw err;
        unreadable.push({ name, error: err.message });
        return undefined;
      }
      if (!latest) return undefined; // deleted meanwhile
      return { name, top_hash: latest.hash, modified: isoDate(modified), revisions, ...revisionLinks(ctx, bucket, name, latest.hash) };
    });
    const found = packages.filter((p) => p !== undefined);
    const damaged = unreadable.length
      ? `\n${unreadable.length} package(s) with an unreadable latest pointer:\n${unreadable.map((u) => `${u.name}: ${u.error}`).join('\n')}`
      : '';
    const extra = unreadable.length ? { unreadable } : {};
    const next_cursor = names.length > page.length ? ctx.cursors.seal('package_list', { bucket, prefix, after: page[page.length - 1]!.name }) : undefined;
    const lines = found.map((p) => `${p.name}  ${p.top_hash.slice(0, 12)}  ${p.modified ?? ''}  (${p.revisions} revision${p.revisions === 1 ? '' : 's'})`);
    if (found.length === 0 && unreadable.length === 0) {
      // A real, empty answer (the listing succeeded); failures above are errors, never this.
      return {
        data: { bucket, packages: [], next_cursor },
        text: `No packages${prefix ? ` starting "${prefix}"` : ''} in ${bucket}${after ? ' after the cursor' : ''} (nothing under s3://${bucket}/${NAMED}${prefix}).`,
      };
    }
    return {
      data: { bucket, packages: found, ...extra, next_cursor },
      text: `${found.length} package(s) in ${bucket}${next_cursor ? ' (more: pass next_cursor)' : ''}:\n${lines.join('\n')}${damaged}`,
    };
  },
});
