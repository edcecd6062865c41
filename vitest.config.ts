import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests spawn servers and open ports; two cores do not gain from more parallel files.
    maxWorkers: 2,
    // The test processes load the AWS SDK too; its Node-version warning is noise on Node 20 (CI runs 22+).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
