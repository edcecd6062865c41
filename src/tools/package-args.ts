/** Argument schemas and output pieces shared by the package tools. */
import { z } from 'zod';
import type { RuntimeContext } from '../context.js';
import type { CursorKind } from '../cursors.js';
import { packageCatalogUrl, quiltPlusOf } from '../catalog/urls.js';
import type { RegistryStore } from '../packages/store.js';
import { ToolError } from '../errors.js';
import { fromPlain, type PyJson } from '../packages/pyjson.js';
import { strictObject } from './schema.js';

/** A registry: a bucket, or a local one (registries.ts). */
export const registryArg = z.string().describe('Bucket or "local"');

// Checked by parsePackageName, whose message says what a name looks like (and its length limit).
export const packageNameArg = z.string().describe('"team/name"');

export const hashOrTagArg = z
  .string()
  .optional()
  .describe('"latest" (default), tag or top hash (prefix)');

export const metaArg = z.record(z.string(), z.unknown()).optional().describe('Metadata (user_meta)');

// An empty one is refused by validateLogicalKey, with its rule.
export const logicalKeyArg = z.string().max(1024).describe('Path in the package');

export const entrySource = strictObject({
  logical_key: logicalKeyArg,
  s3_uri: z.string().optional().describe('s3://bucket/key[?versionId=...]'),
  path: z.string().optional().describe('Or a local file or folder'),
  text: z.string().optional().describe('Or content to store'),
  meta: metaArg,
});

/** Links for a revision: catalog page (a bucket's, when a catalog is configured) and quilt+ URI. */
export function revisionLinks(reg: RegistryStore, name: string, hash: string, path?: string) {
  const catalog = reg.ctx.catalog.url;
  return {
    catalog_url: catalog && reg.bucket !== undefined ? packageCatalogUrl(catalog, reg.bucket, name, hash, path) : undefined,
    quilt_uri: quiltPlusOf(reg.uri, name, { hash, path }),
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
