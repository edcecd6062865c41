/**
 * AWS clients for one principal, built from that principal's credentials only.
 *
 * The SDK modules are imported on first use: they cost more to load than the whole MCP server,
 * and a client that only lists tools must not pay for them.
 */
import type { AthenaClient } from '@aws-sdk/client-athena';
import type { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AthenaSettings, AwsSettings } from '../config.js';
import { callScope, uncancelled } from '../core/call-scope.js';
import { CALL_CONCURRENCY, PROCESS_S3_SLOTS } from '../core/concurrency.js';
import { lazy } from '../core/lazy.js';
import { Lru } from '../core/lru.js';
import { resumeBodies } from './resume.js';
import { BoundedRetries, type HandlerOptions, loadNewConnectionRetries } from './retry.js';
import { checkKey } from './s3-uri.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  expiration?: Date | undefined;
}

/**
 * Where a principal's AWS credentials come from. Each provider keeps its own until shortly before
 * they expire; `forceRefresh` asks for new ones now (AWS said the current ones expired early).
 */
export type CredentialProvider = (options?: { forceRefresh?: boolean }) => Promise<AwsCredentials>;

export type S3Module = typeof import('@aws-sdk/client-s3');
/** The AWS SDK modules, loaded on first use. */
export const loadS3: () => Promise<S3Module> = lazy(() => import('@aws-sdk/client-s3'));
export const loadSts = lazy(() => import('@aws-sdk/client-sts'));
export const loadPresigner = lazy(() => import('@aws-sdk/s3-request-presigner'));
export type AthenaModule = typeof import('@aws-sdk/client-athena');
export const loadAthena: () => Promise<AthenaModule> = lazy(() => import('@aws-sdk/client-athena'));

export interface ClientOptions {
  settings: AwsSettings;
  /** Region used when a call does not name one. */
  defaultRegion: string;
  /** Operator defaults for Athena queries (ATHENA_WORKGROUP, ATHENA_OUTPUT_LOCATION). */
  athena?: AthenaSettings | undefined;
}

const REQUEST_HANDLER = { connectionTimeout: 5_000, requestTimeout: 60_000 };

/**
 * The SDK's HTTP handler, each request carrying the abort signal of the tool call that sends it
 * (call-scope.ts): when the call is cancelled (its client cancelled it or went away), its requests
 * are aborted and the bodies they stream cut, on every code path, instead of reading on for nobody.
 * Given here rather than as a send option: a send with options skips the SDK's middleware cache
 * (cacheMiddleware). A request that names its own signal keeps it; `uncancelled` sends outside any call.
 * Retries go out on new connections (retry.ts).
 */
const loadCancellingHandler = lazy(async () => {
  const NewConnectionRetries = await loadNewConnectionRetries();
  type Handle = InstanceType<typeof NewConnectionRetries>['handle'];
  return class CallCancellingHandler extends NewConnectionRetries {
    override handle(request: Parameters<Handle>[0], options: Parameters<Handle>[1] = {}): ReturnType<Handle> {
      const scope = callScope();
      const signal = options.abortSignal ?? scope?.signal;
      const answer = super.handle(request, signal ? { ...options, abortSignal: signal } : options);
      // An answer (any status) means the service is not stuck: the call's deadline starts again.
      const answered = scope?.answered;
      return answered ? answer.then((a) => (answered(), a)) : answer;
    }
  };
});

async function cancellingHandler(options: HandlerOptions) {
  const Handler = await loadCancellingHandler();
  return new Handler(options);
}

/**
 * S3's socket pool: room for the process's bulk requests (concurrency.ts) and a call's own single
 * requests beside them. The SDK's default of 50 would queue a call's 64 requests in flight.
 */
const S3_SOCKETS = PROCESS_S3_SLOTS + CALL_CONCURRENCY;

/** How long a bucket's region lookup (HeadBucket, shared by the calls that need it) may take, retries included. */
const REGION_LOOKUP_MS = 10_000;

/** Per-bucket S3 clients kept per principal (see AwsClients.s3); the least recently used go first. */
const BUCKET_CLIENTS = 64;

/**
 * Every S3 request passes here before it is built: a key that a server could resolve into another
 * bucket never leaves the process, whichever code path produced it (tool arguments, manifests,
 * listings, workflow configs). Tools check their arguments earlier for a friendlier error; this
 * is the guarantee.
 */
function guardKeys(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Key?: unknown; CopySource?: unknown; Delete?: { Objects?: Array<{ Key?: unknown }> } };
      if (typeof input.Key === 'string') checkKey(input.Key);
      if (typeof input.CopySource === 'string') checkKey(input.CopySource.replace(/^\/?[^/]+\//, ''), 'Copy source key');
      for (const o of input.Delete?.Objects ?? []) if (typeof o.Key === 'string') checkKey(o.Key);
      return next(args);
    },
    { step: 'initialize', name: 'quiltMcpKeyGuard', priority: 'high' },
  );
  return client;
}

/** Every S3 client's middleware: the key guard, resumable bodies, new credentials after an expiry. */
function clientMiddleware(clients: AwsClients, client: S3Client): S3Client {
  return refreshOnExpiry(resumeBodies(guardKeys(client)), clients);
}

/**
 * The region S3 says a bucket lives in, from a wrong-region answer: 301 PermanentRedirect (or 400
 * AuthorizationHeaderMalformed / IllegalLocationConstraintException) with `x-amz-bucket-region`,
 * or the `<Region>` of the error body.
 */
export function redirectRegion(err: unknown): string | undefined {
  const e = err as { name?: string; Region?: unknown; $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string | undefined> } };
  const status = e?.$metadata?.httpStatusCode;
  const wrongRegion =
    status === 301 || (status === 400 && (e.name === 'AuthorizationHeaderMalformed' || e.name === 'IllegalLocationConstraintException'));
  if (!wrongRegion) return undefined;
  const region = e.$response?.headers?.['x-amz-bucket-region'] ?? (typeof e.Region === 'string' ? e.Region : undefined);
  return region && /^[a-z0-9-]{1,40}$/.test(region) ? region : undefined;
}

type InitializeStack = {
  add(
    middleware: (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => Promise<unknown>,
    options: { step: 'initialize'; name: string; priority: 'low' },
  ): void;
};

/** AWS's word that the credentials a request was signed with have expired (or were revoked). */
const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired']);

/**
 * Whether a failure may be AWS refusing expired credentials. S3 answers a HEAD without a body, so
 * the SDK cannot read the error code there: a bare 400 to a HEAD (ExpiredToken's status) counts too
 * (the fault campaign: package_push failed on a HeadObject refused as expired).
 */
function mayBeExpired(err: unknown, commandName: string | undefined): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (EXPIRED.has(e.name ?? '')) return true;
  const head = commandName === 'HeadObjectCommand' || commandName === 'HeadBucketCommand';
  return head && e.$metadata?.httpStatusCode === 400 && ['Unknown', 'UnknownError', 'BadRequest', '400'].includes(e.name ?? '');
}

/** Sends of one request when each is refused as expired (so at most two refreshes per request). */
const EXPIRED_SENDS = 3;

/**
 * A request refused because its credentials expired is sent again with new ones: STS sessions and
 * catalog-issued credentials can end before the expiry they announced (revoked, a clock that
 * disagrees), and a long package write must not fail on it. One refresh serves every request that
 * was sent with the old credentials (see AwsClients.refreshExpired). A request sent again can meet
 * the end of the new credentials too (a write of thousands of objects outlives a short session; the
 * fault campaign's package_create_200 did): it gets one more refresh, then the error stands.
 */
function refreshOnExpiry<C extends { middlewareStack: unknown }>(client: C, clients: AwsClients): C {
  // S3's and Athena's stacks differ in their command types only, which this middleware does not read.
  (client.middlewareStack as InitializeStack).add(
    (next, context) => async (args) => {
      for (let send = 1; ; send++) {
        // The generation before the send: the credentials it is signed with are this one's or newer.
        const seen = clients.credentialsGeneration;
        try {
          return await next(args);
        } catch (err) {
          if (send >= EXPIRED_SENDS || !mayBeExpired(err, context.commandName)) throw err;
          if (!(await clients.refreshExpired(seen))) throw err;
        }
      }
    },
    { step: 'initialize', name: 'quiltMcpRefreshExpired', priority: 'low' },
  );
  return client;
}

export class AwsClients {
  private readonly s3Clients = new Map<string, Promise<S3Client>>();
  private readonly bucketClients = new Lru<string, Promise<S3Client>>(BUCKET_CLIENTS);
  /** One socket pool per principal, shared by its S3 clients (made with the first one). */
  private s3Sockets: Promise<{ httpAgent: import('node:http').Agent; httpsAgent: import('node:https').Agent }> | undefined;
  private stsClient: Promise<STSClient> | undefined;
  private athenaClient: Promise<AthenaClient> | undefined;
  private readonly bucketRegions = new Map<string, Promise<string>>();
  /** Regions learnt from S3 (HeadBucket or a redirect), so later calls go to the right one at once. */
  private readonly knownRegions = new Map<string, string>();

  /** Bumped by each refresh after an expiry, so that one refresh serves all the requests it failed. */
  credentialsGeneration = 0;
  private refreshing: Promise<boolean> = Promise.resolve(true);
  /**
   * The provider as the SDK clients get it: called for every request (the providers cache), and
   * marked memoized so that the SDK keeps no copy of its own that a refresh could not reach.
   */
  private readonly sdkCredentials: CredentialProvider & { memoized: true };

  constructor(
    readonly credentials: CredentialProvider,
    private readonly options: ClientOptions,
  ) {
    this.sdkCredentials = Object.assign(() => credentials(), { memoized: true as const });
  }

  /**
   * New credentials after AWS refused the current ones as expired (`seen`: the generation the
   * request was sent in). Resolves to whether sending again may help: false when the refresh gave
   * the same credentials back (keys from the environment or a profile cannot be renewed here).
   */
  refreshExpired(seen: number): Promise<boolean> {
    if (seen === this.credentialsGeneration) {
      this.credentialsGeneration++;
      this.refreshing = (async () => {
        const before = await this.credentials().catch(() => undefined);
        const after = await this.credentials({ forceRefresh: true });
        return !before || before.accessKeyId !== after.accessKeyId || before.secretAccessKey !== after.secretAccessKey || before.sessionToken !== after.sessionToken;
      })()
        // A failed refresh shows in the request sent again (with whatever credentials there are).
        .catch(() => true);
    }
    return this.refreshing;
  }

  get defaultRegion(): string {
    return this.options.defaultRegion;
  }

  /** The configured default workgroup and query output location (either may be unset). */
  get athenaDefaults(): AthenaSettings {
    return this.options.athena ?? { workgroup: undefined, outputLocation: undefined };
  }

  /**
   * Settings shared by every client: explicit, so no client falls back on ambient config.
   * cacheMiddleware: each command class's middleware stack is resolved once per client instead of
   * on every request (the largest single cost of a small GetObject under load); our middleware is
   * added when the client is made and never changed afterwards, which is what the option requires.
   * The cache is used only by sends without options (`client.send(cmd)`), and its handler context
   * is shared by concurrent requests: hence S3 clients per bucket (s3()).
   */
  private common(region: string) {
    return {
      region,
      credentials: this.sdkCredentials,
      maxAttempts: 3,
      retryStrategy: new BoundedRetries(3),
      requestHandler: REQUEST_HANDLER,
      useFipsEndpoint: false,
      useDualstackEndpoint: false,
      cacheMiddleware: true,
    };
  }

  /**
   * The S3 client for a region. `followRedirects` (default on) lets the SDK follow a bucket's region
   * redirect, for callers that do not go through withS3; withS3 asks for clients without it and
   * follows redirects itself. With a custom endpoint, each region's client still signs for its
   * region and goes to the same endpoint (which is how S3-compatible stand-ins see the region).
   *
   * With `bucket`, a client for that bucket alone. The SDK's middleware cache (cacheMiddleware, see
   * common()) shares one handler context per command class, into which each request writes its
   * endpoint before an await: two GetObjects to different buckets at once through one client could
   * swap endpoints, and a read of s3://a/k answer with s3://b/k. Requests that name a bucket
   * therefore go through that bucket's client (same bucket, same endpoint: nothing to swap); the
   * clients share the principal's socket pool.
   */
  s3(region: string = this.options.defaultRegion, { followRedirects = true, bucket }: { followRedirects?: boolean; bucket?: string | undefined } = {}): Promise<S3Client> {
    const cacheKey = `${region}${followRedirects ? '' : ' strict'}`;
    const cache = bucket === undefined ? this.s3Clients : this.bucketClients;
    const key = bucket === undefined ? cacheKey : `${cacheKey}/${bucket}`;
    let client = cache.get(key);
    if (!client) {
      const { settings } = this.options;
      client = Promise.all([loadS3(), this.sockets().then((sockets) => cancellingHandler({ ...REQUEST_HANDLER, ...sockets }))]).then(([{ S3Client }, requestHandler]) =>
        clientMiddleware(
          this,
          new S3Client({
            ...this.common(region),
            requestHandler,
            ...(settings.endpoints.s3 ? { endpoint: settings.endpoints.s3, forcePathStyle: true } : {}),
            // Real buckets live in many regions; follow S3's redirect instead of failing.
            followRegionRedirects: followRedirects,
            ...(settings.requestChecksumCalculation ? { requestChecksumCalculation: settings.requestChecksumCalculation } : {}),
            ...(settings.responseChecksumValidation ? { responseChecksumValidation: settings.responseChecksumValidation } : {}),
          }),
        ),
      );
      cache.set(key, client);
    }
    return client;
  }

  private sockets() {
    return (this.s3Sockets ??= Promise.all([import('node:http'), import('node:https')]).then(([http, https]) => ({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: S3_SOCKETS }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: S3_SOCKETS }),
    })));
  }

  /** The bucket's region if S3 told it already, else the default region (no AWS call). */
  knownRegion(bucket: string): string {
    return this.knownRegions.get(bucket) ?? this.options.defaultRegion;
  }

  rememberRegion(bucket: string, region: string): void {
    this.knownRegions.set(bucket, region);
  }

  sts(): Promise<STSClient> {
    const { settings, defaultRegion } = this.options;
    return (this.stsClient ??= loadSts().then(
      ({ STSClient }) =>
        new STSClient({
          ...this.common(defaultRegion),
          ...(settings.endpoints.sts ? { endpoint: settings.endpoints.sts } : {}),
        }),
    ));
  }

  /** Athena in the default region (one client: queries, workgroups and catalogs are regional). */
  athena(): Promise<AthenaClient> {
    const { settings, defaultRegion } = this.options;
    return (this.athenaClient ??= Promise.all([loadAthena(), cancellingHandler(REQUEST_HANDLER)]).then(([{ AthenaClient }, requestHandler]) =>
      refreshOnExpiry(
        new AthenaClient({
          ...this.common(defaultRegion),
          requestHandler,
          ...(settings.endpoints.athena ? { endpoint: settings.endpoints.athena } : {}),
        }),
        this,
      ),
    ));
  }

  /**
   * The region a bucket lives in (needed for presigned URLs, which cannot follow redirects), from
   * HeadBucket: S3 tells it in `x-amz-bucket-region` on success, on a redirect and on 403 alike.
   * Asked with a custom endpoint too, so the region logic is the same against S3 stand-ins. When
   * S3 does not tell, the default region is used (and the real request reports any error).
   */
  bucketRegion(bucket: string): Promise<string> {
    const known = this.knownRegions.get(bucket);
    if (known) return Promise.resolve(known);
    let region = this.bucketRegions.get(bucket);
    if (!region) {
      region = (async () => {
        const [{ HeadBucketCommand }, client] = await Promise.all([loadS3(), this.s3(this.options.defaultRegion, { followRedirects: false, bucket })]);
        let found: string | undefined;
        try {
          // Shared by every call that asks meanwhile: one caller going away must not fail the others,
          // and a lookup S3 never answers must not hold them (and those after S3 recovers) for
          // minutes: it has a deadline of its own, after which the next call asks again.
          found = (await uncancelled(() => client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(REGION_LOOKUP_MS) }))).BucketRegion;
        } catch (err) {
          const headers = (err as { $response?: { headers?: Record<string, string | undefined> } }).$response?.headers;
          found = headers?.['x-amz-bucket-region'];
        }
        if (!found) {
          this.bucketRegions.delete(bucket); // not told: ask again next time
          return this.options.defaultRegion;
        }
        this.knownRegions.set(bucket, found);
        return found;
      })();
      this.bucketRegions.set(bucket, region);
    }
    return region;
  }

  /** S3 client for the bucket (and in its own region). */
  async s3ForBucket(bucket: string): Promise<S3Client> {
    return this.s3(await this.bucketRegion(bucket), { bucket });
  }
}
