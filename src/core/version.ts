/** The package's version, from package.json (the bundle inlines it: scripts/bundle.ts). */
import { createRequire } from 'node:module';

// dist/core/version.js -> ../../package.json is the package root, in the repo and in an installed package.
const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
export const VERSION: string = pkg.version;
