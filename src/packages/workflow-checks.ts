/**
 * The checks of a bucket's workflow that read what its writer put there: the config's YAML and the
 * JSON Schemas (draft-07, via ajv) that package metadata and entries must pass. In JWT mode that
 * writer may be a hostile tenant, and a YAML parser or a schema keyword can cost far more than its
 * input's size suggests (a YAML map of many short keys, `uniqueItems` over many arrays), so these run
 * in a worker thread with a deadline (workflow-worker.ts), never on the event loop every tenant
 * shares. This module is what the worker runs; it holds no state but its caches.
 */
import { createHash } from 'node:crypto';
import type { AnySchema, ValidateFunction } from 'ajv';
import { ToolError } from '../core/errors.js';
import { lazy } from '../core/lazy.js';
import { Lru } from '../core/lru.js';
import { compileTenantRegex, newTenantAjv, withRegexBudget } from '../core/patterns.js';

const loadYaml = lazy(() => import('yaml'));

/**
 * Largest workflow config and schema read. quilt3's are a few kilobytes; these caps leave room for
 * generated ones while bounding what one check may parse.
 */
/**
 * Loads what checks use (YAML, Ajv, RE2) and runs Ajv's code generation once, so the checking worker
 * can start a job's deadline after: a cold start is not the caller's work.
 */
export async function loadCheckModules(): Promise<void> {
  const [, ajv] = await Promise.all([loadYaml(), newTenantAjv({ strict: false, allErrors: false }), compileTenantRegex('a', 'warm-up')]);
  ajv.compile({ type: 'object', properties: { a: { type: 'string', pattern: 'a' } } })({ a: 'a' });
}

export const MAX_CONFIG_BYTES = 256 * 1024;
export const MAX_SCHEMA_BYTES = 256 * 1024;

/** Regex matching one check (metadata, or all entries) may take before it stops with too_large. */
const CHECK_REGEX_MS = 1000;

const kib = (bytes: number) => `${bytes / 1024} KiB`;

export interface WorkflowSpec {
  name?: string;
  is_message_required?: boolean;
  handle_pattern?: string;
  metadata_schema?: string;
  entries_schema?: string;
}

export interface WorkflowConfig {
  version: string | { base: string };
  is_workflow_required?: boolean;
  default_workflow?: string;
  workflows: Record<string, WorkflowSpec>;
  schemas?: Record<string, { url: string }>;
}

/** A failed workflow check, in words a person can act on. */
export const workflowFailure = (msg: string, hint?: string) => new ToolError('invalid_input', `Workflow check failed: ${msg}`, hint);

/** A config's workflow ids for a message: a few, and how many more (a config may hold thousands). */
const listIds = (ids: readonly string[]) => (ids.length > 20 ? `${ids.slice(0, 20).join(', ')} and ${ids.length - 20} more` : ids.join(', '));

/** The workflow a push uses, as the worker hands it back: small, whatever the config's size. */
export interface SelectedWorkflow {
  /** null: none (allowed by the config). */
  id: string | null;
  spec: WorkflowSpec;
  /** The URLs of the schemas the spec names. */
  schemaUrls: Record<string, string>;
}

const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

/**
 * The bucket's workflow for a push, from its config's text: `workflow` undefined = the config's
 * default; null = none (allowed only when the config does not require one).
 */
export async function selectWorkflow(text: string, where: string, bucket: string, workflow: string | null | undefined): Promise<SelectedWorkflow> {
  const config = await parseConfigText(text, where);
  const id = workflow === undefined ? (str(config.default_workflow) ?? null) : workflow;
  const ids = Object.keys(config.workflows);
  let raw: Record<string, unknown> = {};
  if (id === null) {
    if (config.is_workflow_required ?? true) {
      throw workflowFailure(`${bucket} requires a workflow, and none was given.`, `Pass workflow as one of: ${listIds(ids)}.`);
    }
  } else if (!Object.hasOwn(config.workflows, id)) {
    throw workflowFailure(`${bucket} has no workflow "${id}".`, `Use one of: ${listIds(ids)}.`);
  } else {
    const w = config.workflows[id] as unknown;
    raw = w && typeof w === 'object' ? (w as Record<string, unknown>) : {};
  }
  // Only the fields a check reads, typed: the rest of a config stays in the worker.
  const spec: WorkflowSpec = {};
  if (str(raw.name) !== undefined) spec.name = str(raw.name);
  if (raw.is_message_required) spec.is_message_required = true;
  if (str(raw.handle_pattern) !== undefined) spec.handle_pattern = str(raw.handle_pattern);
  if (str(raw.metadata_schema) !== undefined) spec.metadata_schema = str(raw.metadata_schema);
  if (str(raw.entries_schema) !== undefined) spec.entries_schema = str(raw.entries_schema);
  const schemaUrls: Record<string, string> = {};
  for (const sid of [spec.metadata_schema, spec.entries_schema]) {
    if (sid === undefined || Object.hasOwn(schemaUrls, sid)) continue;
    const url = str((config.schemas?.[sid] as { url?: unknown } | undefined)?.url);
    if (!url) throw new ToolError('upstream_error', `The workflows config names schema "${sid}" but has no URL for it in "schemas".`);
    schemaUrls[sid] = url;
  }
  return { id, spec, schemaUrls };
}

/** The config's text as a version 1 workflows config; `where` names it in errors. */
export async function parseConfigText(text: string, where: string): Promise<WorkflowConfig> {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONFIG_BYTES) {
    throw new ToolError(
      'too_large',
      `${where} is larger than ${kib(MAX_CONFIG_BYTES)}; a workflows config is a few kilobytes, so it was not read.`,
      "Fix the bucket's workflows config.",
    );
  }
  const { parse } = await loadYaml();
  let raw: unknown;
  try {
    // As PyYAML (quilt3's yaml.safe_load): a repeated key takes the last value. The library's
    // duplicate check is also quadratic in the number of keys.
    raw = parse(text, { uniqueKeys: false });
  } catch {
    throw new ToolError('upstream_error', `${where} is not valid YAML.`, "Fix the bucket's workflows config.");
  }
  const c = raw as Partial<WorkflowConfig> | null;
  const version = typeof c?.version === 'object' ? c.version?.base : c?.version;
  if (!c || typeof c.workflows !== 'object' || c.workflows === null || typeof version !== 'string' || Number.parseInt(version, 10) !== 1) {
    throw new ToolError('upstream_error', `${where} is not a version 1 workflows config with "workflows".`);
  }
  return c as WorkflowConfig;
}

/**
 * Compiled schemas by the sha256 of their canonical text. Each was compiled by an Ajv of its own,
 * so one tenant's `$id` never meets another's ("schema with key or id already exists") and an
 * evicted entry frees its Ajv. Equal text may share a validator: it is a pure function of the text.
 */
const validators = new Lru<string, Promise<ValidateFunction>>(64);

export const schemaCacheStats = () => validators.stats();

/** The validator of a parsed schema; refused patterns throw the ToolError that names them. */
export async function compileSchema(schema: AnySchema): Promise<ValidateFunction> {
  const key = createHash('sha256').update(JSON.stringify(schema)).digest('hex');
  let v = validators.get(key);
  if (!v) {
    v = newTenantAjv({ strict: false, allErrors: false }).then((ajv) => ajv.compile(schema));
    validators.set(key, v);
    // A failed compile is not kept: it would answer the same error, but hold a slot.
    v.catch(() => validators.delete(key));
  }
  return v;
}

/** Parses a schema's text, refusing what quilt3 refuses ($ref) and what would pass everything ($async). */
export function parseSchemaText(text: string, where: string): AnySchema {
  if (Buffer.byteLength(text, 'utf8') > MAX_SCHEMA_BYTES) {
    throw new ToolError('too_large', `${where} is larger than ${kib(MAX_SCHEMA_BYTES)}, more than a metadata schema needs, so it was not used.`, 'Use a smaller schema.');
  }
  let async = false;
  let schema: unknown;
  try {
    schema = JSON.parse(text, (k, v: unknown) => {
      if (k === '$ref') throw new Error('$ref is not supported');
      // Ajv runs a schema with a truthy $async asynchronously: its result, a Promise, is always truthy.
      if (k === '$async' && v) async = true;
      return v;
    });
  } catch (err) {
    throw new ToolError('upstream_error', `${where} is not usable JSON: ${(err as Error).message}.`);
  }
  if (async) {
    throw new ToolError('upstream_error', `${where} uses "$async", which is not supported: workflow schemas are checked synchronously.`, 'Remove "$async" from the schema.');
  }
  if (typeof schema !== 'object' && typeof schema !== 'boolean') {
    throw new ToolError('upstream_error', `${where} is not a JSON Schema (an object or a boolean).`);
  }
  return schema as AnySchema;
}

/** A schema as read from the bucket: its text, where it was read, and its id in the config. */
export interface SchemaSource {
  id: string;
  url: string;
  text: string;
}

/** The validator of a schema read from a bucket, checked as quilt3 checks it (draft-07 only). */
export async function schemaValidator(s: SchemaSource): Promise<ValidateFunction> {
  const schema = parseSchemaText(s.text, `Schema "${s.id}" at ${s.url}`);
  const meta = (schema as { $schema?: unknown } | null)?.$schema;
  if (meta !== undefined && meta !== 'http://json-schema.org/draft-07/schema#') {
    throw new ToolError('upstream_error', `Schema "${s.id}" uses the meta-schema ${String(meta)}; quilt3 supports only draft-07.`);
  }
  try {
    return await compileSchema(schema);
  } catch (err) {
    if (err instanceof ToolError) throw new ToolError(err.code, `Schema "${s.id}" at ${s.url}: ${err.message}`, err.hint);
    throw new ToolError('upstream_error', `Schema "${s.id}" is not a valid JSON Schema: ${(err as Error).message}.`);
  }
}

/** Checks `data` against the schema; throws the workflow failure that names the first error. */
export async function checkAgainst(s: SchemaSource, data: unknown, what: string): Promise<void> {
  const validate = await schemaValidator(s);
  let ok: boolean;
  try {
    // `=== true`: a Promise (an async validator) must never count as a pass.
    ok = withRegexBudget(CHECK_REGEX_MS, () => validate(data) === true);
  } catch (err) {
    if (err instanceof ToolError) throw new ToolError(err.code, `Workflow check failed: ${what}: ${err.message}`, err.hint);
    throw err;
  }
  if (ok) return;
  const e = validate.errors?.[0];
  throw new ToolError('invalid_input', `Workflow check failed: ${what} failed validation: ${e ? `${e.instancePath || '(root)'} ${e.message ?? ''}`.trim() : 'invalid'}.`);
}
