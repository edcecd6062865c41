/**
 * The other tenant, on a thread of its own (whileOthersCall in tenants.ts): it calls a cheap tool
 * back to back until told to stop and reports its longest wait. On the test's main thread its
 * waits also counted the local S3 stand-in serving the hostile tenant's gigabytes there, which is
 * the test's load, not the server's; a real tenant is another machine.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { url, token, bucket, serverOnly } = workerData;
const client = new Client({ name: 'quilt-mcp-tests-probe', version: '0.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
const probe = () =>
  serverOnly
    ? client.callTool({ name: 'catalog_uri', arguments: { bucket, path: 'alpha/own.txt' } })
    : client.callTool({ name: 'bucket_objects_list', arguments: { bucket, max_keys: 5 } });
const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

let stop = false;
parentPort.on('message', (m) => {
  if (m === 'stop') stop = true;
});
await probe(); // warm
parentPort.postMessage({ ready: true });
let worstMs = 0;
let calls = 0;
const failures = [];
while (!stop || calls < 5) {
  const started = performance.now();
  try {
    const r = await probe();
    if (r.isError) failures.push(text(r));
  } catch (err) {
    failures.push(String(err));
  }
  worstMs = Math.max(worstMs, performance.now() - started);
  calls++;
  // Lets the stop message in between calls that never wait.
  await new Promise((resolve) => setImmediate(resolve));
}
await client.close().catch(() => {});
parentPort.postMessage({ worstMs, calls, failures });
