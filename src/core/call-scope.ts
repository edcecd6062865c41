/**
 * The scope of one tool call or resource read (AsyncLocalStorage): the caller's context and the
 * call's abort signal, which every AWS request of the call carries (aws/clients.ts); and the work
 * of one transport request, which holds the request's admission slot until it has all ended.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ToolError } from './errors.js';

/** What long work needs of the call that runs it: its cancellation and a way to tell progress. */
export interface CallHandle {
  /** Aborted when the client cancels the request or goes away. */
  signal: AbortSignal;
  /** MCP progress notification; a no-op when the client sent no progress token. */
  progress(progress: number, total?: number, message?: string): Promise<void>;
}

export interface CallScope {
  /** The caller's runtime context (context.ts types it). */
  readonly ctx: object;
  /** Aborted when the client cancels the call or goes away. */
  readonly signal: AbortSignal | undefined;
  /** Told when a service answered one of the call's requests: the call is not stuck (CallDeadline). */
  readonly answered?: (() => void) | undefined;
}

const calls = new AsyncLocalStorage<CallScope>();
const requests = new AsyncLocalStorage<RequestWork>();

/** Runs `fn` as one call; its promise is counted in the transport request's work, if any. */
export function runInCall<T>(scope: CallScope, fn: () => Promise<T>): Promise<T> {
  const running = calls.run(scope, fn);
  requests.getStore()?.track(running);
  return running;
}

/**
 * Runs `fn` outside the call in progress: requests it sends are not cancelled with the call (stopping
 * an Athena query the call started; a lookup whose answer other calls share).
 */
export function uncancelled<T>(fn: () => T): T {
  return calls.exit(fn);
}

export function callScope(): CallScope | undefined {
  return calls.getStore();
}

/** Tells the call in progress, if any, that a service answered one of its requests. */
export function noteAnswer(): void {
  calls.getStore()?.answered?.();
}

/** The abort signal of the call in progress, if it has one. */
export function callSignal(): AbortSignal | undefined {
  return calls.getStore()?.signal;
}

export const cancelledError = () => new ToolError('cancelled', 'The call was cancelled (the client cancelled it or went away).');

/** Throws `cancelled` when the call in progress was cancelled (for loops that wait on no request). */
export function throwIfCancelled(): void {
  if (calls.getStore()?.signal?.aborted) throw cancelledError();
}

/**
 * The handlers one transport request started (tool calls, resource reads). The request's admission
 * slot is held until they have all ended, not only until its socket closes: a caller that hangs up
 * must not free its slot while its work runs on.
 */
export class RequestWork {
  private pending = 0;
  private waiters: Array<() => void> = [];

  track(p: Promise<unknown>): void {
    this.pending++;
    const done = () => {
      if (--this.pending > 0) return;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    };
    p.then(done, done);
  }

  /** Resolves once no handler of the request is running. */
  idle(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** Runs a transport request's handling; the calls it starts are counted in `work`. */
export function runRequest<T>(work: RequestWork, fn: () => Promise<T>): Promise<T> {
  return requests.run(work, fn);
}

/**
 * A call's deadline: the call is stopped when it has made no progress for `ms`: no service
 * answered any of its requests (noteAnswer) and the tool reported no progress. A long write that
 * keeps moving runs on; a call stuck on a service that does not answer (a hang, a body that
 * trickles in, a connection that never opens) ends. `signal` is aborted by the caller's own signal
 * or the deadline; `expired` rejects with the timeout error when the deadline passes. One timer per
 * call, re-armed only when it fires.
 */
export class CallDeadline {
  readonly signal: AbortSignal;
  readonly expired: Promise<never>;
  private readonly controller = new AbortController();
  private last = performance.now();
  private timer: NodeJS.Timeout;
  private fire!: (err: ToolError) => void;
  private readonly onOuter: () => void;

  constructor(
    private readonly ms: number,
    private readonly outer: AbortSignal,
    private readonly error: () => ToolError,
  ) {
    this.signal = this.controller.signal;
    this.expired = new Promise<never>((_, reject) => (this.fire = reject));
    // Raced against the handler; never left unhandled when the handler wins.
    this.expired.catch(() => undefined);
    this.onOuter = () => this.controller.abort(outer.reason);
    if (outer.aborted) this.onOuter();
    else outer.addEventListener('abort', this.onOuter, { once: true });
    this.timer = setTimeout(this.check, ms);
  }

  private readonly check = () => {
    const idle = performance.now() - this.last;
    if (idle < this.ms) {
      this.timer = setTimeout(this.check, this.ms - idle);
      return;
    }
    const err = this.error();
    this.controller.abort(err);
    this.fire(err);
  };

  /** The call moved on: the deadline starts again. */
  readonly progress = (): void => {
    this.last = performance.now();
  };

  end(): void {
    clearTimeout(this.timer);
    this.outer.removeEventListener('abort', this.onOuter);
  }
}
