// In-runtime tests: the worker and its Durable Objects run in workerd with a local D1.
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      // The real worker plus the test-only probe kind that exercises the channel core alone.
      main: './test/runtime/worker.ts',
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        durableObjects: { PROBE_ROOM: { className: 'ProbeRoom', useSQLite: true } },
        bindings: {
          JWT_SECRET: 'test-secret-0123456789abcdef',
          ADMIN_EMAILS: 'admin@example.test',
          ALLOWED_ORIGINS: 'https://app.example.test',
          // Small enough to reach in a test (docs/protocol.md, "Limits").
          MAX_CONNECTIONS_PER_ADDRESS_PER_CHANNEL: '40',
          MAX_CONNECTIONS_PER_USER: '20',
          // A broadcast tree and presence shards small enough to see every part of in a test.
          BROADCAST_RELAYS: '3',
          BROADCAST_RELAY_CAPACITY: '30',
          PRESENCE_SHARDS: '4',
          // The optional server key (docs/operations.md): set here so /metrics can be read with it.
          SERVER_API_KEY: 'test-server-key-0123456789abcdef0123456789',
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
