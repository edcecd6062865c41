/**
 * AWS credentials from a Quilt registry's credential endpoint, for a catalog bearer token
 * (desktop: the quilt3 session's access token; JWT: the token's catalog_token).
 */
import type { AwsCredentials } from '../aws/clients.js';
import { ToolError } from '../core/errors.js';
import { HttpStatusError, requestJson } from './http.js';

interface CredentialsBody {
  AccessKeyId?: string;
  SecretAccessKey?: string;
  SessionToken?: string;
  Expiration?: string;
}

export async function fetchRegistryCredentials(
  registryUrl: string,
  token: string,
  refusedHint: string,
  now: () => number = Date.now,
): Promise<AwsCredentials> {
  let body: CredentialsBody;
  try {
    body = await requestJson<CredentialsBody>(`${registryUrl}/api/auth/get_credentials`, {
      headers: { authorization: `Bearer ${token}` },
      service: 'Quilt registry',
    });
  } catch (err) {
    if (err instanceof HttpStatusError && (err.status === 401 || err.status === 403)) {
      throw new ToolError(
        'not_logged_in',
        `The Quilt registry ${registryUrl} refused to issue AWS credentials (HTTP ${err.status}).`,
        refusedHint,
      );
    }
    if (err instanceof HttpStatusError) {
      throw new ToolError('upstream_error', `The Quilt registry ${registryUrl} failed to issue AWS credentials (HTTP ${err.status}).`);
    }
    throw err;
  }
  if (!body?.AccessKeyId || !body.SecretAccessKey) {
    throw new ToolError('upstream_error', `The Quilt registry ${registryUrl} returned no AWS credentials.`);
  }
  const expiration = body.Expiration ? new Date(body.Expiration) : new Date(Number.NaN);
  return {
    accessKeyId: body.AccessKeyId,
    secretAccessKey: body.SecretAccessKey,
    sessionToken: body.SessionToken,
    expiration: Number.isNaN(expiration.getTime()) ? new Date(now() + 3600_000) : expiration,
  };
}

const MARGIN_MS = 5 * 60_000;

/** A credential provider over the registry endpoint: cached until 5 minutes before expiry (or forced), single-flight. */
export function registryCredentialProvider(
  registry: () => Promise<string>,
  token: () => Promise<string>,
  refusedHint: string,
  now: () => number = Date.now,
): { provider: (options?: { forceRefresh?: boolean }) => Promise<AwsCredentials>; expiresAt: () => Date | undefined } {
  let current: AwsCredentials | undefined;
  let pending: Promise<AwsCredentials> | undefined;
  const provider = ({ forceRefresh = false }: { forceRefresh?: boolean } = {}): Promise<AwsCredentials> => {
    // Forced: AWS refused the current ones as expired (a fetch under way serves).
    if (forceRefresh && !pending) current = undefined;
    if (current?.expiration && current.expiration.getTime() - MARGIN_MS > now()) return Promise.resolve(current);
    return (pending ??= (async () => fetchRegistryCredentials(await registry(), await token(), refusedHint, now))()
      .then((c) => (current = c))
      .finally(() => {
        pending = undefined;
      }));
  };
  return { provider, expiresAt: () => current?.expiration };
}
