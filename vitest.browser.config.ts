// Browser tests: Debian's Chromium (headless, driven by playwright-core) against the web app as
// `wrangler dev` serves it. One server for every file; files run one after another.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['./test/browser/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
