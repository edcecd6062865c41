/**
 * The Node release quilt-mcp needs (package.json engines), said at start: npm's EBADENGINE warning
 * is easy to miss, and is not shown at all when the server is started by a client or in a container.
 */
export const NODE_MAJOR = 22;

/** A warning for an older Node (the version as process.version gives it), else undefined. */
export function nodeVersionWarning(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (!Number.isFinite(major) || major >= NODE_MAJOR) return undefined;
  // The server still starts (nothing is known to break yet), but says so once, first.
  return (
    `This is Node ${version}; quilt-mcp needs Node ${NODE_MAJOR} or later (Node ${major} is past its end of life, and AWS SDK releases from 2027 require ${NODE_MAJOR}). ` +
    `Install Node ${NODE_MAJOR} LTS or newer (https://nodejs.org, or \`nvm install ${NODE_MAJOR}\`) and start quilt-mcp with it.`
  );
}
