import type { AuthUser } from '../auth/tokens';

export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** The signed-in user, or null for an anonymous request. Set by `authenticate`. */
    user: AuthUser | null;
    /** True for a call authenticated with the server key (docs/server-api.md). */
    server?: boolean;
  };
}
