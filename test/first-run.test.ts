/**
 * What a newcomer meets first: a bundle entry with an unfilled placeholder, no AWS credentials at
 * all, a profile that does not exist. Each answer says what is wrong and how to fix it, and
 * nothing on stderr but the server's own lines.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connectStdio, isolatedEnv, objectText } from './helpers/mcp.js';
import { startS3, type LocalS3 } from './helpers/s3.js';

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startS3({ buckets: ['first-run'] });
  await s3.put('first-run', 'hello.txt', 'hello');
});
afterAll(async () => {
  await s3?.close();
});

/** A HOME whose ~/.aws/credentials has a default profile that the local S3 accepts. */
function envWithDefaultProfile(extra: Record<string, string>): Record<string, string> {
  const env = isolatedEnv({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    ...extra,
  });
  mkdirSync(path.dirname(env.AWS_SHARED_CREDENTIALS_FILE ?? ''), { recursive: true });
  writeFileSync(env.AWS_SHARED_CREDENTIALS_FILE ?? '', '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
  return env;
}

describe('a first run', () => {
  it('an unfilled bundle placeholder is unset for the AWS SDK too', async () => {
    // What Claude Desktop passes when the user left the optional "AWS profile" field empty.
    const h = await connectStdio(envWithDefaultProfile({ AWS_PROFILE: '${user_config.aws_profile}' }));
    const r = await call(h.client, 'bucket_object_text', { uri: 's3://first-run/hello.txt' });
    await h.close();
    expect(r.isError, r.text).toBe(false);
    expect(objectText(r).content).toBe('hello');
  });

  it('no credentials anywhere: auth_status and the S3 tools say so, with the fix, not "a bug"', async () => {
    const h = await connectStdio(isolatedEnv({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint }));
    const status = await call(h.client, 'auth_status');
    const list = await call(h.client, 'bucket_objects_list', { bucket: 'first-run' });
    const stderr = h.stderr();
    await h.close();
    expect(status.data.aws.available).toBe(false);
    expect(status.data.aws.error).toContain('No AWS credentials were found');
    expect(status.text).not.toContain('bug');
    expect(list.isError).toBe(true);
    expect(list.text).toContain('No AWS credentials were found');
    expect(list.text).toContain('Fix: Run `quilt3 login`');
    // The AWS SDK's multi-line Node-version warning never reaches the user.
    expect(stderr).not.toContain('NodeVersionSupportWarning');
  });

  it('a profile that does not exist is named in the error', async () => {
    const h = await connectStdio(envWithDefaultProfile({ AWS_PROFILE: 'reserch' }));
    const r = await call(h.client, 'bucket_object_text', { uri: 's3://first-run/hello.txt' });
    await h.close();
    expect(r.isError).toBe(true);
    expect(r.text).toContain('AWS profile "reserch" (from AWS_PROFILE) gave no credentials');
    expect(r.text).toContain('aws configure list-profiles');
  });
});
