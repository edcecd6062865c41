import { z } from 'zod';
import { count } from '../format.js';
import { parsePackageName } from '../packages/names.js';
import { listRevisions, MAX_POINTER_KEYS } from '../packages/revisions.js';
import { cursorArg, lines, moreLine } from './args.js';
import { openRegistry } from '../packages/registries.js';
import { defineTool } from './define.js';
import { openCursor, packageNameArg, registryArg } from './package-args.js';

export const packageRevisions = defineTool({
  name: 'package_revisions',
  title: 'List package revisions',
  description:
    "A package's revisions, newest first: top hash (for package_browse, package_diff, package_update's base), time, message.",
  toolset: 'packages',
  kind: 'read',
  input: {
    bucket: registryArg,
    name: packageNameArg,
    limit: z.number().int().min(1).max(100).default(20).describe('Revisions per page'),
    cursor: cursorArg,
  },
  output: {
    bucket: z.string(),
    name: z.string(),
    latest: z.string().optional().describe('Top hash latest points to'),
    total: z.number().describe('Revisions (timestamp pointers) in all'),
    revisions: z.array(
      z.object({
        tag: z.string().describe('Timestamp pointer (unix seconds), also a revision reference'),
        time: z.string(),
        top_hash: z.string(),
        message: z.string().nullable().optional(),
        latest: z.boolean(),
        error: z.string().optional().describe('Why the message could not be read'),
      }),
    ),
    next_cursor: z.string().optional(),
    note: z.string().optional().describe('What the listing left out'),
  },
  async handler(args, ctx, extras) {
    const reg = await openRegistry(ctx, args.bucket);
    const bucket = reg.id;
    const name = parsePackageName(args.name);
    const before = openCursor(ctx, 'package_revisions', args.cursor, ['before'], { bucket, name })?.before;
    const page = await listRevisions(reg, name, { limit: args.limit, before, signal: extras.signal });
    const next_cursor = page.before ? ctx.cursors.seal('package_revisions', { bucket, name, before: page.before }) : undefined;
    const note = page.truncated ? `Only the oldest ${MAX_POINTER_KEYS.toLocaleString('en-US')} timestamp pointers were listed.` : undefined;
    const data = { bucket, name, latest: page.latest, total: page.total, revisions: page.revisions, next_cursor, note };
    const rows = page.revisions.map(
      (r) => `${r.top_hash}  ${r.time}  tag ${r.tag}${r.latest ? '  (latest)' : ''}${r.error ? `  [message unreadable: ${r.error}]` : r.message ? `  ${JSON.stringify(r.message)}` : ''}`,
    );
    const head = `${name} in ${bucket}: ${count(page.total, 'revision')}${page.latest ? `, latest ${page.latest}` : ''}${before ? ` (older than tag ${before})` : ''}; newest first (top hash, time, tag, message):`;
    return { data, text: lines(head, rows, note, moreLine('revisions', 'cursor', next_cursor)) };
  },
});
