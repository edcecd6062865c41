/**
 * Runs workflow checks (YAML configs, JSON Schemas: what a bucket's writer put there) in one worker
 * thread, off the event loop every caller shares. Each job has a deadline and the worker a small
 * heap: a job past either is refused and the worker replaced, so no config or schema, however it
 * was built, holds the process for longer than that. Callers take turns (fair-limiter.ts), so one
 * caller's slow checks delay only its own.
 */
import { Worker } from 'node:worker_threads';
import { ToolError } from '../core/errors.js';
import { FairLimiter } from '../core/fair-limiter.js';
import { runCheckJob, type CheckJob, type CheckReply } from './workflow-checks-job.js';

/** How long one check may run in the worker. */
export const CHECK_DEADLINE_MS = 2_000;
/** How long a check may wait for its turn before it is refused (the server is busy checking). */
export const CHECK_WAIT_MS = 10_000;
/** Checks one caller may have waiting at once. */
export const CHECKS_QUEUED_PER_CALLER = 4;
/**
 * How long a new worker may take to start and load its modules. Not counted in a check's deadline:
 * a cold start on a busy machine is not the caller's work.
 */
const WORKER_START_MS = 30_000;
/** The worker's heap: configs and schemas are small, and a hostile one must not grow it far. */
const WORKER_HEAP_MB = 64;

/** Where the worker's entry is: next to this module, built (dist/*.js, bundle chunks/*.mjs). */
function workerEntry(): URL | undefined {
  const ext = /\.(m?js)$/.exec(import.meta.url)?.[1];
  return ext ? new URL(`./workflow-worker-main.${ext}`, import.meta.url) : undefined;
}

const what = (job: CheckJob) =>
  job.op === 'select' ? job.where : job.op === 'schema' ? `Schema "${job.schema.id}" at ${job.schema.url}` : `${job.what} (schema "${job.schema.id}")`;

export class CheckWorker {
  private worker: Worker | undefined;
  /** Whether the current worker has loaded its modules (it says so once). */
  private ready = false;
  /** Starts the running job's deadline once the worker is ready. */
  private onReady: (() => void) | undefined;
  private running: { id: number; resolve(v: unknown): void; reject(e: unknown): void; job: CheckJob; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  /** One check at a time; callers take turns, and one caller may have a few waiting. */
  private readonly turns: FairLimiter;
  readonly stats = { checks: 0, deadlines: 0, outOfMemory: 0 };

  constructor(
    private readonly entry: URL | undefined = workerEntry(),
    private readonly deadlineMs = CHECK_DEADLINE_MS,
    waitMs = CHECK_WAIT_MS,
  ) {
    this.turns = new FairLimiter({ total: 1, perKey: 1, waitMs, what: 'workflow checks', maxWaiting: CHECKS_QUEUED_PER_CALLER });
  }

  /** Runs `job` for `caller` in the worker; `signal` withdraws it while it waits. */
  run(caller: string, job: CheckJob, signal?: AbortSignal): Promise<unknown> {
    // Unbuilt sources (tests running src/ in process) have no worker entry to start: run in place.
    if (!this.entry) return runCheckJob(job);
    return this.turns.run(caller, () => this.dispatch(job), signal);
  }

  /** The job in the worker, answered within the deadline or refused. */
  private dispatch(job: CheckJob): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const worker = this.spawn();
      const id = this.nextId++;
      const startDeadline = () => {
        if (this.running !== running) return;
        clearTimeout(running.timer);
        running.timer = setTimeout(() => this.fail(worker, 'deadline'), this.deadlineMs);
      };
      const running = { id, resolve, reject, job, timer: setTimeout(() => this.fail(worker, 'crash'), WORKER_START_MS) };
      this.running = running;
      if (this.ready) startDeadline();
      else this.onReady = startDeadline;
      this.stats.checks++;
      worker.ref();
      worker.postMessage({ id, job });
    });
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
    this.ready = false;
    worker.on('message', (reply: CheckReply | { ready: true }) => {
      if (!('ready' in reply)) return this.answer(worker, reply);
      if (worker !== this.worker) return;
      this.ready = true;
      this.onReady?.();
      this.onReady = undefined;
    });
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
    this.onReady = undefined;
    worker.unref();
    if (reply.ok) r.resolve(reply.value);
    else r.reject(new ToolError(reply.error.code, reply.error.message, reply.error.hint));
  }

  /** The worker ran past the deadline, out of memory, or died: the job is refused, the worker replaced. */
  private fail(worker: Worker, why: 'deadline' | 'memory' | 'crash'): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    this.onReady = undefined;
    void worker.terminate();
    const r = this.running;
    this.running = undefined;
    if (!r) return;
    clearTimeout(r.timer);
    const subject = what(r.job);
    if (why === 'deadline') {
      this.stats.deadlines++;
      r.reject(new ToolError('too_large', `Checking ${subject} took longer than ${this.deadlineMs / 1000} s, so it was stopped.`, 'Simplify the workflow config or schema (quilt3 configs and schemas are small), or check less data at once.'));
    } else if (why === 'memory') {
      this.stats.outOfMemory++;
      r.reject(new ToolError('too_large', `Checking ${subject} needed more than the ${WORKER_HEAP_MB} MiB of memory workflow checks may take, so it was stopped.`, 'Simplify the workflow config or schema, or check less data at once.'));
    } else {
      r.reject(new ToolError('internal', `The workflow checker stopped while checking ${subject}.`, 'Retry; if it keeps happening, this is a bug in quilt-mcp.'));
    }
  }
}

/** The process's checker. */
export const workflowChecks = new CheckWorker();
