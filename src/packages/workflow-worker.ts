/**
 * Runs workflow checks (YAML configs, JSON Schemas: what a bucket's writer put there) in one worker
 * thread, off the event loop every caller shares. Each job has a deadline and the worker a small
 * heap: a job past either is refused and the worker replaced, so no config or schema, however it
 * was built, holds the process for longer than that. Callers take turns (one queue each, served in
 * rotation), so one caller's slow checks delay only its own.
 */
import { Worker } from 'node:worker_threads';
import { cancelledError } from '../call-scope.js';
import { ToolError } from '../errors.js';
import { runCheckJob, type CheckJob, type CheckReply } from './workflow-checks-job.js';

/** How long one check may run in the worker. */
export const CHECK_DEADLINE_MS = 2_000;
/** How long a check may wait for its turn before it is refused (the server is busy checking). */
export const CHECK_WAIT_MS = 10_000;
/** Checks one caller may have waiting at once. */
export const CHECKS_QUEUED_PER_CALLER = 4;
/** The worker's heap: configs and schemas are small, and a hostile one must not grow it far. */
const WORKER_HEAP_MB = 64;

interface Queued {
  job: CheckJob;
  caller: string;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** Refuses the job once it waited too long, or its call was cancelled. */
  leave(): void;
}

/** Where the worker's entry is: next to this module, built (dist/*.js, bundle chunks/*.mjs). */
function workerEntry(): URL | undefined {
  const ext = /\.(m?js)$/.exec(import.meta.url)?.[1];
  return ext ? new URL(`./workflow-worker-main.${ext}`, import.meta.url) : undefined;
}

const what = (job: CheckJob) =>
  job.op === 'config' ? job.where : job.op === 'schema' ? `Schema "${job.schema.id}" at ${job.schema.url}` : `${job.what} (schema "${job.schema.id}")`;

export class CheckWorker {
  private worker: Worker | undefined;
  private running: { id: number; item: Queued; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  /** Waiting jobs per caller, callers in the order they are served next. */
  private readonly queues = new Map<string, Queued[]>();
  readonly stats = { checks: 0, deadlines: 0, outOfMemory: 0, refusedBusy: 0 };

  constructor(
    private readonly entry: URL | undefined = workerEntry(),
    private readonly deadlineMs = CHECK_DEADLINE_MS,
    private readonly waitMs = CHECK_WAIT_MS,
  ) {}

  /** Runs `job` for `caller` in the worker; `signal` withdraws it while it waits. */
  run(caller: string, job: CheckJob, signal?: AbortSignal): Promise<unknown> {
    // Unbuilt sources (tests running src/ in process) have no worker entry to start: run in place.
    if (!this.entry) return runCheckJob(job);
    if (signal?.aborted) return Promise.reject(cancelledError());
    const mine = this.queues.get(caller) ?? [];
    if (mine.length >= CHECKS_QUEUED_PER_CALLER) {
      this.stats.refusedBusy++;
      return Promise.reject(new ToolError('throttled', `${CHECKS_QUEUED_PER_CALLER} workflow checks of yours are already waiting on this server.`, 'Retry when they are done.'));
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => item.leave();
      const timer = setTimeout(() => {
        item.leave();
      }, this.waitMs);
      timer.unref();
      const item: Queued = {
        job,
        caller,
        resolve: (v) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        leave: () => {
          const q = this.queues.get(caller);
          const at = q?.indexOf(item) ?? -1;
          if (at < 0) return; // running or done: it ends within its deadline
          q!.splice(at, 1);
          if (q!.length === 0) this.queues.delete(caller);
          if (signal?.aborted) return item.reject(cancelledError());
          this.stats.refusedBusy++;
          item.reject(new ToolError('throttled', `The server is busy checking other packages' workflows; ${what(job)} waited ${Math.round(this.waitMs / 1000)} s.`, 'Retry in a minute.'));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      mine.push(item);
      this.queues.set(caller, mine);
      this.pump();
    });
  }

  /** Starts the next job, taking callers in turn. */
  private pump(): void {
    if (this.running) return;
    const first = this.queues.entries().next();
    if (first.done) return;
    const [caller, q] = first.value;
    const item = q.shift()!;
    // This caller goes to the back of the rotation.
    this.queues.delete(caller);
    if (q.length) this.queues.set(caller, q);
    const worker = this.spawn();
    const id = this.nextId++;
    const timer = setTimeout(() => this.fail(worker, 'deadline'), this.deadlineMs);
    this.running = { id, item, timer };
    this.stats.checks++;
    worker.ref();
    worker.postMessage({ id, job: item.job });
  }

  private spawn(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.entry!, {
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: 16 },
      // Never on the process's stdout (in stdio mode that is the MCP protocol).
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.resume();
    worker.on('message', (reply: CheckReply) => this.answer(worker, reply));
    worker.on('error', (err: Error & { code?: string }) => this.fail(worker, err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'crash'));
    worker.on('exit', () => this.fail(worker, 'crash'));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private answer(worker: Worker, reply: CheckReply): void {
    const r = this.running;
    if (worker !== this.worker || !r || r.id !== reply.id) return;
    clearTimeout(r.timer);
    this.running = undefined;
    worker.unref();
    if (reply.ok) r.item.resolve(reply.value);
    else r.item.reject(new ToolError(reply.error.code === 'internal' ? 'internal' : reply.error.code, reply.error.message, reply.error.hint));
    this.pump();
  }

  /** The worker ran past the deadline, out of memory, or died: the job is refused, the worker replaced. */
  private fail(worker: Worker, why: 'deadline' | 'memory' | 'crash'): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    void worker.terminate();
    const r = this.running;
    this.running = undefined;
    if (r) {
      clearTimeout(r.timer);
      const subject = what(r.item.job);
      if (why === 'deadline') {
        this.stats.deadlines++;
        r.item.reject(new ToolError('too_large', `Checking ${subject} took longer than ${this.deadlineMs / 1000} s, so it was stopped.`, 'Simplify the workflow config or schema (quilt3 configs and schemas are small), or check less data at once.'));
      } else if (why === 'memory') {
        this.stats.outOfMemory++;
        r.item.reject(new ToolError('too_large', `Checking ${subject} needed more than the ${WORKER_HEAP_MB} MiB of memory workflow checks may take, so it was stopped.`, 'Simplify the workflow config or schema, or check less data at once.'));
      } else {
        r.item.reject(new ToolError('internal', `The workflow checker stopped while checking ${subject}.`, 'Retry; if it keeps happening, this is a bug in quilt-mcp.'));
      }
    }
    this.pump();
  }
}

/** The process's checker. */
export const workflowChecks = new CheckWorker();
