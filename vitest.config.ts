import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests spawn servers and open ports; two cores do not gain from more parallel files.
    maxWorkers: 2,
  },
});
