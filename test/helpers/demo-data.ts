/** The demo bucket's objects (`npm run demo` and the tests that do the demo's tasks build the same). */
import type { LocalS3 } from './s3.js';

export const DEMO_BUCKET = 'quilt-demo';

export const DEMO_OBJECTS: ReadonlyArray<{ key: string; body: string; type: string }> = [
  { key: 'README.md', body: '# Quilt demo bucket\n\nSample data for the quilt-mcp demo.\n', type: 'text/markdown' },
  { key: 'data/measurements.csv', body: 'sample,temperature_c,ph\nA1,21.4,7.1\nA2,22.0,6.9\nB1,19.8,7.4\nB2,20.5,7.0\n', type: 'text/csv' },
  { key: 'data/notes/2024-summary.md', body: '## 2024\n\nFour samples, all within range.\n', type: 'text/markdown' },
  // A prefix the demo's "user" may not read (the demo's S3 denies it), to show an access problem.
  { key: 'restricted/salaries.csv', body: 'name,salary\n', type: 'text/csv' },
];

export async function putDemoObjects(s3: LocalS3, bucket = DEMO_BUCKET): Promise<void> {
  for (const o of DEMO_OBJECTS) await s3.put(bucket, o.key, o.body, o.type);
}
