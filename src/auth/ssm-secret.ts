/**
 * MCP_JWT_SECRET_SSM_PARAMETER (the catalog stacks' MCP_ENHANCED_JWT_SECRET_SSM_PARAMETER): the
 * HS256 secret is read from an SSM parameter once, at start, with the server's own identity (the
 * container's sources only, as for sts:AssumeRole: never ~/.aws or AWS_PROFILE), decrypted when it
 * is a SecureString. A failure stops the start with what to fix: a server that cannot verify
 * tokens must not take traffic.
 */
import { containerCredentials } from '../aws/container-credentials.js';
import type { Config } from '../config.js';
import type { Logger } from '../core/log.js';

export class SsmSecretError extends Error {
  override name = 'SsmSecretError';
}

const FALLBACK_REGION = 'us-east-1';

/** The region of a parameter ARN, else the server's. */
function regionOf(parameter: string, configured: string | undefined): string {
  return /^arn:aws[a-z-]*:ssm:([a-z0-9-]+):/.exec(parameter)?.[1] ?? configured ?? FALLBACK_REGION;
}

/** Reads the secret and returns the configuration with it (and with it as the cursor key when none is set). */
export async function withSecretFromSsm(config: Config, logger: Logger): Promise<Config> {
  const name = config.jwt.secretSsmParameter;
  if (!name) return config;
  const region = regionOf(name, config.aws.region);
  const { SSMClient, GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const client = new SSMClient({
    region,
    credentials: containerCredentials({ region, stsEndpoint: config.aws.endpoints.sts, source: config.aws.ownIdentity }),
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000, throwOnRequestTimeout: true },
    ...(config.aws.endpoints.ssm ? { endpoint: config.aws.endpoints.ssm } : {}),
  });
  let value: string | undefined;
  try {
    const out = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    value = out.Parameter?.Value;
  } catch (err) {
    throw new SsmSecretError(describe(err, name, region));
  } finally {
    client.destroy();
  }
  if (!value || value.length < 32) {
    throw new SsmSecretError(
      `The SSM parameter ${name} holds ${value ? `${value.length} characters` : 'no value'}; the HS256 secret must be at least 32 characters (the value is not shown).`,
    );
  }
  logger.info('Read the JWT secret from SSM', { parameter: name, region });
  return { ...config, jwt: { ...config.jwt, secret: value }, cursorSecret: config.cursorSecret ?? value };
}

function describe(err: unknown, name: string, region: string): string {
  const e = err as { name?: string; message?: string };
  const what = `Could not read the JWT secret from the SSM parameter ${name} (${region})`;
  switch (e.name) {
    case 'ParameterNotFound':
      return `${what}: it does not exist. Create it (aws ssm put-parameter --type SecureString --name ${name} --value ...) or fix the name; a parameter in another region is named by its ARN.`;
    case 'AccessDeniedException':
    case 'AccessDenied':
      return `${what}: access denied. The server's own identity (the task role) needs ssm:GetParameter on this parameter, and kms:Decrypt on its key for a SecureString.`;
    case 'ParameterVersionNotFound':
      return `${what}: that version does not exist.`;
    case 'CredentialsProviderError':
      return `${what}: ${e.message ?? 'the server has no AWS identity of its own'}`;
    default:
      return `${what}: ${e.name ?? 'error'}${e.message ? `: ${e.message.slice(0, 200)}` : ''}`;
  }
}
