/**
 * `npm run demo`: quilt-mcp end to end with no AWS account and no internet. It starts an embedded
 * S3 (s3rver) with a sample bucket and a local STS, launches the built server over stdio the way
 * Claude Desktop does, and prints a transcript of real tool calls.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, connectStdio, s3Env } from '../test/helpers/mcp.js';
import { startAthena } from '../test/helpers/athena.js';
import { DEMO_BUCKET, putDemoObjects } from '../test/helpers/demo-data.js';
import { startS3 } from '../test/helpers/s3.js';
import { startSts } from '../test/helpers/sts.js';

const BUCKET = DEMO_BUCKET;
const color = process.stdout.isTTY
  ? { dim: (s: string) => `\x1b[2m${s}\x1b[0m`, bold: (s: string) => `\x1b[1m${s}\x1b[0m`, red: (s: string) => `\x1b[31m${s}\x1b[0m` }
  : { dim: (s: string) => s, bold: (s: string) => s, red: (s: string) => s };

function show(text: string, max = 14): string {
  const lines = text.split('\n');
  const shown = lines.slice(0, max).map((l) => `    ${l.length > 160 ? `${l.slice(0, 157)}...` : l}`);
  if (lines.length > max) shown.push(color.dim(`    ... (${lines.length - max} more lines)`));
  return shown.join('\n');
}

async function main() {
  const s3 = await startS3({
    buckets: [BUCKET],
    // A prefix this "user" may not read, to show what an access problem looks like.
    deny: (r) => (r.key.startsWith('restricted/') || r.query.get('prefix')?.startsWith('restricted/') ? 'AccessDenied' : undefined),
  });
  const sts = await startSts();
  const athena = await startAthena();
  sts.identities.set('S3RVER', 'arn:aws:iam::123456789012:user/demo-user');
  await putDemoObjects(s3, BUCKET);
  // A folder on "your disk", granted to the server (QUILT_MCP_ROOTS).
  const disk = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'quilt-demo-disk-')));
  const folder = path.join(disk, 'field-notes');
  mkdirSync(path.join(folder, 'raw'), { recursive: true });
  writeFileSync(path.join(folder, 'summary.md'), '# Field notes\n\nTwo sites, one week.\n');
  writeFileSync(path.join(folder, 'raw', 'site-a.csv'), 'day,count\n1,12\n2,15\n');
  writeFileSync(path.join(folder, 'raw', 'scratch.tmp'), 'not data\n');
  writeFileSync(path.join(folder, '.quiltignore'), '*.tmp\n');

  const h = await connectStdio(s3Env(s3.endpoint, { AWS_ENDPOINT_URL_STS: sts.endpoint, AWS_ENDPOINT_URL_ATHENA: athena.endpoint, MCP_LOG_LEVEL: 'warning', QUILT_MCP_ROOTS: disk }));
  const step = async (title: string, tool: string, args: Record<string, unknown> = {}) => {
    console.log(`\n${color.bold(`▶ ${title}`)}`);
    console.log(color.dim(`  ${tool} ${JSON.stringify(args)}`));
    const started = performance.now();
    const r = await call(h.client, tool, args);
    const ms = Math.round(performance.now() - started);
    console.log(`${r.isError ? color.red('  ✗ error') : '  ✓'} ${color.dim(`(${ms} ms)`)}`);
    console.log(show(r.text));
    return r;
  };

  try {
    const { tools } = await h.client.listTools();
    console.log(color.bold(`quilt-mcp demo: ${tools.length} tools over stdio, data in an embedded local S3 (no AWS account used)`));
    await step('Who am I?', 'auth_status');
    await step('Which buckets can I see?', 'bucket_list');
    await step('Browse the bucket like folders', 'bucket_objects_list', { bucket: BUCKET, delimiter: '/' });
    await step('Read a CSV as text', 'bucket_object_text', { uri: `s3://${BUCKET}/data/measurements.csv` });
    const link = await step('Make a download link', 'bucket_object_link', { uri: `s3://${BUCKET}/README.md`, expires_in: 900 });
    if (!link.isError) {
      const body = await (await fetch(link.data.url)).text();
      console.log(color.dim(`    (fetched the link: ${body.length} bytes, starts with "${body.split('\n')[0]}")`));
    }
    await step('Search (no catalog here, so it scans the buckets it can see in S3, and says so)', 'search_catalog', { query: 'measurements' });
    await step('Write a note', 'bucket_objects_put', {
      bucket: BUCKET,
      items: [{ key: 'notes/from-claude.md', text: '# Observations\n\nB1 is the coolest sample.\n' }],
    });
    const pkg = await step('Package the data folder (manifest and checksums as quilt3 writes them)', 'package_create', {
      bucket: BUCKET,
      name: 'demo/measurements',
      source_uri_prefix: `s3://${BUCKET}/data/`,
      message: 'Four samples from 2024',
      meta: { instrument: 'pH-meter 3', samples: 4 },
    });
    await step('Browse the package', 'package_browse', { bucket: BUCKET, name: 'demo/measurements' });
    await step('Add a file in a new revision', 'package_update', {
      bucket: BUCKET,
      name: 'demo/measurements',
      message: 'Add observations',
      add: [{ logical_key: 'observations.md', text: '# Observations\n\nB1 is the coolest sample.\n' }],
    });
    await step('Its revisions, newest first', 'package_list', { bucket: BUCKET, name: 'demo/measurements' });
    if (!pkg.isError) await step('What changed?', 'package_diff', { bucket: BUCKET, name: 'demo/measurements', from: pkg.data.top_hash });
    await step("Package a folder on this disk into quilt3's local registry (no AWS needed; .quiltignore honoured)", 'package_create', {
      bucket: 'local',
      name: 'me/field-notes',
      source_uri_prefix: folder,
      message: 'A week of field notes',
    });
    await step('Push it to the bucket, as quilt3 push (data uploaded, top hash kept)', 'package_push', { bucket: 'local', name: 'me/field-notes', to_bucket: BUCKET });
    await step('A clear error: a folder nobody granted', 'package_create', { bucket: 'local', name: 'me/etc', source_uri_prefix: '/etc' });
    await step('Query a table with Athena (a local stand-in here)', 'athena_query_execute', {
      database: 'analytics',
      query: 'SELECT species, COUNT(*) AS n, AVG(score) AS avg_score FROM samples GROUP BY species ORDER BY species',
    });
    await step('A clear error: a key that does not exist', 'bucket_object_text', { uri: `s3://${BUCKET}/data/missing.csv` });
    await step('A clear error: no permission', 'bucket_object_text', { uri: `s3://${BUCKET}/restricted/salaries.csv` });
    console.log(`\n${color.bold('Done.')} Run \`npm test\` for the full suite; see README.md to connect Claude Desktop.`);
  } finally {
    await h.close();
    rmSync(disk, { recursive: true, force: true });
    await s3.close();
    await sts.close();
    await athena.close();
  }
}

main().catch((err: unknown) => {
  console.error('demo failed:', err);
  process.exit(1);
});
