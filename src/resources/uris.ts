/**
 * Resource URIs as clients send them: `quilt+s3://bucket#package=team/name[@hash|:tag][&path=key]`
 * (the Quilt+ form, quilt-formats.md), its local form `quilt+file:///abs/dir#package=...` (a local
 * registry, desktop mode), and `s3://bucket/key`. Parsed from the raw string, and every key and
 * logical key passes the same `..` refusal as tool arguments (checkKey).
 */
import { checkKey, parseBucket } from '../aws/s3-uri.js';
import { ToolError } from '../errors.js';
import { parsePackageName } from '../packages/names.js';

export const QUILT_SCHEME = /^quilt\+(?:s3|file):\/\//i;
export const S3_SCHEME = /^s3:\/\//i;

export interface QuiltUri {
  /** The registry as tools name it: the bucket, or the local registry's file:// URI. */
  registry: string;
  bucket: string;
  name: string;
  /** A top hash (or unique prefix), "latest" or a timestamp tag: what resolveRevision takes. */
  ref: string;
  /** Logical key inside the package, when the URI names one entry. */
  path: string | undefined;
}

const FORM = 'quilt+s3://bucket#package=team/name@<top hash>[&path=logical/key]';

function invalid(raw: string, why: string): ToolError {
  const shown = raw.length > 200 ? `${raw.slice(0, 200)}...` : raw;
  return new ToolError('invalid_input', `"${shown}" is not a package resource URI: ${why}.`, `Use the form ${FORM}.`);
}

function decode(raw: string, value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw invalid(raw, `its ${what} is not valid percent-encoding`);
  }
}

export function parseQuiltUri(raw: string): QuiltUri {
  const local = /^quilt\+(file:\/\/[^#]*)#(.*)$/i.exec(raw);
  const m = local ?? /^quilt\+s3:\/\/([^/?#]+)\/?#(.*)$/i.exec(raw);
  if (!m) throw invalid(raw, 'it needs a bucket and a #package=... fragment');
  const registry = local ? (m[1] ?? '') : parseBucket(m[1] ?? '');
  const bucket = registry;
  const params = new Map<string, string>();
  for (const part of (m[2] ?? '').split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (params.has(key)) throw invalid(raw, `"${key}" is given twice`);
    params.set(key, eq < 0 ? '' : part.slice(eq + 1));
  }
  const pkg = params.get('package');
  if (!pkg) throw invalid(raw, 'the fragment has no package=');
  const at = /^([^@:]+)(?:@([0-9a-fA-F]{6,64})|:([A-Za-z0-9]+))?$/.exec(decode(raw, pkg, 'package'));
  if (!at) throw invalid(raw, 'package= must be team/name, optionally followed by @<top hash> or :<tag>');
  const name = parsePackageName(at[1] ?? '');
  const ref = at[2]?.toLowerCase() ?? at[3] ?? 'latest';
  const rawPath = params.get('path');
  let path: string | undefined;
  if (rawPath !== undefined) {
    // The encoded form is checked too: checkKey decodes percent-encoding itself, up to three times.
    checkKey(rawPath, 'Logical key');
    path = checkKey(decode(raw, rawPath, 'path'), 'Logical key').replace(/^\/+/, '');
    if (!path || path.endsWith('/')) throw invalid(raw, 'path= must name one file of the package (a directory is browsed with package_browse)');
  }
  return { registry, bucket, name, ref, path };
}
