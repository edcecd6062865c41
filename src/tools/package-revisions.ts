/**
 * A package's revisions, newest first: package_list with a name (the former package_revisions,
 * which still answers under its name, unlisted).
 */
import { z } from 'zod';
import type { RuntimeContext } from '../context.js';
import { count } from '../format.js';
import { parsePackageName } from '../packages/names.js';
import { listRevisions, MAX_POINTER_KEYS } from '../packages/revisions.js';
import type { RegistryStore } from '../packages/store.js';
import { cursorArg, lines, moreLine } from './args.js';
import { openRegistry } from '../packages/registries.js';
import { defineTool, type ToolExtras } from './define.js';
import { openCursor, packageNameArg, registryArg } from './package-args.js';

/** Revisions a page holds at most (each costs a read of its manifest's header). */
export const MAX_REVISIONS_PAGE = 100;

export const revisionsOutput = {
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
};

/** One page of a package's revisions (package_list with a name). */
export async function revisionsPage(reg: RegistryStore, rawName: string, limit: number, cursor: string | undefined, ctx: RuntimeContext, extras: Pick<ToolExtras, 'signal'>) {
  const bucket = reg.id;
  const name = parsePackageName(rawName);
  const before = openCursor(ctx, 'package_revisions', cursor, ['before'], { bucket, name })?.before;
  const page = await listRevisions(reg, name, { limit: Math.min(limit, MAX_REVISIONS_PAGE), before, signal: extras.signal });
  const next_cursor = page.before ? ctx.cursors.seal('package_revisions', { bucket, name, before: page.before }) : undefined;
  const note = page.truncated ? `Only the oldest ${MAX_POINTER_KEYS.toLocaleString('en-US')} timestamp pointers were listed.` : undefined;
  const data = { bucket, name, latest: page.latest, total: page.total, revisions: page.revisions, next_cursor, note };
  const rows = page.revisions.map(
    (r) => `${r.top_hash}  ${r.time}  tag ${r.tag}${r.latest ? '  (latest)' : ''}${r.error ? `  [message unreadable: ${r.error}]` : r.message ? `  ${JSON.stringify(r.message)}` : ''}`,
  );
  const head = `${name} in ${bucket}: ${count(page.total, 'revision')}${page.latest ? `, latest ${page.latest}` : ''}${before ? ` (older than tag ${before})` : ''}; newest first (top hash, time, tag, message):`;
  return { data, text: lines(head, rows, note, moreLine('revisions', 'cursor', next_cursor)) };
}

export const packageRevisions = defineTool({
  name: 'package_revisions',
  title: 'List package revisions',
  description:
    "A package's revisions, newest first: top hash (for package_browse, package_diff, package_update's base), time, message (package_list with name).",
  toolset: 'packages',
  kind: 'read',
  listed: false,
  input: {
    bucket: registryArg,
    name: packageNameArg,
    limit: z.number().int().min(1).max(MAX_REVISIONS_PAGE).default(20).describe('Revisions per page'),
    cursor: cursorArg,
  },
  output: revisionsOutput,
  async handler(args, ctx, extras) {
    return revisionsPage(await openRegistry(ctx, args.bucket), args.name, args.limit, args.cursor, ctx, extras);
  },
});
