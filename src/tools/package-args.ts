/** Argument schemas and output pieces shared by the package tools. */
import { z } from 'zod';
import type { RuntimeContext } from '../context.js';
import type { CursorKind } from '../cursors.js';
import { packageCatalogUrl, quiltPlusUri } from '../catalog/urls.js';
import { ToolError } from '../errors.js';
import { fromPlain, type PyJson } from '../packages/pyjson.js';
import { strictObject } from './schema.js';

export const packageNameArg = z.string().min(3).max(256).describe('Package name "team/name"');

export const hashOrTagArg = z
  .string()
  .optional()
  .describe('Revision: "latest" (default), a timestamp tag, a top hash or a 6+ digit prefix of one');

export const metaArg = z.record(z.string(), z.unknown()).optional().describe("Metadata (a JSON object), quilt3's user_meta");

export const logicalKeyArg = z.string().min(1).max(1024).describe('Path inside the package, e.g. "data/table.csv"');

export const entrySource = strictObject({
  logical_key: logicalKeyArg,
  s3_uri: z.string().optional().describe('Object to include: s3://bucket/key[?versionId=...]'),
  text: z.string().optional().describe('Content, stored as a new object next to the package'),
  meta: metaArg,
});

/** Links for a revision: catalog page (when a catalog is configured) and quilt+ URI. */
export function revisionLinks(ctx: RuntimeContext, bucket: string, name: string, hash: string, path?: string) {
  const catalog = ctx.catalog.url;
  return {
    catalog_url: catalog ? packageCatalogUrl(catalog, bucket, name, hash, path) : undefined,
    quilt_uri: quiltPlusUri(bucket, name, { hash, path }),
  };
}

export function userMeta(meta: Record<string, unknown> | undefined, what: string): { [k: string]: PyJson } | undefined {
  if (meta === undefined) return undefined;
  try {
    return fromPlain(meta) as { [k: string]: PyJson };
  } catch (err) {
    throw new ToolError('invalid_input', `${what} is not plain JSON: ${(err as Error).message}`);
  }
}

/**
 * A package tool's cursor: sealed for this caller and tool (cursors.ts), holding string fields, and
 * issued for the same arguments (`same`) as this call.
 */
export function openCursor(
  ctx: RuntimeContext,
  kind: CursorKind,
  cursor: string | undefined,
  fields: readonly string[],
  same: Record<string, string> = {},
): Record<string, string> | undefined {
  if (!cursor) return undefined;
  const v = ctx.cursors.open(kind, cursor);
  if (!fields.every((f) => typeof v[f] === 'string')) {
    throw new ToolError('invalid_input', 'The cursor is not valid here.', 'Pass next_cursor from the previous call unchanged.');
  }
  for (const [k, want] of Object.entries(same)) {
    if (v[k] !== want) {
      throw new ToolError(
        'invalid_input',
        `The cursor belongs to another listing (its ${k} is not this call's).`,
        'Repeat the call with the same arguments as the one that returned the cursor, or start again without a cursor.',
      );
    }
  }
  return v as Record<string, string>;
}
