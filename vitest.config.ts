// In-runtime tests: the worker and its Durable Objects run in workerd with a local D1.
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: {
          JWT_SECRET: 'test-secret-0123456789abcdef',
          ADMIN_EMAILS: 'admin@example.test',
          ALLOWED_ORIGINS: 'https://app.example.test',
          TEST_MIGRATIONS: await readD1Migrations('./migrations'),
        },
      },
    }),
  ],
  test: {
    include: ['test/runtime/**/*.test.ts'],
    setupFiles: ['./test/runtime/apply-migrations.ts'],
    testTimeout: 20_000,
  },
}));
