/**
 * How the AWS clients retry a failed request: as the SDK's standard mode does (at most 3 attempts;
 * only throttling and transient failures: 5xx, resets, timeouts; exponential backoff with full
 * jitter from 100 ms, from 500 ms after throttling, at most 20 s; S3's Retry-After honoured up to
 * 5 s past the backoff), without the SDK's client-wide retry quota.
 *
 * That quota (500 tokens, 10 per retry of a 5xx or reset, 5 per throttle) is sized for a client
 * sending one request at a time. Bulk work here sends 64 at once (concurrency.ts), so one blip of
 * S3 that failed the first attempt of each request in flight used up the quota halfway through
 * and failed a 40-entry package write whose every retry would have succeeded (the fault campaign,
 * test/faults). What bounds retries instead: 3 attempts per request, 64 requests in flight per
 * call, and the call's deadline.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { lazy } from '../core/lazy.js';

type RetryStrategy = Extract<NonNullable<S3ClientConfig['retryStrategy']>, { acquireInitialRetryToken: unknown }>;
type RetryToken = Awaited<ReturnType<RetryStrategy['acquireInitialRetryToken']>>;
type ErrorInfo = Parameters<RetryStrategy['refreshRetryTokenForRetry']>[1];

const BASE_DELAY_MS = 100;
const THROTTLING_BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;
/** How far past the backoff a Retry-After may push a retry (the SDK's own bound). */
const RETRY_AFTER_SLACK_MS = 5_000;

class Attempt implements RetryToken {
  readonly $retryLog = { acquisitionDelay: 0 };
  constructor(private readonly count: number) {}
  getRetryCount(): number {
    return this.count;
  }
  /** The wait happened in refreshRetryTokenForRetry already. */
  getRetryDelay(): number {
    return 0;
  }
}

export class BoundedRetries implements RetryStrategy {
  readonly mode = 'standard';

  constructor(private readonly maxAttempts = 3) {}

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return new Attempt(0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: ErrorInfo): Promise<RetryToken> {
    const attempts = token.getRetryCount() + 1;
    const retryable = info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT';
    if (!retryable || attempts >= this.maxAttempts) throw new Error('No retry token available');
    const base = info.errorType === 'THROTTLING' ? THROTTLING_BASE_DELAY_MS : BASE_DELAY_MS;
    let delay = Math.floor(Math.min(MAX_DELAY_MS, Math.random() * 2 ** token.getRetryCount() * base));
    if (info.retryAfterHint instanceof Date) delay = Math.max(delay, Math.min(info.retryAfterHint.getTime() - Date.now(), delay + RETRY_AFTER_SLACK_MS));
    await new Promise((resolve) => setTimeout(resolve, delay));
    const next = new Attempt(attempts);
    next.$retryLog.acquisitionDelay = delay;
    return next;
  }

  recordSuccess(): void {}
}

type HandlerModule = typeof import('@smithy/node-http-handler');
type Handle = InstanceType<HandlerModule['NodeHttpHandler']>['handle'];
export type HandlerOptions = NonNullable<ConstructorParameters<HandlerModule['NodeHttpHandler']>[0]>;

/** The attempt number the SDK's retry middleware wrote into the request (`amz-sdk-request: attempt=2; max=3`). */
function attemptOf(headers: Record<string, string>): number {
  const m = /attempt=(\d+)/.exec(headers['amz-sdk-request'] ?? '');
  return m ? Number(m[1]) : 1;
}

/**
 * The SDK's HTTP handler, but a retry goes out on a new connection, as AWS advises for S3 ("When
 * you retry a request, we recommend using a new connection"). A server that resets a connection
 * just after a complete answer leaves a dead socket in the keep-alive pool, and Node hands out the
 * most recently freed socket first: when a blip reset every connection in flight, each retry took
 * one of those and failed again, and 3 attempts were spent on one fault (the fault campaign's
 * s3-midway-first round, 9 of 12 runs: a 200-entry package write failed with ECONNRESET).
 * Retries are few, so their extra handshake costs little.
 */
export const loadNewConnectionRetries = lazy(async () => {
  const [{ NodeHttpHandler }, http, https] = await Promise.all([import('@smithy/node-http-handler'), import('node:http'), import('node:https')]);
  return class NewConnectionRetries extends NodeHttpHandler {
    private retries: InstanceType<typeof NodeHttpHandler> | undefined;
    constructor(private readonly options: HandlerOptions = {}) {
      super(options);
    }
    override handle(request: Parameters<Handle>[0], options: Parameters<Handle>[1] = {}): ReturnType<Handle> {
      if (attemptOf(request.headers) <= 1) return super.handle(request, options);
      this.retries ??= new NodeHttpHandler({
        ...this.options,
        httpAgent: new http.Agent({ keepAlive: false }),
        httpsAgent: new https.Agent({ keepAlive: false }),
      });
      return this.retries.handle(request, options);
    }
  };
});
