import { z } from 'zod';
import { listWorkgroups, pickDefaultWorkgroup, rememberDefaultWorkgroup, withAthena } from '../aws/athena.js';
import { defineTool } from './define.js';

export const athenaWorkgroupsList = defineTool({
  name: 'athena_workgroups_list',
  title: 'List Athena workgroups',
  description: 'List Athena workgroups: state, result location, engine, whether usable, and which one queries use by default.',
  toolset: 'athena',
  kind: 'read',
  input: {},
  output: {
    workgroups: z.array(
      z.object({
        name: z.string(),
        state: z.string(),
        description: z.string().optional(),
        output_location: z.string().optional(),
        engine_version: z.string().optional(),
        enforce_configuration: z.boolean().optional(),
        usable: z.boolean(),
        details_error: z.string().optional(),
      }),
    ),
    default_workgroup: z.string().nullable().describe('The workgroup queries use without a `workgroup` argument'),
    default_reason: z.string(),
    configured_output_location: z.string().optional().describe('ATHENA_OUTPUT_LOCATION, when set'),
  },
  async handler(_args, ctx) {
    const { workgroups, configured, clients } = await withAthena(
      ctx,
      { action: 'list', resource: 'Athena workgroups' },
      async (client, sdk, clients) => ({ workgroups: await listWorkgroups(client, sdk, clients), configured: clients.athenaDefaults, clients }),
    );
    const choice = pickDefaultWorkgroup(workgroups, configured.workgroup);
    rememberDefaultWorkgroup(clients, choice);
    const data = {
      workgroups,
      default_workgroup: choice.name ?? null,
      default_reason: choice.reason,
      configured_output_location: configured.outputLocation,
    };
    const lines = workgroups.map(
      (w) =>
        `${w.name === choice.name ? '* ' : '- '}${w.name} (${w.state}${w.usable ? ', usable' : ', not usable'})` +
        `${w.output_location ? ` results: ${w.output_location}` : ''}${w.engine_version ? `, ${w.engine_version}` : ''}` +
        `${w.details_error ? ` [details unavailable: ${w.details_error}]` : ''}`,
    );
    const text =
      workgroups.length === 0
        ? 'No Athena workgroups are visible to these credentials.'
        : `${workgroups.length} workgroup(s); the default for queries: ${choice.name ?? "Athena's own"} (${choice.reason}):\n${lines.join('\n')}`;
    return { data, text };
  },
});
