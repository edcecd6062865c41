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

export const BUCKET_CONFIGS = `query BucketConfigs {
  bucketConfigs { name title description relevanceScore browsable lastIndexed }
}`;

export const ME = `query Me {
  me { name email isAdmin role { name } }
}`;

/** All documents, by name, for the schema validation test. */
export const DOCUMENTS: Readonly<Record<string, string>> = {
  SEARCH_PACKAGES,
  SEARCH_OBJECTS,
  SEARCH_MORE_PACKAGES,
  SEARCH_MORE_OBJECTS,
  BUCKET_CONFIGS,
  ME,
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
