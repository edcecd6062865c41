/**
 * One way for tools to call Athena: the caller's own client (from the runtime context), errors
 * mapped to ToolErrors that say what to do, and the choice of workgroup shared by the tools.
 *
 * There is no claim check here: Athena names no bucket up front (a query reads whatever tables it
 * names and writes to the workgroup's output location), so IAM on the caller's credentials decides.
 */
import type { AthenaClient } from '@aws-sdk/client-athena';
import { mapBounded } from '../core/concurrency.js';
import { awsClients, type RuntimeContext } from '../context.js';
import { fromAwsError, ToolError, type AwsTarget } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { type AthenaModule, type AwsClients, loadAthena } from './clients.js';

export const DEFAULT_CATALOG = 'AwsDataCatalog';

const WORKGROUPS_HINT = 'athena_workgroups_list shows the workgroups you can use; pass one as `workgroup`, or set ATHENA_WORKGROUP.';

interface AthenaLikeError {
  name?: string;
  message?: string;
  AthenaErrorCode?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Athena's own error names first (its messages are meant for people), then the shared AWS mapping. */
export function fromAthenaError(err: unknown, target: AwsTarget): ToolError {
  if (err instanceof ToolError) return err;
  const e = (err ?? {}) as AthenaLikeError;
  const message = redact(e.message ?? '').slice(0, 500);
  const what = target.resource ?? 'Athena';
  switch (e.name) {
    case 'InvalidRequestException': {
      if (/work\s?group\b.*\b(not found|does not exist)/i.test(message)) {
        return new ToolError('not_found', `Athena: ${message}`, WORKGROUPS_HINT);
      }
      if (/work\s?group\b.*\bdisabled/i.test(message)) {
        return new ToolError('invalid_input', `Athena: ${message}`, `Choose an enabled workgroup. ${WORKGROUPS_HINT}`);
      }
      if (/output location/i.test(message)) {
        return new ToolError(
          'invalid_input',
          `Athena has nowhere to write query results: ${message}`,
          'Use a workgroup that has a query result location, or set ATHENA_OUTPUT_LOCATION (an s3:// prefix you may write to).',
        );
      }
      return new ToolError('invalid_input', `Athena refused to ${target.action} ${what}: ${message}`);
    }
    case 'MetadataException':
    case 'ResourceNotFoundException':
    case 'EntityNotFoundException': {
      if (/not found|does not exist|no such/i.test(message)) {
        return new ToolError(
          'not_found',
          `Athena: ${message}`,
          'athena_databases_list and athena_tables_list show what exists (names are case-insensitive and stored in lower case).',
        );
      }
      return new ToolError('upstream_error', `Athena could not ${target.action} ${what}: ${message}`);
    }
    case 'InternalServerException':
      return new ToolError('upstream_error', `Athena had an internal error while trying to ${target.action} ${what}.`, 'Retry in a moment.');
  }
  if (!e.name || e.name === 'Error' || e.name === 'UnknownError') {
    const status = e.$metadata?.httpStatusCode;
    if (status === 404) {
      return new ToolError(
        'upstream_error',
        `The Athena endpoint answered HTTP 404 while trying to ${target.action} ${what}.`,
        'Check AWS_ENDPOINT_URL_ATHENA (or AWS_ENDPOINT_URL) and AWS_REGION.',
      );
    }
  }
  return fromAwsError(err, { ...target, resource: what });
}

/** Calls Athena with the caller's client; any failure comes back as a ToolError naming the attempt. */
export async function withAthena<T>(
  ctx: RuntimeContext,
  target: AwsTarget,
  fn: (client: AthenaClient, sdk: AthenaModule, clients: AwsClients) => Promise<T>,
): Promise<T> {
  const clients = awsClients(ctx);
  try {
    const [sdk, client] = await Promise.all([loadAthena(), clients.athena()]);
    return await fn(client, sdk, clients);
  } catch (err) {
    throw fromAthenaError(err, target);
  }
}

export interface WorkgroupInfo {
  name: string;
  state: string;
  description?: string | undefined;
  output_location?: string | undefined;
  engine_version?: string | undefined;
  /** The workgroup's settings override the client's (output location included). */
  enforce_configuration?: boolean | undefined;
  usable: boolean;
  /** Why the workgroup's details could not be read (the summary is still shown). */
  details_error?: string | undefined;
}

/** Every workgroup (all ListWorkGroups pages) with its details (GetWorkGroup, 4 at a time). */
export async function listWorkgroups(client: AthenaClient, sdk: AthenaModule, clients: AwsClients): Promise<WorkgroupInfo[]> {
  const summaries: Array<{ Name?: string | undefined; State?: string | undefined; Description?: string | undefined }> = [];
  let token: string | undefined;
  do {
    const page = await client.send(new sdk.ListWorkGroupsCommand({ MaxResults: 50, NextToken: token }));
    summaries.push(...(page.WorkGroups ?? []));
    token = page.NextToken;
  } while (token && summaries.length < 1000);
  const configuredOutput = clients.athenaDefaults.outputLocation;
  return mapBounded(
    summaries.filter((s) => s.Name),
    4,
    async (s): Promise<WorkgroupInfo> => {
      const name = s.Name ?? '';
      const base = { name, state: s.State ?? 'UNKNOWN', description: s.Description || undefined };
      try {
        const { WorkGroup: wg } = await client.send(new sdk.GetWorkGroupCommand({ WorkGroup: name }));
        const conf = wg?.Configuration;
        const output = conf?.ResultConfiguration?.OutputLocation || undefined;
        const managed = conf?.ManagedQueryResultsConfiguration?.Enabled === true;
        const state = wg?.State ?? base.state;
        return {
          ...base,
          state,
          description: wg?.Description || base.description,
          output_location: output ?? (managed ? '(managed by Athena)' : undefined),
          engine_version: conf?.EngineVersion?.EffectiveEngineVersion ?? conf?.EngineVersion?.SelectedEngineVersion,
          enforce_configuration: conf?.EnforceWorkGroupConfiguration,
          usable: state === 'ENABLED' && Boolean(output || managed || configuredOutput),
        };
      } catch (err) {
        const why = fromAthenaError(err, { action: 'read', resource: `workgroup "${name}"` });
        return { ...base, usable: base.state === 'ENABLED' && Boolean(configuredOutput), details_error: why.message };
      }
    },
  );
}

export interface DefaultWorkgroup {
  /** Undefined: no usable workgroup is known, so Athena's own default (primary) applies. */
  name: string | undefined;
  reason: string;
}

/** ATHENA_WORKGROUP, else `primary` when usable, else the first usable workgroup. */
export function pickDefaultWorkgroup(workgroups: readonly WorkgroupInfo[], configured: string | undefined): DefaultWorkgroup {
  if (configured) return { name: configured, reason: 'configured by ATHENA_WORKGROUP' };
  if (workgroups.some((w) => w.name === 'primary' && w.usable)) return { name: 'primary', reason: '"primary" is usable' };
  const first = workgroups.find((w) => w.usable);
  if (first) return { name: first.name, reason: '"primary" is not usable; first usable workgroup' };
  return { name: undefined, reason: 'no usable workgroup: enabled with a result location (or set ATHENA_OUTPUT_LOCATION)' };
}

const DEFAULT_TTL_MS = 5 * 60_000;
const defaults = new WeakMap<AwsClients, { at: number; value: Promise<DefaultWorkgroup> }>();

/**
 * The workgroup a query without a `workgroup` argument runs in, as athena_workgroups_list reports it.
 * Remembered per principal for 5 minutes; when the workgroups cannot be listed (a policy that only
 * allows queries), Athena's own default applies.
 */
export function defaultWorkgroup(ctx: RuntimeContext, clients: AwsClients, client: AthenaClient, sdk: AthenaModule): Promise<DefaultWorkgroup> {
  const configured = clients.athenaDefaults.workgroup;
  if (configured) return Promise.resolve(pickDefaultWorkgroup([], configured));
  const cached = defaults.get(clients);
  if (cached && Date.now() - cached.at < DEFAULT_TTL_MS) return cached.value;
  const value = listWorkgroups(client, sdk, clients).then(
    (wgs) => pickDefaultWorkgroup(wgs, undefined),
    (err: unknown) => {
      const why = fromAthenaError(err, { action: 'list', resource: 'Athena workgroups' });
      // Remembered like a success: a policy without athena:ListWorkGroups should not cost a refused call per query.
      ctx.logger.info('Could not list Athena workgroups; using Athena\'s default workgroup', { reason: why.message });
      return { name: undefined, reason: `workgroups could not be listed (${why.code}); Athena's default applies` };
    },
  );
  defaults.set(clients, { at: Date.now(), value });
  return value;
}

/** A workgroup chosen by athena_workgroups_list is remembered for queries too. */
export function rememberDefaultWorkgroup(clients: AwsClients, value: DefaultWorkgroup): void {
  if (!clients.athenaDefaults.workgroup) defaults.set(clients, { at: Date.now(), value: Promise.resolve(value) });
}
