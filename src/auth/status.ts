/**
 * Who the server acts as for a caller: AWS identity and credential source, the catalog and its
 * login, local files. The auth_status tool and the auth://status resource both answer it.
 */
import { loadSts } from '../aws/clients.js';
import { ME, type MeData } from '../catalog/documents.js';
import type { RuntimeContext } from '../context.js';
import { toToolError } from '../core/errors.js';

interface AwsStatus {
  available: boolean;
  source: string;
  identity?: { arn: string; account: string; user_id: string };
  expires_at?: string;
  default_region?: string;
  error?: string;
}

export interface CatalogStatus {
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

/** The report, as data and as the text a model reads. */
export async function authReport(ctx: RuntimeContext) {
  const aws: AwsStatus = { available: false, source: ctx.aws.source };
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
}
