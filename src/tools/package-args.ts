/** Argument schemas and output pieces shared by the package tools. */
import { z } from 'zod';
import type { RuntimeContext } from '../context.js';
import { packageCatalogUrl, quiltPlusUri } from '../catalog/urls.js';
import { ToolError } from '../errors.js';
import { fromPlain, type PyJson } from '../packages/pyjson.js';

export const packageNameArg = z.string().min(3).describe('Package name "user/name", e.g. "team/dataset"');

export const hashOrTagArg = z
  .string()
  .optional()
  .describe('Revision: "latest" (default), a timestamp tag, a top hash or a unique prefix of one (6+ hex digits)');

export const metaArg = z
  .record(z.string(), z.unknown())
  .optional()
  .describe('Metadata object (JSON); stored as the user_meta quilt3 shows');

export const logicalKeyArg = z.string().min(1).max(1024).describe('Path inside the package, e.g. "data/table.csv"');

export const entrySource = z.object({
  logical_key: logicalKeyArg,
  s3_uri: z.string().optional().describe('Existing object to include (s3://bucket/key[?versionId=...]); it is referenced, not copied'),
  text: z.string().optional().describe('Content to store as a new object next to the package'),
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

/** Opaque cursors: base64url JSON, so a client cannot mistake them for keys. */
export function encodeCursor(value: Record<string, string>): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined, fields: readonly string[]): Record<string, string> | undefined {
  if (!cursor) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (fields.every((f) => typeof v[f] === 'string')) return v as Record<string, string>;
  } catch {
    // fall through
  }
  throw new ToolError('invalid_input', 'The cursor is not valid here.', 'Pass next_cursor from the previous call unchanged, with the same other arguments.');
}
