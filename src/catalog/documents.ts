/**
 * Every GraphQL document quilt-mcp sends to the catalog, in one place. test/catalog-graphql.test.ts
 * validates each against the catalog's schema, so a typo fails CI rather than a user's search.
 * Unions are asked for `__typename` and every member is handled by the caller.
 */

const ERRORS = `
    ... on InvalidInput { errors { path message name } }
    ... on OperationError { message name }`;

const PACKAGE_HIT = `
      id score bucket name pointer hash size modified totalEntriesCount comment`;

const OBJECT_HIT = `
      id score bucket key version size modified deleted`;

export const SEARCH_PACKAGES = `query SearchPackages($buckets: [String!], $searchString: String, $size: Int!, $latestOnly: Boolean!) {
  me { name email }
  searchPackages(buckets: $buckets, searchString: $searchString, latestOnly: $latestOnly) {
    __typename
    ... on PackagesSearchResultSet {
      total
      firstPage(size: $size) {
        __typename
        ... on PackagesSearchResultSetPage { cursor hits {${PACKAGE_HIT} } }
        ${ERRORS}
      }
    }
    ${ERRORS}
  }
}`;

export const SEARCH_OBJECTS = `query SearchObjects($buckets: [String!], $searchString: String, $size: Int!) {
  me { name email }
  searchObjects(buckets: $buckets, searchString: $searchString) {
    __typename
    ... on ObjectsSearchResultSet {
      total
      firstPage(size: $size) { cursor hits {${OBJECT_HIT} } }
    }
    ${ERRORS}
  }
}`;

export const SEARCH_MORE_PACKAGES = `query SearchMorePackages($after: String!, $size: Int!) {
  searchMorePackages(after: $after, size: $size) {
    __typename
    ... on PackagesSearchResultSetPage { cursor hits {${PACKAGE_HIT} } }
    ${ERRORS}
  }
}`;

export const SEARCH_MORE_OBJECTS = `query SearchMoreObjects($after: String!, $size: Int!) {
  searchMoreObjects(after: $after, size: $size) {
    __typename
    ... on ObjectsSearchResultSetPage { cursor hits {${OBJECT_HIT} } }
    ${ERRORS}
  }
}`;

/**
 * search_suggest: package names that match (latest revisions only) and the metadata keys of the
 * packages in scope (the catalog's facets), with a keyword facet's values.
 */
export const SEARCH_SUGGEST = `query SearchSuggest($buckets: [String!], $searchString: String, $size: Int!) {
  searchPackages(buckets: $buckets, searchString: $searchString, latestOnly: true) {
    __typename
    ... on PackagesSearchResultSet {
      total
      stats {
        userMetaTruncated
        userMeta {
          __typename
          ... on IPackageUserMetaFacet { path }
          ... on KeywordPackageUserMetaFacet { extents { values } }
          ... on NumberPackageUserMetaFacet { numberExtents: extents { min max } }
        }
      }
      firstPage(size: $size) {
        __typename
        ... on PackagesSearchResultSetPage { hits { bucket name hash modified } }
        ${ERRORS}
      }
    }
    ${ERRORS}
  }
}`;

export const BUCKET_CONFIGS = `query BucketConfigs {
  bucketConfigs { name title description relevanceScore browsable lastIndexed }
}`;

export const ME = `query Me {
  me { name email isAdmin role { name } }
}`;

const TABULATOR_RESULT = `
    __typename
    ... on BucketConfig { name tabulatorTables { name config } }
    ${ERRORS}`;

/** A bucket's tabulator tables (null bucketConfig: the catalog does not know the bucket). */
export const TABULATOR_TABLES = `query TabulatorTables($bucket: String!) {
  bucketConfig(name: $bucket) { name tabulatorTables { name config } }
}`;

/** Creates or replaces a table; a null config deletes it. Top-level (the `admin {}` forms are deprecated). */
export const TABULATOR_SET_TABLE = `mutation TabulatorSetTable($bucket: String!, $table: String!, $config: String) {
  bucketSetTabulatorTable(bucketName: $bucket, tableName: $table, config: $config) {${TABULATOR_RESULT}
  }
}`;

export const TABULATOR_RENAME_TABLE = `mutation TabulatorRenameTable($bucket: String!, $table: String!, $newName: String!) {
  bucketRenameTabulatorTable(bucketName: $bucket, tableName: $table, newTableName: $newName) {${TABULATOR_RESULT}
  }
}`;

export const TABULATOR_SET_OPEN_QUERY = `mutation TabulatorSetOpenQuery($enabled: Boolean!) {
  admin { setTabulatorOpenQuery(enabled: $enabled) { tabulatorOpenQuery } }
}`;

/** All documents, by name, for the schema validation test. */
export const DOCUMENTS: Readonly<Record<string, string>> = {
  SEARCH_PACKAGES,
  SEARCH_OBJECTS,
  SEARCH_MORE_PACKAGES,
  SEARCH_MORE_OBJECTS,
  SEARCH_SUGGEST,
  BUCKET_CONFIGS,
  ME,
  TABULATOR_TABLES,
  TABULATOR_SET_TABLE,
  TABULATOR_RENAME_TABLE,
  TABULATOR_SET_OPEN_QUERY,
};

// Shapes of the answers, as asked for above.
export interface InputErrorShape {
  path: string | null;
  message: string;
  name: string;
}
export type ErrorArms =
  | { __typename: 'InvalidInput'; errors: InputErrorShape[] }
  | { __typename: 'OperationError'; message: string; name: string };

export interface PackageHit {
  id: string;
  score: number;
  bucket: string;
  name: string;
  pointer: string;
  hash: string;
  size: number;
  modified: string;
  totalEntriesCount: number;
  comment: string | null;
}
export interface ObjectHit {
  id: string;
  score: number;
  bucket: string;
  key: string;
  version: string;
  size: number;
  modified: string;
  deleted: boolean;
}
export type PackagesPage = { __typename: 'PackagesSearchResultSetPage'; cursor: string | null; hits: PackageHit[] };
export type ObjectsPage = { cursor: string | null; hits: ObjectHit[] };
export interface Me {
  name: string;
  email: string;
}
export interface SearchPackagesData {
  me: Me | null;
  searchPackages:
    | { __typename: 'PackagesSearchResultSet'; total: number; firstPage: PackagesPage | ErrorArms }
    | { __typename: 'EmptySearchResultSet' }
    | ErrorArms;
}
export interface SearchObjectsData {
  me: Me | null;
  searchObjects:
    | { __typename: 'ObjectsSearchResultSet'; total: number; firstPage: ObjectsPage }
    | { __typename: 'EmptySearchResultSet' }
    | ErrorArms;
}
export interface SearchMorePackagesData {
  searchMorePackages: PackagesPage | ErrorArms;
}
export interface SearchMoreObjectsData {
  searchMoreObjects: ({ __typename: 'ObjectsSearchResultSetPage' } & ObjectsPage) | ErrorArms;
}
export interface BucketConfigsData {
  bucketConfigs: Array<{
    name: string;
    title: string;
    description: string | null;
    relevanceScore: number;
    browsable: boolean;
    lastIndexed: string | null;
  }>;
}
export interface MeData {
  me: (Me & { isAdmin: boolean; role: { name: string } }) | null;
}

export interface TabulatorTableShape {
  name: string;
  config: string;
}
export interface TabulatorTablesData {
  bucketConfig: { name: string; tabulatorTables: TabulatorTableShape[] } | null;
}
export type TabulatorResult = { __typename: 'BucketConfig'; name: string; tabulatorTables: TabulatorTableShape[] } | ErrorArms;
export interface TabulatorSetTableData {
  bucketSetTabulatorTable: TabulatorResult;
}
export interface TabulatorRenameTableData {
  bucketRenameTabulatorTable: TabulatorResult;
}
export interface TabulatorSetOpenQueryData {
  admin: { setTabulatorOpenQuery: { tabulatorOpenQuery: boolean } };
}
export interface FacetShape {
  __typename: 'NumberPackageUserMetaFacet' | 'DatetimePackageUserMetaFacet' | 'KeywordPackageUserMetaFacet' | 'TextPackageUserMetaFacet' | 'BooleanPackageUserMetaFacet';
  path: string;
  extents?: { values: string[] };
  numberExtents?: { min: number; max: number };
}
export interface SearchSuggestData {
  searchPackages:
    | {
        __typename: 'PackagesSearchResultSet';
        total: number;
        stats: { userMetaTruncated: boolean; userMeta: FacetShape[] };
        firstPage: { __typename: 'PackagesSearchResultSetPage'; hits: Array<{ bucket: string; name: string; hash: string; modified: string }> } | ErrorArms;
      }
    | { __typename: 'EmptySearchResultSet' }
    | ErrorArms;
}
