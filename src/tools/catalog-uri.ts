import { z } from 'zod';
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { objectCatalogUrl, packageCatalogUrl, quiltPlusUri } from '../catalog/urls.js';
import { ToolError } from '../core/errors.js';
import { PACKAGE_NAME } from '../packages/names.js';
import { bucketArg } from './args.js';
import { defineTool } from './define.js';


export const catalogUri = defineTool({
  name: 'catalog_uri',
  title: 'Catalog link and quilt+ URI',
  description: 'The Quilt catalog URL (a page for people) and quilt+ URI of an object or package, optionally at a revision and path.',
  toolset: 'catalog',
  kind: 'read',
  openWorld: false,
  input: {
    bucket: bucketArg,
    package: z.string().optional().describe('Package name; omit for an object or folder'),
    path: z.string().optional().describe('Key, or logical key in the package'),
    hash: z.string().optional().describe('Package top hash (default: latest)'),
  },
  output: {
    catalog_url: z.string().optional(),
    quilt_uri: z.string().optional(),
    s3_uri: z.string().optional(),
    note: z.string().optional(),
  },
  async handler(args, ctx) {
    const bucket = parseBucket(args.bucket);
    if (args.path !== undefined) checkKey(args.path, 'Path');
    const catalog = ctx.catalog.url;
    const note = catalog ? undefined : 'No Quilt catalog is configured, so there is no catalog URL (set QUILT_CATALOG_URL).';
    if (args.hash && !/^[0-9a-f]{64}$/.test(args.hash)) {
      throw new ToolError('invalid_input', `"${args.hash}" is not a package top hash (64 hex characters).`);
    }
    let data: { catalog_url?: string; quilt_uri?: string; s3_uri?: string; note?: string };
    if (args.package) {
      if (!PACKAGE_NAME.test(args.package)) {
        throw new ToolError('invalid_input', `"${args.package}" is not a package name.`, 'Package names look like "user/name".');
      }
      data = {
        catalog_url: catalog ? packageCatalogUrl(catalog, bucket, args.package, args.hash, args.path) : undefined,
        quilt_uri: quiltPlusUri(bucket, args.package, { hash: args.hash, path: args.path }),
        note,
      };
    } else {
      if (args.hash) throw new ToolError('invalid_input', 'hash applies to packages only: also give package.');
      const key = args.path ?? '';
      data = { catalog_url: catalog ? objectCatalogUrl(catalog, bucket, key) : undefined, s3_uri: `s3://${bucket}/${key}`, note };
    }
    return { data, text: [data.catalog_url, data.quilt_uri, data.s3_uri, note].filter(Boolean).join('\n') };
  },
});
