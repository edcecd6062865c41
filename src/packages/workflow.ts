/**
 * Bucket workflows (`.quilt/workflows/config.yml`), checked as quilt3 checks them before a push:
 * the workflow chosen (or the default), a required message, the name's handle pattern, and the
 * JSON Schemas (draft-07) of package metadata and entries. What passes is recorded in the
 * manifest header as quilt3 records it: `{id, config, schemas?}`.
 */
import { createHash } from 'node:crypto';
import type { AnySchema, ValidateFunction } from 'ajv';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { lazy } from '../lazy.js';
import { Lru } from '../lru.js';
import { allInOrder } from '../concurrency.js';
import { compileTenantRegex, newTenantAjv, withRegexBudget, type Matcher } from '../patterns.js';
import { formatPhysicalKey, parsePhysicalKey } from './physical-keys.js';
import type { ManifestEntry } from './manifest.js';
import { compareWalkOrder } from './manifest.js';
import { toPlain, type PyJson } from './pyjson.js';
import { getText } from './registry.js';

export const WORKFLOW_CONFIG = '.quilt/workflows/config.yml';

// Loaded on first use, not at startup: only package writes to buckets with workflows need them
// (ajv and re2js load the same way, in patterns.ts).
const loadYaml = lazy(() => import('yaml'));

export const MAX_SCHEMA_BYTES = 1024 * 1024;
/** Regex matching one check (metadata, or all entries) may take before it stops with too_large. */
const CHECK_REGEX_MS = 1000;

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
    throw new ToolError('upstream_error', `${where} is larger than ${MAX_SCHEMA_BYTES / 1024 / 1024} MiB.`, 'Use a smaller schema.');
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

interface WorkflowSpec {
  name?: string;
  is_message_required?: boolean;
  handle_pattern?: string;
  metadata_schema?: string;
  entries_schema?: string;
}

interface Config {
  version: string | { base: string };
  is_workflow_required?: boolean;
  default_workflow?: string;
  workflows: Record<string, WorkflowSpec>;
  schemas?: Record<string, { url: string }>;
}

export interface WorkflowCheck {
  /** Checks that need no data: message, name, package metadata. */
  before(args: { name: string; message: string | null | undefined; userMeta: PyJson | undefined }): void;
  /** Checks of the entries (logical key and size, in walk order). */
  after(entries: readonly Pick<ManifestEntry, 'logical_key' | 'size'>[]): void;
  /** Whether `after` checks anything (else callers need not collect the entries). */
  checksEntries: boolean;
  /** What the manifest header records, or undefined when the bucket has no workflows. */
  record: { [k: string]: PyJson } | undefined;
}

const fail = (msg: string, hint?: string) => new ToolError('invalid_input', `Workflow check failed: ${msg}`, hint);

async function parseConfig(text: string, bucket: string): Promise<Config> {
  const { parse } = await loadYaml();
  let raw: unknown;
  try {
    raw = parse(text);
  } catch {
    throw new ToolError('upstream_error', `s3://${bucket}/${WORKFLOW_CONFIG} is not valid YAML.`, 'Fix the bucket\'s workflows config.');
  }
  const c = raw as Partial<Config> | null;
  const version = typeof c?.version === 'object' ? c.version?.base : c?.version;
  if (!c || typeof c.workflows !== 'object' || c.workflows === null || typeof version !== 'string' || Number.parseInt(version, 10) !== 1) {
    throw new ToolError('upstream_error', `s3://${bucket}/${WORKFLOW_CONFIG} is not a version 1 workflows config with "workflows".`);
  }
  return c as Config;
}

async function loadSchema(ctx: RuntimeContext, config: Config, id: string): Promise<{ validate: ValidateFunction; pk: string }> {
  const url = config.schemas?.[id]?.url;
  if (!url) throw new ToolError('upstream_error', `The workflows config names schema "${id}" but has no URL for it in "schemas".`);
  const loc = parsePhysicalKey(url);
  const obj = await getText(ctx, loc.bucket, loc.key);
  if (!obj) throw new ToolError('upstream_error', `Could not load schema "${id}": ${url} does not exist.`);
  const schema = parseSchemaText(obj.text, `Schema "${id}" at ${url}`);
  const meta = (schema as { $schema?: unknown } | null)?.$schema;
  if (meta !== undefined && meta !== 'http://json-schema.org/draft-07/schema#') {
    throw new ToolError('upstream_error', `Schema "${id}" uses the meta-schema ${String(meta)}; quilt3 supports only draft-07.`);
  }
  try {
    return { validate: await compileSchema(schema), pk: formatPhysicalKey({ ...loc, versionId: loc.versionId ?? obj.versionId }) };
  } catch (err) {
    if (err instanceof ToolError) throw new ToolError(err.code, `Schema "${id}" at ${url}: ${err.message}`, err.hint);
    throw new ToolError('upstream_error', `Schema "${id}" is not a valid JSON Schema: ${(err as Error).message}.`);
  }
}

function check(validate: ValidateFunction, data: unknown, what: string) {
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
  throw fail(`${what} failed validation: ${e ? `${e.instancePath || '(root)'} ${e.message ?? ''}`.trim() : 'invalid'}.`);
}

/**
 * The bucket's workflow for this push. `workflow` undefined = the config's default; null = none
 * (allowed only when the config does not require one).
 */
export async function loadWorkflow(ctx: RuntimeContext, bucket: string, workflow: string | null | undefined): Promise<WorkflowCheck> {
  const obj = await getText(ctx, bucket, WORKFLOW_CONFIG);
  if (!obj) {
    if (typeof workflow === 'string') {
      throw fail(`workflow "${workflow}" was given, but ${bucket} has no workflows config (${WORKFLOW_CONFIG}).`, 'Omit workflow.');
    }
    return { before: () => undefined, after: () => undefined, checksEntries: false, record: undefined };
  }
  const config = await parseConfig(obj.text, bucket);
  const id = workflow === undefined ? (config.default_workflow ?? null) : workflow;
  const ids = Object.keys(config.workflows);
  let spec: WorkflowSpec = {};
  if (id === null) {
    if (config.is_workflow_required ?? true) {
      throw fail(`${bucket} requires a workflow, and none was given.`, `Pass workflow as one of: ${ids.join(', ')}.`);
    }
  } else if (!(id in config.workflows)) {
    throw fail(`${bucket} has no workflow "${id}".`, `Use one of: ${ids.join(', ')}.`);
  } else {
    spec = config.workflows[id] ?? {};
  }
  // Both schemas at once (one round trip); a problem with the metadata schema is reported first.
  const sids = [...new Set([spec.metadata_schema, spec.entries_schema].filter((sid): sid is string => Boolean(sid)))];
  const schemas = await allInOrder(sids.map((sid) => loadSchema(ctx, config, sid)));
  const loaded = new Map(sids.map((sid, i) => [sid, schemas[i]!]));
  const record: { [k: string]: PyJson } = {
    id,
    config: formatPhysicalKey({ bucket, key: WORKFLOW_CONFIG, versionId: obj.versionId }),
  };
  if (loaded.size) record['schemas'] = Object.fromEntries([...loaded].map(([sid, s]) => [sid, s.pk]));
  // Searched for in the name (not anchored), as before; RE2 reads Python's (?P<n>...) groups too.
  const pattern: Matcher | undefined = spec.handle_pattern ? await compileTenantRegex(String(spec.handle_pattern), `Workflow "${id}" handle_pattern`) : undefined;
  return {
    record,
    checksEntries: Boolean(spec.entries_schema),
    before({ name, message, userMeta }) {
      if (spec.is_message_required && !message) throw fail(`workflow "${id}" requires a commit message.`, 'Pass message.');
      if (pattern && !pattern.test(name)) throw fail(`the name "${name}" does not match the workflow's handle pattern ${spec.handle_pattern}.`);
      const meta = spec.metadata_schema ? loaded.get(spec.metadata_schema) : undefined;
      if (meta) check(meta.validate, userMeta === undefined ? {} : toPlain(userMeta), 'Metadata');
    },
    after(entries) {
      const schema = spec.entries_schema ? loaded.get(spec.entries_schema) : undefined;
      if (!schema) return;
      const list = [...entries].sort((a, b) => compareWalkOrder(a.logical_key, b.logical_key)).map((e) => ({ logical_key: e.logical_key, size: e.size }));
      check(schema.validate, list, 'Package entries');
    },
  };
}
