/**
 * `npm run playground`: a place to try quilt-mcp by hand. It starts what `npm run demo` starts (an
 * embedded S3 with the demo bucket, a local STS and a local Athena with sample tables), makes a
 * sample folder and a sample quilt3 local registry (a package of that folder), prints a ready
 * Claude Desktop entry and an MCP Inspector command that use them, and keeps running until Ctrl-C.
 * Nothing here touches your real AWS account, quilt3 session or local registry: the entry points
 * the server at a data directory of its own.
 *
 * PLAYGROUND_SMOKE=1 launches the printed entry once, makes a few calls and exits (the test does).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAthena } from '../test/helpers/athena.js';
import { DEMO_BUCKET, putDemoObjects } from '../test/helpers/demo-data.js';
import { call, connectStdio } from '../test/helpers/mcp.js';
import { startS3 } from '../test/helpers/s3.js';
import { startSts } from '../test/helpers/sts.js';

const ENTRY = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const smoke = process.env.PLAYGROUND_SMOKE === '1';

async function main() {
  const home = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'quilt-playground-')));
  const folder = path.join(home, 'my-data');
  const dataHome = path.join(home, 'data-home');
  mkdirSync(path.join(folder, 'raw'), { recursive: true });
  writeFileSync(path.join(folder, 'README.md'), '# My data\n\nA folder to package, diff and push from the playground.\n');
  writeFileSync(path.join(folder, 'samples.csv'), 'sample,temperature_c,ph\nC1,18.2,7.2\nC2,19.9,6.8\n');
  writeFileSync(path.join(folder, 'raw', 'run-1.json'), '{"instrument": "pH-meter 3", "ok": true}\n');
  writeFileSync(path.join(folder, 'raw', 'debug.log'), 'left out by .quiltignore\n');
  writeFileSync(path.join(folder, '.quiltignore'), '*.log\n');

  const s3 = await startS3({ buckets: [DEMO_BUCKET] });
  const sts = await startSts();
  const athena = await startAthena();
  sts.identities.set('S3RVER', 'arn:aws:iam::123456789012:user/playground-user');
  await putDemoObjects(s3, DEMO_BUCKET);

  // What the server gets: the local stand-ins for AWS, and a quilt3 data directory of its own
  // (XDG_DATA_HOME), so its local registry is the playground's.
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    AWS_ENDPOINT_URL_ATHENA: athena.endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    XDG_DATA_HOME: dataHome,
    WIN_PD_OVERRIDE_LOCAL_APPDATA: dataHome,
    QUILT_MCP_ROOTS: home,
  };
  const args = [ENTRY, folder];

  // The sample local registry, made by the server itself.
  const maker = await connectStdio({ PATH: process.env.PATH ?? '', HOME: home, NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', MCP_LOG_LEVEL: 'warning', ...env }, [folder]);
  const made = await call(maker.client, 'package_create', { bucket: 'local', name: 'playground/my-data', source_uri_prefix: folder, message: 'The sample folder', meta: { made_by: 'npm run playground' } });
  await maker.close();
  if (made.isError) throw new Error(`could not make the sample local package: ${made.text}`);

  const entry = { mcpServers: { 'quilt-playground': { command: process.execPath, args, env } } };
  const inspector = ['npx', '@modelcontextprotocol/inspector', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), process.execPath, ...args]
    .map((a) => (/^[\w@./:=-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
  console.log(`quilt-mcp playground (no AWS account, no internet):
  S3      ${s3.endpoint}  bucket s3://${DEMO_BUCKET} (the demo's objects)
  STS     ${sts.endpoint}
  Athena  ${athena.endpoint}  database "analytics"
  folder  ${folder}  (granted: QUILT_MCP_ROOTS)
  local registry  ${path.join(dataHome, 'Quilt', 'packages')}  package playground/my-data@${made.data.top_hash}

Claude Desktop: add this to claude_desktop_config.json (and restart it):
${JSON.stringify(entry, null, 2)}

MCP Inspector:
${inspector}

Try: "list the packages in my local registry", "package ${folder} as me/data", "install playground/my-data into ${path.join(home, 'installed')}", "push playground/my-data to ${DEMO_BUCKET}".
Built from dist/ (npm run build). Ctrl-C stops the playground and removes ${home}.`);

  const stop = async () => {
    await Promise.allSettled([s3.close(), sts.close(), athena.close()]);
    rmSync(home, { recursive: true, force: true });
  };
  if (smoke) {
    // The printed entry, as a client would launch it.
    const h = await connectStdio({ PATH: process.env.PATH ?? '', HOME: home, NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', ...env }, [folder]);
    try {
      for (const [tool, a] of [
        ['package_list', { bucket: 'local' }],
        ['bucket_object_text', { uri: `s3://${DEMO_BUCKET}/data/measurements.csv`, max_bytes: 40 }],
        ['package_push', { bucket: 'local', name: 'playground/my-data', to_bucket: DEMO_BUCKET }],
      ] as const) {
        const r = await call(h.client, tool, a);
        console.log(`smoke ${tool}: ${r.isError ? 'ERROR' : 'ok'}: ${r.text.split('\n')[0]}`);
      }
    } finally {
      await h.close();
      await stop();
    }
    return;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop();
  console.log('\nplayground stopped.');
}

main().catch((err: unknown) => {
  console.error('playground failed:', err);
  process.exit(1);
});
