/**
 * A thread of the file workers (file-workers.ts): hashes and copies local files (file-jobs.ts), one
 * job at a time, stopping a job at its next piece when the main thread cancels it.
 */
import { parentPort } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import { runFileJob, type FileJob, type FileResult } from './file-jobs.js';

export type FileReply = { id: number; ok: true; value: FileResult } | { id: number; ok: false; error: { code: ErrorCode; message: string; hint: string | undefined } };

const cancelled = new Set<number>();

parentPort?.on('message', (msg: { id: number; job: FileJob } | { cancel: number }) => {
  if ('cancel' in msg) {
    cancelled.add(msg.cancel);
    return;
  }
  void runFileJob(msg.job, () => cancelled.has(msg.id))
    .then(
      (value): FileReply => ({ id: msg.id, ok: true, value }),
      (err: unknown): FileReply => ({ id: msg.id, ok: false, error: plainError(err) }),
    )
    .then((reply) => {
      cancelled.delete(msg.id);
      // Chunk digests travel as copies (small); nothing else is transferred.
      parentPort?.postMessage(reply);
    });
});

function plainError(err: unknown): Extract<FileReply, { ok: false }>['error'] {
  const e = err as { code?: unknown; message?: unknown; hint?: unknown; name?: unknown };
  if (e && e.name === 'ToolError' && typeof e.code === 'string') return { code: e.code as ErrorCode, message: String(e.message), hint: typeof e.hint === 'string' ? e.hint : undefined };
  // A file system error keeps its errno code in the message, for the caller's mapping.
  const code = typeof e?.code === 'string' ? e.code : '';
  return { code: 'internal', message: `${code ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`, hint: undefined };
}
