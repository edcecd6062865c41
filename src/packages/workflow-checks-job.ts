/** One workflow check as a message to the checking worker, and what it answers. */
import type { ErrorCode } from '../core/errors.js';
import { checkAgainst, schemaValidator, selectWorkflow, type SchemaSource } from './workflow-checks.js';

export type CheckJob =
  /** The workflow a push uses, from the config's text (SelectedWorkflow). */
  | { op: 'select'; text: string; where: string; bucket: string; workflow: string | null | undefined }
  /** A schema compiled, to refuse a bad one before any data is read. */
  | { op: 'schema'; schema: SchemaSource }
  /** Data checked against a schema. */
  | { op: 'check'; schema: SchemaSource; data: unknown; what: string };

export type CheckReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: ErrorCode | 'internal'; message: string; hint: string | undefined } };

export async function runCheckJob(job: CheckJob): Promise<unknown> {
  switch (job.op) {
    case 'select':
      return selectWorkflow(job.text, job.where, job.bucket, job.workflow);
    case 'schema':
      await schemaValidator(job.schema);
      return null;
    case 'check':
      await checkAgainst(job.schema, job.data, job.what);
      return null;
  }
}
