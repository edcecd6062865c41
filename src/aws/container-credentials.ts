/**
 * The server's own AWS identity in JWT mode, from the sources a container has and nothing else:
 *
 * 1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 * 2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (EKS IRSA), via AssumeRoleWithWebIdentity;
 * 3. container credentials endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS task role) or
 *    AWS_CONTAINER_CREDENTIALS_FULL_URI (+ AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE], EKS Pod Identity);
 * 4. EC2 instance metadata (IMDSv2), unless AWS_EC2_METADATA_DISABLED=true.
 *
 * The first source that is configured is used, and its failure is final: a misconfigured task role must
 * not silently fall through to the instance's role. The SDK's default chain is not used because it
 * also reads ~/.aws/credentials, ~/.aws/config, SSO caches and credential_process (and AWS_PROFILE
 * selects among them): in a multi-tenant server those are someone's developer keys, not the container's.
 *
 * The providers are the SDK's own, imported on first use (the AWS SDK is not loaded at startup).
 */
import { lazy } from '../core/lazy.js';
import type { OwnIdentitySource } from '../config.js';
import type { AwsCredentials, CredentialProvider } from './clients.js';

export interface ContainerCredentialOptions {
  /** Region for the AssumeRoleWithWebIdentity call (the server's default region). */
  region: string;
  /** Custom STS endpoint (AWS_ENDPOINT_URL_STS), used for AssumeRoleWithWebIdentity too. */
  stsEndpoint?: string | undefined;
  /** The configured source, as config.ts found it (only config.ts reads the environment). */
  source: OwnIdentitySource | undefined;
}

/** The credential sources, in the order they are tried, as the README and errors name them. */
export const CONTAINER_CREDENTIAL_SOURCES =
  'environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), ' +
  'container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), EC2 instance metadata';

/** Thrown when no source is configured; named like the SDK's so fromAwsError maps it to no_credentials. */
export class NoContainerCredentialsError extends Error {
  override name = 'CredentialsProviderError';
}

type SdkProvider = () => Promise<AwsCredentials>;

interface Source {
  name: OwnIdentitySource;
  provider: () => Promise<SdkProvider>;
}

export function containerCredentials(options: ContainerCredentialOptions): CredentialProvider {
  // Each provider is built once: the web identity one keeps its STS client, IMDS its token.
  const sources: Source[] = [
    {
      name: 'environment',
      provider: lazy(async () => (await import('@aws-sdk/credential-provider-env')).fromEnv()),
    },
    {
      name: 'web identity',
      provider: lazy(async () => {
        const { fromTokenFile } = await import('@aws-sdk/credential-provider-web-identity');
        // Region and endpoint given, so the nested STS client needs no profile to find them.
        const provider = fromTokenFile({
          clientConfig: { region: options.region, ...(options.stsEndpoint ? { endpoint: options.stsEndpoint } : {}) },
        });
        return () => provider();
      }),
    },
    {
      name: 'container credentials',
      provider: lazy(async () => {
        // As the SDK's own chain does: fromHttp (ECS and EKS Pod Identity, with the authorization
        // token), then the older container metadata client.
        const [{ fromHttp }, { fromContainerMetadata }] = await Promise.all([
          import('@aws-sdk/credential-provider-http'),
          import('@smithy/credential-provider-imds'),
        ]);
        const http = fromHttp({});
        const metadata = fromContainerMetadata({ timeout: 2_000, maxRetries: 1 });
        return async () => {
          try {
            return await http();
          } catch {
            return metadata();
          }
        };
      }),
    },
    {
      name: 'instance metadata',
      provider: lazy(async () => {
        const { fromInstanceMetadata } = await import('@smithy/credential-provider-imds');
        return fromInstanceMetadata({ timeout: 1_000, maxRetries: 1 });
      }),
    },
  ];

  return async () => {
    const source = sources.find((s) => s.name === options.source);
    if (!source) {
      throw new NoContainerCredentialsError(
        `No credentials for this server's own identity: none of ${CONTAINER_CREDENTIAL_SOURCES} is configured (AWS_EC2_METADATA_DISABLED is set). ~/.aws and AWS_PROFILE are not used in JWT mode.`,
      );
    }
    try {
      return await (await source.provider())();
    } catch (err) {
      throw new NoContainerCredentialsError(
        `No credentials for this server's own identity from ${source.name}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  };
}
