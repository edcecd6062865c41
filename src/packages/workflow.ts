/**
 * Bucket workflows (`.quilt/workflows/config.yml`), checked as quilt3 checks them before a push:
 * the workflow chosen (or the default), a required message, the name's handle pattern, and the
 * JSON Schemas (draft-07) of package metadata and entries. What passes is recorded in the
 * manifest header as quilt3 records it: `{id, config, schemas?}`. Parsing the config and running
 * the schemas happen in the checking worker (workflow-worker.ts), off the event loop.
 */
import { callSignal } from '../call-scope.js';
import type { RuntimeContext } from '../context.js';
import { ToolError } from '../errors.js';
import { allInOrder } from '../concurrency.js';
import { compileTenantRegex, type Matcher } from '../patterns.js';
import { formatPhysicalKey, parsePhysicalKey } from './physical-keys.js';
import type { ManifestEntry } from './manifest.js';
import { compareWalkOrder } from './manifest.js';
import { toPlain, type PyJson } from './pyjson.js';
import { getText, type RegistryStore } from './registry.js';
import { s3Registry } from './registries.js';
import { localAccess } from '../local/access.js';
import { fileUriOf } from '../local/paths.js';
import { smallText } from './s3-store.js';
import { createReadStream, promises as fs } from 'node:fs';
import { MAX_CONFIG_BYTES, MAX_SCHEMA_BYTES, workflowFailure, type SchemaSource, type SelectedWorkflow } from './workflow-checks.js';
import { workflowChecks } from './workflow-worker.js';

export const WORKFLOW_CONFIG = '.quilt/workflows/config.yml';

export interface WorkflowCheck {
  /** Checks that need no data: message, name, package metadata. */
  before(args: { name: string; message: string | null | undefined; userMeta: PyJson | undefined }): Promise<void>;
  /** Checks of the entries (logical key and size, in walk order). */
  after(entries: readonly Pick<ManifestEntry, 'logical_key' | 'size'>[]): Promise<void>;
  /** Whether `after` checks anything (else callers need not collect the entries). */
  checksEntries: boolean;
  /** What the manifest header records, or undefined when the bucket has no workflows. */
  record: { [k: string]: PyJson } | undefined;
}

const fail = workflowFailure;

const SCHEMA_LIMIT = { bytes: MAX_SCHEMA_BYTES, what: 'a workflow metadata schema' };

/** A schema's text and physical key: in S3, or (a local registry's workflows) a local file inside the roots. */
async function schemaText(ctx: RuntimeContext, url: string): Promise<{ text: string; pk: string } | undefined> {
  if (/^file:/i.test(url)) {
    const p = await localAccess(ctx, `The workflow schema ${url}`).roots.resolve(url, 'The workflow schema', 'read');
    try {
      const st = await fs.stat(p);
      return { text: await smallText(createReadStream(p), st.size, url, SCHEMA_LIMIT), pk: fileUriOf(p) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
  const loc = parsePhysicalKey(url);
  const obj = await getText(s3Registry(ctx, loc.bucket), loc.key, undefined, { limit: SCHEMA_LIMIT });
  return obj && { text: obj.text, pk: formatPhysicalKey({ ...loc, versionId: loc.versionId ?? obj.versionId }) };
}

async function loadSchema(ctx: RuntimeContext, id: string, url: string): Promise<{ source: SchemaSource; pk: string }> {
  const obj = await schemaText(ctx, url);
  if (!obj) throw new ToolError('upstream_error', `Could not load schema "${id}": ${url} does not exist.`);
  const source = { id, url, text: obj.text };
  // Compiled now, so a bad schema is refused before any data is read or hashed.
  await workflowChecks.run(ctx.principal.key, { op: 'schema', schema: source }, callSignal());
  return { source, pk: obj.pk };
}

/**
 * The bucket's workflow for this push. `workflow` undefined = the config's default; null = none
 * (allowed only when the config does not require one).
 */
export async function loadWorkflow(reg: RegistryStore, workflow: string | null | undefined): Promise<WorkflowCheck> {
  const ctx = reg.ctx;
  const bucket = reg.id;
  const obj = await getText(reg, WORKFLOW_CONFIG, undefined, { limit: { bytes: MAX_CONFIG_BYTES, what: 'a workflows config' } });
  if (!obj) {
    if (typeof workflow === 'string') {
      throw fail(`workflow "${workflow}" was given, but ${bucket} has no workflows config (${WORKFLOW_CONFIG}).`, 'Omit workflow.');
    }
    return { before: async () => undefined, after: async () => undefined, checksEntries: false, record: undefined };
  }
  const where = `${reg.uri}/${WORKFLOW_CONFIG}`;
  const { id, spec, schemaUrls } = (await workflowChecks.run(ctx.principal.key, { op: 'select', text: obj.text, where, bucket, workflow }, callSignal())) as SelectedWorkflow;
  // Both schemas at once (one round trip); a problem with the metadata schema is reported first.
  const sids = Object.keys(schemaUrls);
  const schemas = await allInOrder(sids.map((sid) => loadSchema(ctx, sid, schemaUrls[sid]!)));
  const loaded = new Map(sids.map((sid, i) => [sid, schemas[i]!]));
  const record: { [k: string]: PyJson } = {
    id,
    config: reg.physicalKey(WORKFLOW_CONFIG, obj.versionId),
  };
  if (loaded.size) record['schemas'] = Object.fromEntries([...loaded].map(([sid, s]) => [sid, s.pk]));
  // Searched for in the name (not anchored), as before; RE2 reads Python's (?P<n>...) groups too.
  const pattern: Matcher | undefined = spec.handle_pattern ? await compileTenantRegex(spec.handle_pattern, `Workflow "${id}" handle_pattern`) : undefined;
  const check = (schema: SchemaSource, data: unknown, what: string) =>
    workflowChecks.run(ctx.principal.key, { op: 'check', schema, data, what }, callSignal()).then(() => undefined);
  return {
    record,
    checksEntries: Boolean(spec.entries_schema),
    async before({ name, message, userMeta }) {
      if (spec.is_message_required && !message) throw fail(`workflow "${id}" requires a commit message.`, 'Pass message.');
      if (pattern && !pattern.test(name)) throw fail(`the name "${name}" does not match the workflow's handle pattern ${spec.handle_pattern}.`);
      const meta = spec.metadata_schema ? loaded.get(spec.metadata_schema) : undefined;
      if (meta) await check(meta.source, userMeta === undefined ? {} : toPlain(userMeta), 'Metadata');
    },
    async after(entries) {
      const schema = spec.entries_schema ? loaded.get(spec.entries_schema) : undefined;
      if (!schema) return;
      const list = [...entries].sort((a, b) => compareWalkOrder(a.logical_key, b.logical_key)).map((e) => ({ logical_key: e.logical_key, size: e.size }));
      await check(schema.source, list, 'Package entries');
    },
  };
}
