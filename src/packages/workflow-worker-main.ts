/**
 * The worker thread that runs workflow checks (workflow-checks.ts) for workflow-worker.ts. It loads
 * only what the checks need, answers one job at a time, and is killed when a job runs past its
 * deadline or out of its small heap.
 */
import { parentPort } from 'node:worker_threads';
import type { ErrorCode } from '../core/errors.js';
import { loadCheckModules } from './workflow-checks.js';
import { runCheckJob, type CheckJob, type CheckReply } from './workflow-checks-job.js';

// Says when its modules are loaded: a job's deadline starts then, not while a cold worker starts.
void loadCheckModules().then(
  () => parentPort?.postMessage({ ready: true }),
  () => parentPort?.postMessage({ ready: true }),
);

parentPort?.on('message', (msg: { id: number; job: CheckJob }) => {
  void runCheckJob(msg.job).then(
    (value): CheckReply => ({ id: msg.id, ok: true, value }),
    (err: unknown): CheckReply => ({ id: msg.id, ok: false, error: asPlainError(err) }),
  ).then((reply) => parentPort?.postMessage(reply));
});

function asPlainError(err: unknown): Extract<CheckReply, { ok: false }>['error'] {
  const e = err as { code?: unknown; message?: unknown; hint?: unknown; name?: unknown };
  if (e && e.name === 'ToolError' && typeof e.code === 'string') {
    return { code: e.code as ErrorCode, message: String(e.message), hint: typeof e.hint === 'string' ? e.hint : undefined };
  }
  return { code: 'internal', message: err instanceof Error ? err.message : String(err), hint: undefined };
}
