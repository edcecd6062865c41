/**
 * Calls that read or rewrite whole manifests (package_browse, package_diff, package_update, the
 * package resource) hold a slot while they run: a few at once in the process and two per caller,
 * callers served in turn. Each spends its time parsing manifest lines on the event loop every caller
 * shares, so a caller who starts many at once waits for its own instead of slowing everyone's
 * light calls; and each holds its data within a memory lease (memory.ts).
 */
import { callSignal } from '../core/call-scope.js';
import type { RuntimeContext } from '../context.js';
import { FairLimiter } from '../core/fair-limiter.js';
import { withLease, type LeaseOptions, type MemoryLease } from '../core/memory.js';

export const MANIFEST_WORK_TOTAL = 4;
export const MANIFEST_WORK_PER_CALLER = 2;
const WAIT_MS = 30_000;

export const manifestWorkSlots = new FairLimiter({ total: MANIFEST_WORK_TOTAL, perKey: MANIFEST_WORK_PER_CALLER, waitMs: WAIT_MS, what: 'package reads and writes' });

/** Runs `fn` in a slot of the caller's, with a memory lease released when it ends. */
export function manifestWork<T>(ctx: RuntimeContext, lease: LeaseOptions, fn: (memory: MemoryLease) => Promise<T>): Promise<T> {
  return manifestWorkSlots.run(ctx.principal.key, () => withLease(lease, fn), callSignal());
}
