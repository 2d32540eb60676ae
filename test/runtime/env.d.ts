import type { D1Migration } from 'cloudflare:test';
import type { ProbeRoom } from '../kinds/probe/ProbeRoom';

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      PROBE_ROOM: DurableObjectNamespace<ProbeRoom>;
    }
  }
  /** The test-only kind's binding (vitest.config.ts), so `defineKind` can name it. */
  interface Env {
    PROBE_ROOM: DurableObjectNamespace<ProbeRoom>;
  }
}
