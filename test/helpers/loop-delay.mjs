/**
 * A preload (`node --import`) that measures how long the process's event loop was held: every
 * second it writes `loop-delay max=<ms> p99=<ms>` for the second just past to stderr (stdout is
 * the protocol). The security tests start the server with it, so that a tenant's wait can be told
 * apart into what the server held and what the machine (or the test process) did.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
setInterval(() => {
  if (h.count > 0) process.stderr.write(`loop-delay max=${(h.max / 1e6).toFixed(1)} p99=${(h.percentile(99) / 1e6).toFixed(1)}\n`);
  h.reset();
}, 1000).unref();
