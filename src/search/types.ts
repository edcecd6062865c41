import { z } from 'zod';

/** One search result, flat, the same shape from the catalog and from the S3 fallback. */
export const searchHit = z.object({
  type: z.enum(['package', 'file']),
  bucket: z.string(),
  name: z.string().optional().describe('Package name (packages)'),
  key: z.string().optional().describe('Object key (files)'),
  hash: z.string().optional().describe('Package top hash'),
  version_id: z.string().optional(),
  size: z.number().optional(),
  modified: z.string().optional(),
  score: z.number().optional(),
  comment: z.string().optional().describe('Package revision message'),
  entries: z.number().optional().describe('Files in the package'),
  s3_uri: z.string().optional(),
  quilt_uri: z.string().optional(),
  catalog_url: z.string().optional(),
});
export type SearchHit = z.infer<typeof searchHit>;

export type Scope = 'global' | 'package' | 'file';

export interface SearchPage {
  hits: SearchHit[];
  total: { packages?: number; files?: number };
  /** Where the next page starts (the tool seals it into a cursor), when there is one. */
  next: SearchCursor | undefined;
  as: string;
  note: string | undefined;
}

/** Where a search continues. The tool seals it (cursors.ts) before handing it to the client. */
export interface SearchCursor {
  v: 1;
  q: string;
  s: Scope;
  b: string[] | null;
  /** Catalog cursors per kind; null = that kind is exhausted. */
  p: string | null;
  o: string | null;
}
