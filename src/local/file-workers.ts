/**
 * Hashing and copying local files in worker threads: SHA-256 over a large folder or an install is
 * seconds of CPU, which on the event loop would hold every other call; in a few threads it runs
 * beside them, and on several cores at once (one thread hashes at about the speed of plain
 * sha256sum). A job waits for a free thread in arrival order; a cancelled call's job stops at its
 * next 1 MiB piece. Where no worker entry exists (src/ run in place by tests) jobs run in place.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { cancelledError } from '../call-scope.js';
import { Slots } from '../concurrency.js';
import { ToolError } from '../errors.js';
import { runFileJob, type FileJob, type FileResult } from './file-jobs.js';
import type { FileReply } from './file-worker-main.js';

/** Threads: one per core, at most four (a disk gains little past that). */
export const FILE_WORKERS = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));

function workerEntry(): URL | undefined {
  const ext = /\.(m?js)$/.exec(import.meta.url)?.[1];
  return ext ? new URL(`./file-worker-main.${ext}`, import.meta.url) : undefined;
}

interface Pending {
  resolve(v: FileResult): void;
  reject(e: unknown): void;
}

class FileWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly entry: URL) {}

  private spawn(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.entry, { stdout: true, stderr: true });
    w.stdout.resume();
    w.stderr.resume();
    w.on('message', (reply: FileReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) w.unref();
      if (!p) return;
      if (reply.ok) p.resolve({ ...reply.value, chunks: reply.value.chunks?.map((c) => Buffer.from(c)) });
      else p.reject(new ToolError(reply.error.code, reply.error.message, reply.error.hint));
    });
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new ToolError('internal', `A file worker stopped (${why}).`));
      this.pending.clear();
    };
    w.on('error', (err) => fail(err.message));
    w.on('exit', (code) => fail(`exit ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  run(id: number, job: FileJob, signal: AbortSignal | undefined): Promise<FileResult> {
    const w = this.spawn();
    w.ref();
    return new Promise<FileResult>((resolve, reject) => {
      const cancel = () => w.postMessage({ cancel: id });
      signal?.addEventListener('abort', cancel, { once: true });
      const done = () => signal?.removeEventListener('abort', cancel);
      this.pending.set(id, {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      w.postMessage({ id, job });
    });
  }
}

class FilePool {
  private readonly workers: FileWorker[];
  private readonly free: FileWorker[];
  private readonly slots: Slots;
  private nextId = 1;

  constructor(entry: URL, size: number) {
    this.workers = Array.from({ length: size }, () => new FileWorker(entry));
    this.free = [...this.workers];
    this.slots = new Slots(size);
  }

  run(job: FileJob, signal: AbortSignal | undefined): Promise<FileResult> {
    return this.slots.run(async () => {
      if (signal?.aborted) throw cancelledError();
      const w = this.free.pop()!;
      try {
        return await w.run(this.nextId++, job, signal);
      } finally {
        this.free.push(w);
      }
    });
  }
}

const entry = workerEntry();
let pool: FilePool | undefined;

/**
 * Files up to this size are hashed in place: a fraction of a millisecond of hashing costs less
 * than a round trip to a worker (a folder of 10,000 small files packages twice as fast).
 */
const IN_PLACE_BYTES = 256 * 1024;

/** Runs a file job in a worker thread (in place without a built worker entry, or for a small file). */
export function fileWork(job: FileJob, signal: AbortSignal | undefined): Promise<FileResult> {
  if (!entry || (job.op === 'hash' && job.size <= IN_PLACE_BYTES)) return runFileJob(job, () => signal?.aborted === true);
  pool ??= new FilePool(entry, FILE_WORKERS);
  return pool.run(job, signal);
}
