// Presence watches held by a relay (docs/presence.md): which of its sockets watch which users, and
// the last status it heard of each watched user. The relay registers with a user's shard once,
// however many of its sockets watch that user, and unregisters when the last one stops.
import { ChannelError } from '../../channel/errors';
import { ErrorCode } from '../../protocol/core';
import {
  MAX_WATCH_IDS,
  type PresenceChange,
  type PresenceStatuses,
  type UserStatus,
} from '../../protocol/presence';
import { byShard, shardStub } from '../presence/kind';

export class RelayWatches {
  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
    private readonly relay: string,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS relay_watches (cid TEXT NOT NULL, user_id TEXT NOT NULL,
      PRIMARY KEY (cid, user_id))`);
    sql.exec('CREATE INDEX IF NOT EXISTS relay_watches_user ON relay_watches (user_id)');
    sql.exec(`CREATE TABLE IF NOT EXISTS relay_status (user_id TEXT PRIMARY KEY,
      online INTEGER NOT NULL, since INTEGER, version INTEGER NOT NULL)`);
  }

  /**
   * Replaces what connection `cid` watches with `ids` and answers their current status. Callers
   * run it exclusively (one watch change at a time per relay).
   */
  async watch(cid: string, ids: readonly string[]): Promise<PresenceStatuses> {
    const wanted = [...new Set(ids)];
    if (wanted.length > MAX_WATCH_IDS) {
      throw new ChannelError(
        ErrorCode.tooManyIds,
        `at most ${MAX_WATCH_IDS} ids per watch (got ${wanted.length})`,
        400,
      );
    }
    const before = this.#idsOf(cid);
    const added = wanted.filter((id) => !this.#watched(id));
    this.sql.exec('DELETE FROM relay_watches WHERE cid = ?', cid);
    for (const id of wanted) {
      this.sql.exec('INSERT INTO relay_watches (cid, user_id) VALUES (?, ?)', cid, id);
    }
    const dropped = before.filter((id) => !this.#watched(id));
    await Promise.all([this.#register(added), this.#unregister(dropped)]);
    const statuses: PresenceStatuses = {};
    for (const id of wanted) statuses[id] = this.#status(id);
    return statuses;
  }

  /** A connection left: it watches nothing any more. */
  async drop(cid: string): Promise<void> {
    const before = this.#idsOf(cid);
    if (before.length === 0) return;
    this.sql.exec('DELETE FROM relay_watches WHERE cid = ?', cid);
    await this.#unregister(before.filter((id) => !this.#watched(id)));
  }

  /**
   * Changes pushed by a shard: each newer than what the relay knows goes to the connections that
   * watch the user (`send(cids, change)`), in the order the shard sent them.
   */
  changed(changes: PresenceChange[], send: (cids: string[], change: PresenceChange) => void): void {
    for (const change of changes) {
      const cids = this.sql
        .exec<{ cid: string }>('SELECT cid FROM relay_watches WHERE user_id = ?', change.userId)
        .toArray()
        .map((r) => r.cid);
      if (cids.length === 0) continue; // nobody here watches this user any more
      if (!this.#remember(change.userId, change)) continue;
      send(cids, change);
    }
  }

  async #register(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const answers = await Promise.all(
      [...byShard(this.env, ids)].map(([shard, list]) =>
        shardStub(this.env, shard).watch(this.relay, list),
      ),
    );
    for (const statuses of answers) {
      for (const [id, status] of Object.entries(statuses)) this.#remember(id, status);
    }
  }

  async #unregister(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.sql.exec('DELETE FROM relay_status WHERE user_id = ?', id);
    await Promise.all(
      [...byShard(this.env, ids)].map(([shard, list]) =>
        shardStub(this.env, shard).unwatch(this.relay, list),
      ),
    );
  }

  /** Keeps a status if it is newer than the one known; true when it was. */
  #remember(
    userId: string,
    status: { online: boolean; version: number; since?: number | null; at?: number },
  ): boolean {
    const known = this.sql
      .exec<{ version: number }>('SELECT version FROM relay_status WHERE user_id = ?', userId)
      .toArray()[0];
    if (known && known.version >= status.version) return false;
    this.sql.exec(
      `INSERT INTO relay_status (user_id, online, since, version) VALUES (?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET online = excluded.online, since = excluded.since,
         version = excluded.version`,
      userId,
      status.online ? 1 : 0,
      status.since ?? status.at ?? null,
      status.version,
    );
    return true;
  }

  #status(userId: string): UserStatus {
    const row = this.sql
      .exec<{ online: number; since: number | null; version: number }>(
        'SELECT online, since, version FROM relay_status WHERE user_id = ?',
        userId,
      )
      .toArray()[0];
    if (!row) return { online: false, since: null, version: 0 };
    return { online: row.online === 1, since: row.since, version: row.version };
  }

  #idsOf(cid: string): string[] {
    return this.sql
      .exec<{ user_id: string }>('SELECT user_id FROM relay_watches WHERE cid = ?', cid)
      .toArray()
      .map((r) => r.user_id);
  }

  #watched(userId: string): boolean {
    return (
      this.sql.exec('SELECT 1 FROM relay_watches WHERE user_id = ? LIMIT 1', userId).toArray()
        .length > 0
    );
  }
}
