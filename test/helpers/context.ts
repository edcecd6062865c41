/** Runtime contexts in the test process, for tests that call the domain layer or a tool's handler directly. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DesktopAuthService } from '../../src/auth/desktop.js';
import { loadConfig } from '../../src/config.js';
import type { RuntimeContext } from '../../src/context.js';
import { silentLogger } from '../../src/core/log.js';

/**
 * A desktop-mode runtime context in this process whose AWS is the local S3 at `endpoint`, for tests
 * that call the domain layer or a tool's handler directly. Sets the stand-in's keys in process.env,
 * where the SDK's default chain reads them.
 */
export async function s3Context(endpoint: string): Promise<RuntimeContext> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'quilt-mcp-home-'));
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const config = loadConfig(
    [],
    {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_CONFIG_FILE: path.join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
    },
    { platform: 'linux', homedir: home },
  );
  return new DesktopAuthService(config, silentLogger).context();
}
