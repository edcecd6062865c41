/**
 * Package resources: a revision's manifest as a summary, and one entry's content. Both read the
 * manifest straight from the registry (S3 or a local one; no catalog), streaming, so a
 * 100,000-entry manifest costs one pass and memory for the entries shown.
 */
import { parsePhysicalKey } from '../packages/physical-keys.js';
import { checkKey } from '../aws/s3-uri.js';
import { packageCatalogUrl, quiltPlusOf } from '../catalog/urls.js';
import { openRegistry } from '../packages/registries.js';
import { localContent } from './local-content.js';
import { ToolError } from '../errors.js';
import { manifestWork } from '../packages/manifest-work.js';
import { eachEntry, type ManifestEntry } from '../packages/manifest.js';
import { toPlain } from '../packages/pyjson.js';
import { resolveRevision, streamManifest, streamManifestBatches } from '../packages/registry.js';
import { objectContent } from './content.js';
import type { TemplateResource } from './define.js';
import { QUILT_SCHEME, parseQuiltUri } from './uris.js';

/** Entries listed in a manifest summary (package_browse pages through the rest). */
export const SUMMARY_ENTRIES = 100;

const hasPath = (uri: string) => /#(?:.*&)?path=/.test(uri);

export const packageManifestResource: TemplateResource = {
  name: 'package',
  title: 'Quilt package revision',
  uriTemplate: 'quilt+s3://{bucket}#package={+name}@{hash}',
  description:
    'A Quilt package revision: its message and metadata, number of files, total size and the first ' +
    `${SUMMARY_ENTRIES} entries, each with the URI that reads it. @<top hash> pins the revision; :latest or no ref reads the latest.`,
  mimeType: 'application/json',
  toolset: 'packages',
  accepts: (uri) => QUILT_SCHEME.test(uri) && !hasPath(uri),
  async read(uri, ctx) {
    const q = parseQuiltUri(uri);
    const reg = await openRegistry(ctx, q.registry);
    const hash = await resolveRevision(reg, q.name, q.ref);
    const first: Array<{ logical_key: string; size: number; uri: string }> = [];
    let files = 0;
    let size = 0;
    // The entries shown are counted in the process's memory for package data (keys can be long).
    const header = await manifestWork(ctx, { what: `Reading ${q.name}@${hash.slice(0, 12)}`, tooLargeHint: 'Page through it with package_browse instead.' }, (memory) => {
      let held = 0;
      return eachEntry(streamManifestBatches(reg, hash), (e) => {
        files++;
        size += e.size;
        if (first.length >= SUMMARY_ENTRIES) return;
        const item = { logical_key: e.logical_key, size: e.size, uri: quiltPlusOf(reg.uri, q.name, { hash, path: e.logical_key }) };
        held += 2 * (item.logical_key.length + item.uri.length) + 96;
        memory.hold(held);
        first.push(item);
      });
    });
    if (!header) throw new ToolError('upstream_error', `The manifest of ${q.name}@${hash} in ${reg.id} is empty.`);
    const data = {
      uri,
      bucket: reg.id,
      name: q.name,
      top_hash: hash,
      quilt_uri: quiltPlusOf(reg.uri, q.name, { hash }),
      catalog_url: ctx.catalog.url && reg.bucket ? packageCatalogUrl(ctx.catalog.url, reg.bucket, q.name, hash) : undefined,
      message: typeof header.message === 'string' ? header.message : null,
      user_meta: header.user_meta === undefined ? undefined : toPlain(header.user_meta),
      workflow: header.workflow === undefined ? undefined : toPlain(header.workflow),
      entries: files,
      total_size: size,
      shown_entries: first.length,
      first_entries: first,
      more: files > first.length ? `${files - first.length} more entries: page through them with package_browse(bucket="${reg.id}", name="${q.name}", hash_or_tag="${hash}", recursive=true).` : undefined,
    };
    return [{ uri, mimeType: 'application/json', text: JSON.stringify(data, null, 2) }];
  },
};

export const packageEntryResource: TemplateResource = {
  name: 'package-entry',
  title: 'File in a Quilt package',
  uriTemplate: 'quilt+s3://{bucket}#package={+name}@{hash}&path={+path}',
  description:
    'One file of a Quilt package revision: small text files inline, anything else as the entry\'s metadata (size, hash, ' +
    'location) and a presigned download link valid for an hour.',
  toolset: 'packages',
  accepts: (uri) => QUILT_SCHEME.test(uri) && hasPath(uri),
  async read(uri, ctx) {
    const q = parseQuiltUri(uri);
    const path = q.path ?? '';
    const reg = await openRegistry(ctx, q.registry);
    const hash = await resolveRevision(reg, q.name, q.ref);
    // Manifests are sorted by logical key, but an old or foreign one may not be: scan to the end
    // or the match (leaving the loop early closes the S3 stream).
    const entry = await manifestWork(ctx, { what: `Reading ${q.name}@${hash.slice(0, 12)}`, tooLargeHint: 'Read the file with bucket_object_text instead.' }, async () => {
      let header = true;
      for await (const rec of streamManifest(reg, hash)) {
        if (header) {
          header = false;
          continue;
        }
        if ((rec as ManifestEntry).logical_key === path) return rec as ManifestEntry;
      }
      return undefined;
    });
    if (!entry) {
      throw new ToolError(
        'not_found',
        `Package ${q.name}@${hash.slice(0, 12)} in ${reg.id} has no file "${path}".`,
        `Read ${quiltPlusOf(reg.uri, q.name, { hash })} for its entries, or package_browse to look around.`,
      );
    }
    const pk = entry.physical_keys[0];
    if (!pk) throw new ToolError('upstream_error', `The entry "${path}" of ${q.name}@${hash.slice(0, 12)} has no physical key.`);
    const describe = { package: q.name, top_hash: hash, logical_key: entry.logical_key, hash: entry.hash.value, hash_type: entry.hash.type };
    // A local file (desktop mode): read within the caller's roots; in JWT mode refused.
    if (/^file:/i.test(pk)) return localContent(ctx, uri, pk, describe);
    const loc = parsePhysicalKey(pk);
    // A manifest is data anyone with write access may have written: its keys get the same refusal.
    checkKey(loc.key, 'The entry\'s physical key');
    return objectContent(ctx, uri, loc, describe);
  },
};
