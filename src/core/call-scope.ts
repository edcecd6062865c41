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
