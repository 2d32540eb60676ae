// One presence shard: the online status of the users whose ids hash here, and which relays
// watch them. It hears each user's 0→1 and 1→0 from the user's channel (`report`) and pushes a
// change only to the relays that registered interest in that user (docs/presence.md).
import { DurableObject } from 'cloudflare:workers';
import { Pusher } from '../../channel/pusher';
import type { PresenceChange, PresenceStatuses, UserStatus } from '../../protocol/presence';
import { relayStubByName } from '../broadcast/kind';

export class PresenceShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #pusher: Pusher<PresenceChange>;
  #online: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS ps_users (user_id TEXT PRIMARY KEY,
      online INTEGER NOT NULL, version INTEGER NOT NULL, since INTEGER NOT NULL)`);
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS ps_watchers (user_id TEXT NOT NULL,
      relay TEXT NOT NULL, PRIMARY KEY (user_id, relay))`);
    this.#pusher = new Pusher(
      `PresenceShard ${ctx.id.name}`,
      (relay, changes) => relayStubByName(env, relay).presenceChanged(changes),
      (p) => ctx.waitUntil(p),
    );
  }

  /** A user's device count on their user channel went 0→1 or 1→0 (see `reportPresence`). */
  report(userId: string, online: boolean, version: number, at: number): void {
    const row = this.#sql
      .exec<{ online: number; version: number }>(
        'SELECT online, version FROM ps_users WHERE user_id = ?',
        userId,
      )
      .toArray()[0];
    if (row && row.version >= version) return; // late or repeated: a newer report is here
    const was = row?.online === 1;
    this.#sql.exec(
      `INSERT INTO ps_users (user_id, online, version, since) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET online = excluded.online, version = excluded.version,
         since = CASE WHEN ps_users.online = excluded.online THEN ps_users.since ELSE excluded.since END`,
      userId,
      online ? 1 : 0,
      version,
      at,
    );
    if (was === online) return;
    if (this.#online !== null) this.#online += online ? 1 : -1;
    const change: PresenceChange = { userId, online, at, version };
    for (const { relay } of this.#sql.exec<{ relay: string }>(
      'SELECT relay FROM ps_watchers WHERE user_id = ?',
      userId,
    )) {
      this.#pusher.push(relay, change);
    }
  }

  /** A relay watches these users from now on; answers their current status. */
  watch(relay: string, ids: string[]): PresenceStatuses {
    for (const id of ids) {
      this.#sql.exec('INSERT OR IGNORE INTO ps_watchers (user_id, relay) VALUES (?, ?)', id, relay);
    }
    return this.statuses(ids);
  }

  /** The relay no longer has a socket watching these users. */
  unwatch(relay: string, ids: string[]): void {
    for (const id of ids) {
      this.#sql.exec('DELETE FROM ps_watchers WHERE user_id = ? AND relay = ?', id, relay);
    }
  }

  statuses(ids: string[]): PresenceStatuses {
    const out: PresenceStatuses = {};
    for (const id of ids) out[id] = this.#status(id);
    return out;
  }

  /** Users online in this shard. */
  onlineCount(): number {
    this.#online ??= this.#sql
      .exec<{ n: number }>('SELECT COUNT(*) AS n FROM ps_users WHERE online = 1')
      .one().n;
    return this.#online;
  }

  /** How many relays watch how many users here (operators, tests). */
  watchers(): { relays: number; pairs: number } {
    return this.#sql
      .exec<{ relays: number; pairs: number }>(
        'SELECT COUNT(DISTINCT relay) AS relays, COUNT(*) AS pairs FROM ps_watchers',
      )
      .one();
  }

  #status(userId: string): UserStatus {
    const row = this.#sql
      .exec<{ online: number; version: number; since: number }>(
        'SELECT online, version, since FROM ps_users WHERE user_id = ?',
        userId,
      )
      .toArray()[0];
    if (!row) return { online: false, since: null, version: 0 };
    return { online: row.online === 1, since: row.since, version: row.version };
  }
}
