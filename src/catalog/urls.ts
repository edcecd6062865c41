/** Links people can open: the catalog's web pages and quilt+ URIs (formats in quilt-formats.md). */

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export function objectCatalogUrl(catalog: string, bucket: string, key: string, versionId?: string): string {
  return `${catalog}/b/${encodeURIComponent(bucket)}/tree/${encodePath(key)}${versionId ? `?version=${encodeURIComponent(versionId)}` : ''}`;
}

export function packageCatalogUrl(catalog: string, bucket: string, name: string, hash?: string, path = ''): string {
  return `${catalog}/b/${encodeURIComponent(bucket)}/packages/${encodePath(name)}/tree/${hash ?? 'latest'}/${encodePath(path)}`;
}

export function quiltPlusUri(bucket: string, name: string, ref: { hash?: string | undefined; tag?: string | undefined; path?: string | undefined } = {}): string {
  return quiltPlusOf(`s3://${bucket}`, name, ref);
}

/**
 * The quilt+ URI of a package in any registry: `quilt+s3://bucket#...`, or for a local registry
 * `quilt+file:///abs/dir#...` (the registry's file URI after "quilt+").
 */
export function quiltPlusOf(registryUri: string, name: string, ref: { hash?: string | undefined; tag?: string | undefined; path?: string | undefined } = {}): string {
  const at = ref.hash ? `@${ref.hash}` : ref.tag ? `:${ref.tag}` : '';
  return `quilt+${registryUri}#package=${name}${at}${ref.path ? `&path=${encodePath(ref.path)}` : ''}`;
}
