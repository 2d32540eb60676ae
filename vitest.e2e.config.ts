// End-to-end tests: a real `wrangler dev` on a free loopback port, driven by real clients.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['./test/e2e/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One server for every file; the files run one after another so load tests do not overlap.
    fileParallelism: false,
  },
});
