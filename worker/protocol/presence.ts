// Platform presence (docs/presence.md): a user is online while at least one of their devices is
// connected to their user channel. Clients watch up to MAX_WATCH_IDS users and hear only those
// users' changes; `GET /api/presence?ids=` answers the same for a batch.
import { z } from 'zod';

// MAX_WATCH_IDS lives in wire.ts (plain values, imported by the browser SDK without zod).
export { MAX_WATCH_IDS } from './wire';

export const userId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a user id');

/** The count limit is checked by the handler, so 501 ids get their own code (`too_many_ids`). */
export const watchIds = z.array(userId);

export interface UserStatus {
  online: boolean;
  /** When the user went online or offline (epoch ms); null if never seen. */
  since: number | null;
  /** Grows with every change of this user; a client keeps the highest it has seen. */
  version: number;
}

export type PresenceStatuses = Record<string, UserStatus>;

export interface PresenceWatchAnswer {
  users: PresenceStatuses;
}

export interface UserOnlineFrame {
  type: 'user.online';
  userId: string;
  at: number;
  version: number;
}

export interface UserOfflineFrame {
  type: 'user.offline';
  userId: string;
  at: number;
  version: number;
}

/** A change as a shard hands it to the relays that watch the user. */
export interface PresenceChange {
  userId: string;
  online: boolean;
  at: number;
  version: number;
}
