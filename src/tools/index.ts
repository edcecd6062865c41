/** Every tool the server offers, in the order clients list them. */
import { athenaDatabasesList, athenaTableSchema, athenaTablesList } from './athena-catalog.js';
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
import { packageCreate, packageCreateFromS3, packageUpdate } from './package-write.js';
import { searchCatalogTool } from './search-catalog.js';
import { searchSuggest } from './search-suggest.js';
import { tabulatorOpenQuerySet, tabulatorQuery, tabulatorTableDelete, tabulatorTableRename, tabulatorTableSet, tabulatorTablesList } from './tabulator.js';

/**
 * The tools a configuration offers: one filter, on kind and toolset. `admin` tools change the
 * catalog for everyone, so they are opt-in: offered only when MCP_TOOLSETS names `admin`.
 */
export function selectTools(tools: readonly AnyTool[], { readOnly, toolsets }: { readOnly: boolean; toolsets: string[] | undefined }): AnyTool[] {
  const offered = (t: AnyTool) => (t.toolset === 'admin' ? toolsets?.includes('admin') === true : !toolsets || t.toolset === 'auth' || toolsets.includes(t.toolset));
  return tools.filter((t) => (!readOnly || t.kind === 'read') && offered(t));
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
  packageBrowse,
  packageDiff,
  packageCreate,
  packageCreateFromS3,
  packageUpdate,
  packageDelete,
  searchCatalogTool,
  searchSuggest,
  catalogUri,
  athenaWorkgroupsList,
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
