/**
 * One memory budget per process for everything that holds a tenant's package data: package_update's
 * new manifest (its buffer, growth included), package_diff's map of one side when a revision is out
 * of walk order, package_browse's folder records and kept entries, and long manifest lines being
 * parsed. Each call takes a lease, grows it before it holds more and gives it back when it ends; what
 * does not fit is refused (`too_large` when larger than the whole budget, `throttled` while other
 * calls hold the rest), so no caller, however large the manifest it wrote, can exhaust the heap the
 * process shares with everyone else.
 *
 * The budget is a share of the process's heap limit (`--max-old-space-size`, or V8's default for the
 * machine), so a smaller task or heap gets a smaller budget by construction.
 */
import v8 from 'node:v8';
import { ToolError } from './errors.js';

/** Share of the heap limit that package data may take, all calls together. */
export const HEAP_SHARE = 0.4;

export const heapBudgetBytes = (): number => Math.floor(v8.getHeapStatistics().heap_size_limit * HEAP_SHARE);

const mib = (bytes: number) => `${Math.ceil(bytes / 1024 / 1024)} MiB`;

export interface LeaseOptions {
  /** What the lease is for, in messages: "package_diff of team/data@1a2b3c4d5e6f". */
  what: string;
  /** What to do when the call needs more than the whole budget. */
  tooLargeHint: string;
}

export class MemoryBudget {
  private used = 0;

  constructor(readonly total: number) {}

  get inUse(): number {
    return this.used;
  }

  lease(opts: LeaseOptions): MemoryLease {
    return new MemoryLease(this, opts);
  }

  /** Moves `delta` bytes into (or out of) use; refuses growth that does not fit. */
  change(delta: number, want: number, opts: LeaseOptions): void {
    if (delta > 0) {
      if (want > this.total) {
        throw new ToolError(
          'too_large',
          `${opts.what} needs ${mib(want)} of memory, more than the ${mib(this.total)} this server lets package data take at once.`,
          opts.tooLargeHint,
        );
      }
      if (this.used + delta > this.total) {
        throw new ToolError(
          'throttled',
          `${opts.what} needs ${mib(want)} of memory; other calls on this server hold ${mib(this.used)} of the ${mib(this.total)} package data may take.`,
          'Retry in a minute.',
        );
      }
    }
    this.used += delta;
  }
}

/** The bytes one call holds; grown before it holds more, released (once) when it ends. */
export class MemoryLease {
  private held = 0;
  private released = false;

  constructor(
    private readonly budget: MemoryBudget,
    private readonly opts: LeaseOptions,
  ) {}

  get bytes(): number {
    return this.held;
  }

  /** Holds `bytes` in all, growing or shrinking the reservation; throws too_large / throttled. */
  hold(bytes: number): void {
    if (this.released) return;
    const want = Math.max(0, Math.ceil(bytes));
    if (want === this.held) return;
    this.budget.change(want - this.held, want, this.opts);
    this.held = want;
  }

  add(bytes: number): void {
    this.hold(this.held + bytes);
  }

  release(): void {
    if (this.released) return;
    this.budget.change(-this.held, 0, this.opts);
    this.held = 0;
    this.released = true;
  }
}

/** The process's budget for package data. */
export const packageMemory = new MemoryBudget(heapBudgetBytes());

/** Runs `fn` with a lease of the process budget, released when it ends however it ends. */
export async function withLease<T>(opts: LeaseOptions, fn: (lease: MemoryLease) => Promise<T>, budget: MemoryBudget = packageMemory): Promise<T> {
  const lease = budget.lease(opts);
  try {
    return await fn(lease);
  } finally {
    lease.release();
  }
}
