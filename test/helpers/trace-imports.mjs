// Loaded with `node --import`: appends every resolved module URL to $TRACE_IMPORTS_FILE, so a
// test can tell which modules a server loaded (e.g. that the AWS SDK is not loaded at startup).
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { file: process.env.TRACE_IMPORTS_FILE } });
