/** Links people can open: the catalog's web pages and quilt+ URIs (formats in quilt-formats.md). */

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export function objectCatalogUrl(catalog: string, bucket: string, key: string, versionId?: string): string {
  return `${catalog}/b/${encodeURIComponent(bucket)}/tree/${encodePath(key)}${versionId ? `?version=${encodeURIComponent(versionId)}` : ''}`;
}

export function packageCatalogUrl(catalog: string, bucket: string, name: string, hash?: string, path = ''): string {
  return `${catalog}/b/${encodeURIComponent(bucket)}/packages/${encodePath(name)}/tree/${hash ?? 'latest'}/${encodePath(path)}`;
}

export function quiltPlusUri(bucket: string, name: string, ref: { hash?: string | undefined; tag?: string | undefined; path?: string | undefined } = {}): string {
  const at = ref.hash ? `@${ref.hash}` : ref.tag ? `:${ref.tag}` : '';
  return `quilt+s3://${bucket}#package=${name}${at}${ref.path ? `&path=${encodePath(ref.path)}` : ''}`;
}
