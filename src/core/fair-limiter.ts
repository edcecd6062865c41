/**
 * A limit on work in progress that callers share fairly: at most `total` at once in the process and
 * `perKey` for one caller. Waiting work is served callers in turn (one queue each; the caller with the
 * least work running goes first, and among equals the one served longest ago), so one caller's pile
 * of waiting calls delays only its own. Work gives up (`throttled`) after `waitMs`, or at once when
 * its caller already has `maxWaiting` waiting.
 */
import { cancelledError } from './call-scope.js';
import { ToolError } from './errors.js';

export interface FairLimits {
  total: number;
  perKey: number;
  waitMs: number;
  /** What the work is, for refusals: "package reads and writes". */
  what: string;
  /** Waiting work one caller may have (default: no limit). */
  maxWaiting?: number;
}

interface Waiter {
  start(): void;
  leave(err: unknown): void;
}

export class FairLimiter {
  private running = 0;
  private readonly perKeyRunning = new Map<string, number>();
  /** Waiting work per caller. */
  private readonly queues = new Map<string, Waiter[]>();
  /** When each caller with work running or waiting was last served (a counter). */
  private readonly served = new Map<string, number>();
  private turn = 0;

  constructor(readonly limits: FairLimits) {}

  get inProgress(): number {
    return this.running;
  }

  /** Runs `fn` once a slot is free for `key`; `signal` withdraws it while it waits. */
  async run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.slot(key, signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** A slot for `key` once one is free: the function returned frees it (once). */
  async slot(key: string, signal?: AbortSignal): Promise<() => void> {
    await this.acquire(key, signal);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.release(key);
    };
  }

  private fits(key: string): boolean {
    return this.running < this.limits.total && (this.perKeyRunning.get(key) ?? 0) < this.limits.perKey;
  }

  private take(key: string): void {
    this.running++;
    this.perKeyRunning.set(key, (this.perKeyRunning.get(key) ?? 0) + 1);
    this.served.set(key, ++this.turn);
  }

  private acquire(key: string, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(cancelledError());
    if (!this.queues.has(key) && this.fits(key)) {
      this.take(key);
      return Promise.resolve();
    }
    const mine = this.queues.get(key) ?? [];
    const { maxWaiting, waitMs, what } = this.limits;
    if (maxWaiting !== undefined && mine.length >= maxWaiting) {
      return Promise.reject(new ToolError('throttled', `${maxWaiting} of your ${what} are already waiting on this server.`, 'Retry when they are done.'));
    }
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        start: () => {
          done();
          this.take(key);
          resolve();
        },
        leave: (err) => {
          done();
          const q = this.queues.get(key);
          const at = q?.indexOf(waiter) ?? -1;
          if (at >= 0) q!.splice(at, 1);
          if (q?.length === 0) this.queues.delete(key);
          this.forget(key);
          reject(err);
        },
      };
      const onAbort = () => waiter.leave(cancelledError());
      const timer = setTimeout(
        () => waiter.leave(new ToolError('throttled', `This server is busy with other ${what}: this call waited ${Math.round(waitMs / 1000)} s for its turn.`, 'Retry in a minute.')),
        waitMs,
      );
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      mine.push(waiter);
      this.queues.set(key, mine);
    });
  }

  private release(key: string): void {
    this.running--;
    const left = (this.perKeyRunning.get(key) ?? 1) - 1;
    if (left > 0) this.perKeyRunning.set(key, left);
    else this.perKeyRunning.delete(key);
    this.forget(key);
    this.pump();
  }

  /** A caller with nothing running or waiting needs no record. */
  private forget(key: string): void {
    if (!this.perKeyRunning.has(key) && !this.queues.has(key)) this.served.delete(key);
  }

  /** Starts waiting work while it fits, the caller with the least running (then served longest ago) first. */
  private pump(): void {
    while (this.running < this.limits.total) {
      let next: string | undefined;
      let least = Infinity;
      let oldest = Infinity;
      for (const key of this.queues.keys()) {
        const mine = this.perKeyRunning.get(key) ?? 0;
        const when = this.served.get(key) ?? 0;
        if (mine < this.limits.perKey && (mine < least || (mine === least && when < oldest))) {
          next = key;
          least = mine;
          oldest = when;
        }
      }
      if (next === undefined) return;
      const q = this.queues.get(next)!;
      const w = q.shift()!;
      if (q.length === 0) this.queues.delete(next);
      w.start();
    }
  }
}
