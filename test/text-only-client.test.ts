/**
 * A client that hands the model only the text of each answer (as Claude Desktop does) does the
 * tasks of issue 25 on the demo data, each in a bounded number of calls: every value it passes on
 * is read from a previous answer's text, never from structured content.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAthena, type LocalAthena } from './helpers/athena.js';
import { DEMO_BUCKET, putDemoObjects } from './helpers/demo-data.js';
import { call, connectStdio, s3Env, type Harness } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let s3: LocalS3;
let athena: LocalAthena;
let h: Harness;

/** The text-only client: it sees each answer's text and nothing else, and counts its calls. */
class TextOnlyClient {
  calls = 0;
  async ask(tool: string, args: Record<string, unknown> = {}): Promise<string> {
    this.calls++;
    const r = await call(h.client, tool, args);
    if (r.isError) throw new Error(`${tool} failed: ${r.text}`);
    return r.text;
  }
}

/** The first capture of `re` in `text`, or a failure that shows the text. */
function find(text: string, re: RegExp): string {
  const m = re.exec(text);
  if (!m?.[1]) throw new Error(`${re} not found in:\n${text}`);
  return m[1];
}

beforeAll(async () => {
  s3 = await startS3({ buckets: [DEMO_BUCKET] });
  athena = await startAthena();
  await putDemoObjects(s3);
  h = await connectStdio(s3Env(s3.endpoint, { AWS_ENDPOINT_URL_ATHENA: athena.endpoint }));
  // The demo's packages: one with two revisions, and team/analysis, whose README.md is not the
  // bucket's README.md (a model that guessed s3://quilt-demo/README.md read the wrong object).
  const setup = [
    ['package_create', { bucket: DEMO_BUCKET, name: 'demo/measurements', source_uri_prefix: `s3://${DEMO_BUCKET}/data/`, message: 'Four samples from 2024' }],
    ['package_update', { bucket: DEMO_BUCKET, name: 'demo/measurements', message: 'Add observations', add: [{ logical_key: 'observations.md', text: '# Observations\n' }] }],
    ['package_create', { bucket: DEMO_BUCKET, name: 'team/analysis', entries: [{ logical_key: 'README.md', text: '# Team analysis\n' }] }],
    ['package_create', { bucket: DEMO_BUCKET, name: 'team/models', entries: [{ logical_key: 'm.txt', text: 'm' }] }],
    ['package_create', { bucket: DEMO_BUCKET, name: 'zoo/birds', entries: [{ logical_key: 'b.txt', text: 'b' }] }],
  ] as const;
  for (const [tool, args] of setup) {
    const r = await call(h.client, tool, args);
    expect(r.isError, r.text).toBe(false);
  }
}, 120_000);

afterAll(async () => {
  await h?.close();
  await s3?.close();
  await athena?.close();
});

describe('a client that reads only the text', () => {
  it('pages through package_list to its end', async () => {
    const c = new TextOnlyClient();
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const text = await c.ask('package_list', { bucket: DEMO_BUCKET, limit: 2, ...(cursor ? { cursor } : {}) });
      names.push(...[...text.matchAll(/^(\S+\/\S+)  [0-9a-f]{64}  /gm)].map((m) => m[1]!));
      cursor = /call again with cursor="([^"]+)"/.exec(text)?.[1];
    } while (cursor && c.calls < 10);
    expect(names).toEqual(['demo/measurements', 'team/analysis', 'team/models', 'zoo/birds']);
    expect(c.calls).toBe(2);
  });

  it("finds a package entry's location and reads that object", async () => {
    const c = new TextOnlyClient();
    const browse = await c.ask('package_browse', { bucket: DEMO_BUCKET, name: 'team/analysis' });
    const uri = find(browse, /^README\.md  \d+ B  (s3:\/\/\S+)/m);
    expect(uri).toBe(`s3://${DEMO_BUCKET}/team/analysis/README.md`);
    const read = await c.ask('bucket_object_text', { uri });
    expect(read).toContain('# Team analysis');
    // A file of a folder, found the same way.
    const csv = find(await c.ask('package_browse', { bucket: DEMO_BUCKET, name: 'demo/measurements', recursive: true }), /^measurements\.csv  \d+ B  (s3:\/\/\S+)/m);
    expect(await c.ask('bucket_object_text', { uri: csv })).toContain('sample,temperature_c,ph');
    expect(c.calls).toBe(4);
  });

  it("lists a package's revisions and diffs the two newest", async () => {
    const c = new TextOnlyClient();
    const revisions = await c.ask('package_revisions', { bucket: DEMO_BUCKET, name: 'demo/measurements' });
    const [newest, older] = [...revisions.matchAll(/^([0-9a-f]{64})  /gm)].map((m) => m[1]!);
    expect(newest && older).toBeTruthy();
    const diff = await c.ask('package_diff', { bucket: DEMO_BUCKET, name: 'demo/measurements', from: older, to: newest });
    expect(diff).toContain('1 added, 0 removed, 0 modified');
    expect(diff).toMatch(/^\+ observations\.md  s3:\/\/quilt-demo\/demo\/measurements\/observations\.md$/m);
    expect(c.calls).toBe(2);
  });

  it('pages the revisions with the cursor in the text; a cursor of another package is refused', async () => {
    const c = new TextOnlyClient();
    const first = await c.ask('package_revisions', { bucket: DEMO_BUCKET, name: 'demo/measurements', limit: 1 });
    const cursor = find(first, /call again with cursor="([^"]+)"/);
    const second = await c.ask('package_revisions', { bucket: DEMO_BUCKET, name: 'demo/measurements', limit: 1, cursor });
    expect(first).toMatch(/^[0-9a-f]{64}  .*\(latest\)  "Add observations"$/m);
    expect(second).toMatch(/^[0-9a-f]{64}  .*  "Four samples from 2024"$/m);
    expect(second).not.toContain('More revisions');
    await expect(c.ask('package_revisions', { bucket: DEMO_BUCKET, name: 'team/analysis', cursor })).rejects.toThrow(/cursor belongs to another listing/);
  });

  it('reads 200 rows of an Athena result', async () => {
    const c = new TextOnlyClient();
    const query = 'SELECT id, name FROM samples ORDER BY id';
    const ids: number[] = [];
    const first = await c.ask('athena_query_execute', { database: 'analytics', query, max_rows: 150 });
    ids.push(...[...first.matchAll(/^\| (\d+) \| sample-\d+ \|$/gm)].map((m) => Number(m[1])));
    const cursor = find(first, /call again with cursor="([^"]+)"/);
    const second = await c.ask('athena_query_execute', { database: 'analytics', query, max_rows: 50, cursor });
    ids.push(...[...second.matchAll(/^\| (\d+) \| sample-\d+ \|$/gm)].map((m) => Number(m[1])));
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(c.calls).toBe(2);
  });

  it('searches the demo bucket without a catalog and without a buckets argument', async () => {
    const c = new TextOnlyClient();
    const text = await c.ask('search_catalog', { query: 'measurements' });
    expect(text).toContain(`file s3://${DEMO_BUCKET}/data/measurements.csv`);
    expect(text).toMatch(/package demo\/measurements in quilt-demo @[0-9a-f]{64}/);
    // It says what it is and what it cannot see.
    expect(text).toContain('S3 scan, no catalog');
    expect(text).toContain('not file contents, metadata or package messages');
    expect(c.calls).toBe(1);
  });
});
