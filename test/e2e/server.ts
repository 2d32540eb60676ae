// A `wrangler dev` of a test's own, for tests that crash the server or need other `--var`s than
// the suite's: started on a free loopback port with its own persisted state, killed with SIGKILL
// to its whole process group (a real crash), and started again on the same state.
import { DevServer } from '../../scripts/dev-server.mjs';

export { DevServer } from '../../scripts/dev-server.mjs';

export const E2E_SECRET = 'e2e-secret-0123456789abcdef0123';
export const E2E_ADMIN = 'admin@e2e.test';
/** The server API's key on every e2e server (docs/server-api.md). */
export const E2E_SERVER_KEY = 'e2e-server-key-0123456789abcdef0123456789';

/** The `--var`s every e2e server runs with, plus a test's own. */
export function e2eVars(extra: Record<string, string> = {}): Record<string, string> {
  return {
    JWT_SECRET: E2E_SECRET,
    ADMIN_EMAILS: E2E_ADMIN,
    ALLOWED_ORIGINS: 'http://127.0.0.1:5173',
    SERVER_API_KEY: E2E_SERVER_KEY,
    ...extra,
  };
}

/** A server with the e2e secret and admin and the given extra `--var`s; call `start()` on it. */
export function e2eServer(name: string, vars: Record<string, string> = {}): DevServer {
  return new DevServer({ name, vars: e2eVars(vars) });
}
