import { z } from 'zod';
import { loadSts } from '../aws/clients.js';
import { ME, type MeData } from '../catalog/documents.js';
import type { RuntimeContext } from '../context.js';
import { toToolError } from '../errors.js';
import { defineTool } from './define.js';

interface CatalogStatus {
  configured: boolean;
  available: boolean;
  url?: string;
  auth: string;
  identity?: { name: string; email: string; role: string };
  error?: string;
}

/** The catalog half, checked with a `me` query (which also says who the catalog thinks we are). */
async function catalogStatus(ctx: RuntimeContext): Promise<CatalogStatus> {
  const out: CatalogStatus = { configured: ctx.catalog.url !== undefined, available: false, url: ctx.catalog.url, auth: ctx.catalog.auth };
  try {
    const { me } = await ctx.catalog.client().graphql<MeData>(ME);
    out.available = true;
    out.configured = true;
    if (me) out.identity = { name: me.name, email: me.email, role: me.role.name };
  } catch (err) {
    out.error = toToolError(err).text;
  }
  return out;
}

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
  async handler(_args, ctx) {
    const aws: {
      available: boolean;
      source: string;
      identity?: { arn: string; account: string; user_id: string };
      expires_at?: string;
      default_region?: string;
      error?: string;
    } = { available: false, source: ctx.aws.source };
    const clients = ctx.aws.clients;
    if (!clients) {
      aws.error = ctx.aws.unavailable?.text ?? 'No AWS access.';
    } else {
      aws.default_region = clients.defaultRegion;
      try {
        const [sts, { GetCallerIdentityCommand }] = await Promise.all([clients.sts(), loadSts()]);
        const id = await sts.send(new GetCallerIdentityCommand({}));
        aws.available = true;
        aws.identity = { arn: id.Arn ?? '', account: id.Account ?? '', user_id: id.UserId ?? '' };
      } catch (err) {
        aws.error = toToolError(err).text;
      }
      const expiry = ctx.aws.expiresAt?.();
      if (expiry) aws.expires_at = expiry.toISOString();
    }
    const catalog = await catalogStatus(ctx);
    const local = ctx.local ? { registry: ctx.local.registry, install_location: ctx.local.installLocation, roots: await ctx.local.roots.list() } : undefined;
    const data = { mode: ctx.mode, user: ctx.principal.id, aws, catalog, details: ctx.principal.details, local };
    const lines = [
      `Mode: ${ctx.mode} (acting as ${ctx.principal.id})`,
      `AWS: ${aws.available ? `available as ${aws.identity?.arn} (user id ${aws.identity?.user_id})` : 'NOT available'}`,
      `  credentials: ${aws.source}${aws.expires_at ? `, expire ${aws.expires_at}` : ''}${aws.default_region ? `; region ${aws.default_region}` : ''}`,
      ...(aws.error ? [`  problem: ${aws.error}`] : []),
      `Catalog: ${catalog.available ? 'available' : catalog.configured ? 'NOT available' : 'not configured'}${catalog.url ? ` at ${catalog.url}` : ''} (auth: ${catalog.auth}${catalog.identity ? `, as ${catalog.identity.name} <${catalog.identity.email}>, role ${catalog.identity.role}` : ''})`,
      ...(catalog.error ? [`  problem: ${catalog.error}`] : []),
      local
        ? `Local: registry ${local.registry} (bucket="local" in the package tools, no AWS needed), install location ${local.install_location}; roots: ${local.roots.map((r) => `${r.path} (${r.source})`).join('; ')}`
        : 'Local: nothing (JWT mode offers no local files)',
      ...Object.entries(ctx.principal.details).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`),
    ];
    return { data, text: lines.join('\n') };
  },
});
