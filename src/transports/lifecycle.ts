/**
 * The HTTP server's life behind a load balancer: connection timeouts that let the balancer close
 * idle connections first, liveness (/health) distinct from readiness (/ready), and a drain on
 * SIGTERM that loses no request.
 *
 * - Keep-alive: Node closes an idle connection after 5 s by default; a balancer that keeps idle
 *   connections longer (AWS ALB: 60 s) may send a request on one just as the server closes it, and
 *   the caller gets a 502. The server keeps them longer than the balancer (MCP_KEEP_ALIVE_TIMEOUT,
 *   default 65 s), and its headers timeout comes after that, as Node's docs ask (issue 27363).
 * - Drain (SIGTERM, SIGINT): readiness turns false at once; after MCP_DRAIN_DELAY (default 0: ECS
 *   deregisters a task from its target groups before it sends SIGTERM; on Kubernetes give the
 *   endpoints a few seconds) the listener closes, idle connections close, a request that still
 *   arrives on an open connection is answered with `Connection: close`, and the process exits 0
 *   once every request in flight has been answered and its handler has returned, or when
 *   MCP_DRAIN_TIMEOUT (default 25 s, under ECS's 30 s stopTimeout) has passed since the signal.
 */
import type http from 'node:http';
import type { Config } from '../config.js';
import type { Logger } from '../core/log.js';

/** Requests that take this long to arrive are cut whatever the keep-alive setting (the body has its own 10 s). */
const MIN_REQUEST_TIMEOUT_MS = 30_000;

/** Keep-alive, headers and request timeouts, in the order Node needs them (headers <= request). */
export function applyTimeouts(server: http.Server, settings: Config['http']): void {
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;
  server.headersTimeout = settings.headersTimeoutMs;
  server.requestTimeout = Math.max(MIN_REQUEST_TIMEOUT_MS, settings.headersTimeoutMs);
}

export type Exit = (code: number) => void;

interface Tracked {
  res: http.ServerResponse;
  /** The response has closed (answered, or the client went away). */
  closed: boolean;
  /** The handler's promise has settled (its work is over). */
  settled: boolean;
}

export class Lifecycle {
  private readonly inFlight = new Set<Tracked>();
  private state: 'serving' | 'draining' | 'closed' = 'serving';
  private drained: (() => void) | undefined;
  private readonly servers: http.Server[] = [];
  private counters: (() => Record<string, unknown>) | undefined;

  constructor(
    private readonly settings: Pick<Config['http'], 'drainTimeoutMs' | 'drainDelayMs'>,
    private readonly logger: Logger,
    private readonly exit: Exit = (code) => process.exit(code),
  ) {}

  get draining(): boolean {
    return this.state !== 'serving';
  }

  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  /** Servers closed on drain: the MCP listener first, then any other (metrics); `counters` are logged when draining. */
  manage(server: http.Server, counters?: () => Record<string, unknown>): void {
    this.servers.push(server);
    this.counters ??= counters;
  }

  /**
   * Counts a request until its response has closed and `work` (its handler) has settled. While
   * draining, its answer says `Connection: close`, so the client opens its next connection elsewhere.
   */
  track(res: http.ServerResponse, work: Promise<unknown>): void {
    const t: Tracked = { res, closed: false, settled: false };
    this.inFlight.add(t);
    if (this.draining) this.closeAfter(res);
    const done = () => {
      if (!t.closed || !t.settled) return;
      this.inFlight.delete(t);
      if (this.inFlight.size === 0) this.drained?.();
    };
    res.once('close', () => {
      t.closed = true;
      done();
    });
    void work.finally(() => {
      t.settled = true;
      done();
    });
  }

  /** Liveness: the process is up and answering (also while draining: it must not be killed for that). */
  health(): { state: 'serving' | 'draining' } {
    return { state: this.draining ? 'draining' : 'serving' };
  }

  /** Readiness: whether a balancer should send new requests here. */
  ready(): boolean {
    return !this.draining;
  }

  /** SIGTERM and SIGINT drain; a second signal exits at once. */
  installSignalHandlers(): void {
    const on = (signal: NodeJS.Signals) => {
      if (this.draining) {
        this.logger.warning('Second signal while draining; exiting now', { signal, in_flight: this.inFlight.size });
        return this.exit(0);
      }
      void this.drain(signal);
    };
    process.on('SIGTERM', () => on('SIGTERM'));
    process.on('SIGINT', () => on('SIGINT'));
  }

  /** Stops taking work, waits for what is in flight (at most the drain timeout), then exits 0. */
  async drain(reason: string): Promise<void> {
    if (this.draining) return;
    this.state = 'draining';
    const started = Date.now();
    const deadline = started + this.settings.drainTimeoutMs;
    this.logger.notice('Draining: readiness is now false', {
      reason,
      in_flight: this.inFlight.size,
      delay_ms: this.settings.drainDelayMs,
      timeout_ms: this.settings.drainTimeoutMs,
      ...this.counters?.(),
    });
    for (const t of this.inFlight) this.closeAfter(t.res);
    if (this.settings.drainDelayMs > 0) await sleep(Math.min(this.settings.drainDelayMs, deadline - Date.now()));

    this.state = 'closed';
    for (const server of this.servers) {
      server.close();
      server.closeIdleConnections();
    }
    const finished = this.inFlight.size === 0 || (await this.untilDrained(deadline - Date.now()));
    if (finished) {
      this.logger.notice('Drained: every request in flight was answered; exiting', { ms: Date.now() - started });
    } else {
      this.logger.warning('Drain timeout: exiting with requests still in flight', {
        in_flight: this.inFlight.size,
        timeout_ms: this.settings.drainTimeoutMs,
      });
    }
    this.exit(0);
  }

  private untilDrained(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, ms));
      this.drained = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  /** The connection of `res` ends with its answer: said in the headers when still possible, else by closing after it. */
  private closeAfter(res: http.ServerResponse): void {
    if (!res.headersSent) res.setHeader('connection', 'close');
    else res.once('finish', () => res.socket?.end());
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
