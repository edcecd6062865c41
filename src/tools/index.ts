/** Every tool the server offers, in the order clients list them. */
import { athenaCatalog, athenaDatabasesList, athenaTableSchema, athenaTablesList } from './athena-catalog.js';
import { athenaQueryExecute } from './athena-query.js';
import { athenaWorkgroupsList } from './athena-workgroups.js';
import { authStatus } from './auth-status.js';
import { bucketList } from './bucket-list.js';
import { catalogUri } from './catalog-uri.js';
import type { AnyTool } from './define.js';
import { discoverPermissions } from './discover-permissions.js';
import { jwtDiagnostics, sessionDiagnostics, validateJwtToken } from './jwt-tools.js';
import { bucketObjectLink } from './object-link.js';
import { bucketObjectFetch, bucketObjectInfo, bucketObjectText } from './object-read.js';
import { bucketObjectsList } from './objects-list.js';
import { bucketObjectsPut } from './objects-put.js';
import { packageBrowse } from './package-browse.js';
import { packageDelete } from './package-delete.js';
import { packageDiff } from './package-diff.js';
import { packageList } from './package-list.js';
import { packageRevisions } from './package-revisions.js';
import { packageCreate, packageCreateFromS3, packageUpdate } from './package-write.js';
import { packageInstall } from './package-install.js';
import { packagePush } from './package-push.js';
import { searchCatalogTool } from './search-catalog.js';
import { searchSuggest } from './search-suggest.js';
import { tabulatorOpenQuerySet, tabulatorQuery, tabulatorTableDelete, tabulatorTableRename, tabulatorTableSet, tabulatorTablesList } from './tabulator.js';

export interface ToolSettings {
  readOnly: boolean;
  toolsets: readonly string[] | undefined;
  mode: 'desktop' | 'jwt';
}

/** A tool a configuration does not offer, with the setting that hid it and how to get it. */
export interface HiddenTool {
  tool: AnyTool;
  reason: string;
  fix: string;
}

/**
 * Why a configuration does not offer `tool`, or undefined when it does. `admin` tools change the
 * catalog for everyone, so they are offered only when MCP_TOOLSETS names `admin`; `diagnostics`
 * (tokens, caches) serve operators of a JWT-mode server, so desktop mode offers them only when
 * MCP_TOOLSETS names them; `auth` is always offered.
 */
export function whyHidden(tool: AnyTool, { readOnly, toolsets, mode }: ToolSettings): Omit<HiddenTool, 'tool'> | undefined {
  if (readOnly && tool.kind !== 'read') {
    return {
      reason: 'this server runs with MCP_READ_ONLY=true, which offers only tools that change nothing.',
      fix: 'The person running the server can unset MCP_READ_ONLY to allow changes; the read tools work as they are.',
    };
  }
  if (tool.desktopOnly && mode === 'jwt') {
    return {
      reason: 'this server runs in JWT mode (one server for many users), where nothing local is offered: no local registry, local files or install.',
      fix: 'Use the S3 tools and registries; local folders work with quilt-mcp on your own machine (desktop mode).',
    };
  }
  const named = toolsets?.includes(tool.toolset) === true;
  if (tool.toolset === 'admin' && !named) {
    return {
      reason: 'the admin toolset (catalog administration) is offered only when MCP_TOOLSETS names admin.',
      fix: 'The person running the server can add admin to MCP_TOOLSETS (the catalog allows these tools to its admins only).',
    };
  }
  if (tool.toolset === 'diagnostics' && mode === 'desktop' && !named) {
    return {
      reason: 'operator diagnostics are offered in JWT mode, or when MCP_TOOLSETS names diagnostics; this server runs in desktop mode, where no JWT is used.',
      fix: 'auth_status says who the server acts as and where its credentials come from.',
    };
  }
  if (toolsets && tool.toolset !== 'auth' && !named) {
    return {
      reason: `this server runs with MCP_TOOLSETS=${toolsets.join(',')}, without "${tool.toolset}".`,
      fix: `The person running the server can add ${tool.toolset} to MCP_TOOLSETS.`,
    };
  }
  return undefined;
}

/** The tools a configuration offers: one filter, on kind, toolset and mode (whyHidden). */
export function selectTools(tools: readonly AnyTool[], settings: ToolSettings): AnyTool[] {
  return tools.filter((t) => !whyHidden(t, settings));
}

/** The tools a configuration does not offer, each with why. */
export function hiddenTools(tools: readonly AnyTool[], settings: ToolSettings): HiddenTool[] {
  return tools.flatMap((tool) => {
    const why = whyHidden(tool, settings);
    return why ? [{ tool, ...why }] : [];
  });
}

export const allTools: readonly AnyTool[] = [
  authStatus,
  bucketList,
  bucketObjectsList,
  bucketObjectInfo,
  bucketObjectText,
  bucketObjectFetch,
  bucketObjectLink,
  bucketObjectsPut,
  discoverPermissions,
  packageList,
  packageRevisions,
  packageBrowse,
  packageDiff,
  packageCreate,
  packageCreateFromS3,
  packageUpdate,
  packageDelete,
  packageInstall,
  packagePush,
  searchCatalogTool,
  searchSuggest,
  catalogUri,
  athenaWorkgroupsList,
  athenaCatalog,
  athenaDatabasesList,
  athenaTablesList,
  athenaTableSchema,
  athenaQueryExecute,
  tabulatorTablesList,
  tabulatorQuery,
  jwtDiagnostics,
  validateJwtToken,
  sessionDiagnostics,
  tabulatorTableSet,
  tabulatorTableRename,
  tabulatorTableDelete,
  tabulatorOpenQuerySet,
];
