/**
 * The runtime context of one tool call: who is calling, with which AWS credentials and catalog
 * session, and what they may touch. Tools get everything from it, never from the environment, files
 * or globals, so desktop and JWT mode run the same tool code and concurrent users stay apart.
 */
import type { BucketAction } from './auth/claims.js';
import type { VerifiedToken } from './auth/verifier.js';
import type { AwsClients } from './aws/clients.js';
import type { CatalogAuthKind, CatalogClient } from './catalog/client.js';
import { callScope, runInCall } from './core/call-scope.js';
import type { Cursors } from './core/cursors.js';
import { ToolError } from './core/errors.js';
import type { Logger } from './core/log.js';
import type { LocalAccess } from './local/access.js';

/** What a tool is about to do to a bucket (auth/claims.ts maps each to a permission). */
export type { BucketAction };

export type AuthMode = 'desktop' | 'jwt';

export interface AwsAccess {
  /** Human description of where the credentials come from (never the credentials). */
  source: string;
  /** Present when AWS access is possible; otherwise `unavailable` says why. */
  clients?: AwsClients;
  unavailable?: ToolError;
  /** When the current credentials expire, if known (filled once they were resolved). */
  expiresAt?: () => Date | undefined;
}

/** The caller's way to the Quilt catalog. */
export interface CatalogAccess {
  /** The web catalog's URL (for links), when one is configured. */
  url: string | undefined;
  /** How catalog calls authenticate, or 'none' with the reason in `client()`. */
  auth: CatalogAuthKind | 'none';
  /** The catalog client, or a ToolError that says exactly why there is none and how to fix it. */
  client(): CatalogClient;
}

export interface Principal {
  /** Stable id: the JWT `sub`, or the local user in desktop mode. */
  id: string;
  /**
   * Who the caller is across issuers (JWT: issuer and sub; two issuers' users with one sub are two
   * callers): per-caller caps are keyed by it, and cursors bound to it.
   */
  key: string;
  /** Extra facts for auth_status / diagnostics (no secrets). */
  details: Record<string, unknown>;
}

/** What the diagnostics tools may ask about the caller's session (never secrets). */
export interface SessionDiagnostics {
  /** JWT mode: the verified caller's normalized claims. */
  jwtClaims?: Record<string, unknown>;
  /** Cache sizes and hit rates of the auth service. */
  stats(): Record<string, unknown>;
  /** Checks a token against this server's JWT configuration. */
  checkToken(raw: string): Promise<VerifiedToken>;
}

export interface RuntimeContext {
  readonly mode: AuthMode;
  readonly principal: Principal;
  readonly aws: AwsAccess;
  readonly catalog: CatalogAccess;
  readonly logger: Logger;
  /** Throws a ToolError when the caller may not do `action` on `bucket`. Desktop: AWS decides. */
  authorize(bucket: string, action: BucketAction): void;
  /** Buckets the caller is known to be limited to (JWT `buckets` claim), if any. */
  readonly allowedBuckets: readonly string[] | undefined;
  /** Seals and opens the cursors handed to this caller (bound to the caller and the tool). */
  readonly cursors: Cursors;
  readonly session: SessionDiagnostics;
  /** Desktop mode: quilt3's local registry, install location and the granted roots. JWT mode: none. */
  readonly local?: LocalAccess | undefined;
  /**
   * JWT mode with an OAuth-scoped token: the scope to ask the authorization server for when this
   * token may not run a tool of `kind` (the HTTP transport answers 403 insufficient_scope with it).
   */
  insufficientScope?(kind: 'read' | 'write' | 'destructive'): string | undefined;
}

/**
 * Runs one tool call or resource read in the caller's context (AsyncLocalStorage, call-scope.ts).
 * `signal` reaches every AWS request the call makes, so a cancelled or hung-up call stops its reads
 * at once instead of running on for nobody.
 */
export function runWithContext<T>(ctx: RuntimeContext, fn: () => Promise<T>, signal?: AbortSignal, answered?: () => void): Promise<T> {
  return runInCall({ ctx, signal, answered }, fn);
}

/** The context of the tool call in progress; throws outside one (a bug, not a user error). */
export function currentContext(): RuntimeContext {
  const scope = callScope();
  if (!scope) throw new Error('No runtime context: called outside a tool call');
  return scope.ctx as RuntimeContext;
}

/** AWS clients of the context, or the reason there are none, as a tool error. */
export function awsClients(ctx: RuntimeContext): AwsClients {
  if (ctx.aws.clients) return ctx.aws.clients;
  throw ctx.aws.unavailable ?? new ToolError('no_credentials', 'No AWS access is configured.');
}

/** Whether this caller may list a bucket (search, suggestions and resources/list show only those). */
export function mayList(ctx: RuntimeContext, bucket: string): boolean {
  try {
    ctx.authorize(bucket, 'list');
    return true;
  } catch {
    return false;
  }
}
