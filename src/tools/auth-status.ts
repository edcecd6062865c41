import { z } from 'zod';
import { authReport } from '../auth/status.js';
import { defineTool } from './define.js';

export const authStatus = defineTool({
  name: 'auth_status',
  title: 'Authentication status',
  description:
    'Who the server acts as: AWS identity, credential source and expiry; Quilt catalog URL, login and user. Call it first when access fails.',
  toolset: 'auth',
  kind: 'read',
  input: {},
  output: {
    mode: z.enum(['desktop', 'jwt']),
    user: z.string(),
    aws: z.object({
      available: z.boolean(),
      source: z.string(),
      identity: z.object({ arn: z.string(), account: z.string(), user_id: z.string() }).optional(),
      expires_at: z.string().optional(),
      default_region: z.string().optional(),
      error: z.string().optional(),
    }),
    catalog: z.object({
      configured: z.boolean(),
      available: z.boolean(),
      url: z.string().optional(),
      auth: z.string(),
      identity: z.object({ name: z.string(), email: z.string(), role: z.string() }).optional(),
      error: z.string().optional(),
    }),
    details: z.record(z.string(), z.unknown()),
    local: z
      .object({
        registry: z.string().describe('quilt3\'s local registry: bucket="local" in the package tools'),
        install_location: z.string(),
        roots: z.array(z.object({ path: z.string(), source: z.string() })).describe('Folders local paths must lie in'),
      })
      .optional()
      .describe('Desktop mode: local files (none in JWT mode)'),
  },
  handler: (_args, ctx) => authReport(ctx),
});
