// Who is listening. Connections and signed-in users come from the core's roster (rebuilt from
// the sockets after hibernation or eviction); anonymous connections are tallied here; the
// session's peak and distinct listeners live in the DO's SQLite. Rules: docs/stations.md.
import type { SequenceLog } from '../../channel/log';
import type { Connection } from '../../channel/room';
import type { ListenerCounts } from '../../protocol/stream';

/** A listener's identity for "distinct over the session": the user, or the connection if anonymous. */
export function listenerKey(conn: Connection): string {
  return conn.userId ? `u:${conn.userId}` : `a:${conn.cid}`;
}

export class Audience {
  // Connection ids, not a number: the welcome counts its own socket before onJoin runs, and
  // counting the same connection twice must change nothing.
  readonly #anonymous = new Set<string>();
  #peak: number;
  #distinct: number;

  constructor(
    private readonly sql: SqlStorage,
    private readonly log: SequenceLog,
    roster: Iterable<Connection>,
  ) {
    sql.exec(
      'CREATE TABLE IF NOT EXISTS stream_listeners (key TEXT PRIMARY KEY, at INTEGER NOT NULL)',
    );
    for (const conn of roster) if (!conn.userId) this.#anonymous.add(conn.cid);
    this.#peak = Number(log.getMeta('peak') ?? '0');
    this.#distinct = sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM stream_listeners').one().n;
  }

  get peak(): number {
    return this.#peak;
  }

  get distinct(): number {
    return this.#distinct;
  }

  /** Counts a connection in (idempotent). */
  joined(conn: Connection, live: boolean): void {
    if (!conn.userId) this.#anonymous.add(conn.cid);
    if (live) this.#remember(conn);
  }

  left(conn: Connection): void {
    this.#anonymous.delete(conn.cid);
  }

  /** Raises the session's peak (durably) when the current count passes it; never lowers it. */
  notePeak(listeners: number): void {
    if (listeners <= this.#peak) return;
    this.#peak = listeners;
    this.log.setMeta('peak', String(listeners));
  }

  counts(users: number, connections: number, live: boolean): ListenerCounts {
    const anonymous = this.#anonymous.size;
    const listeners = users + anonymous;
    return {
      listeners,
      connections,
      users,
      anonymous,
      peak: live ? Math.max(this.#peak, listeners) : this.#peak,
      distinct: this.#distinct,
    };
  }

  /** What a session opened now would start with, without changing anything yet. */
  opening(roster: Iterable<Connection>): { peak: number; distinct: number } {
    const keys = new Set<string>();
    let listeners = 0;
    for (const conn of roster) {
      const key = listenerKey(conn);
      if (!keys.has(key)) listeners += 1;
      keys.add(key);
    }
    return { peak: listeners, distinct: keys.size };
  }

  /** A new session: the peak and the distinct set start from whoever is here now. */
  startSession(roster: Iterable<Connection>, now = Date.now()): void {
    this.sql.exec('DELETE FROM stream_listeners');
    this.#distinct = 0;
    const conns = [...roster];
    for (const conn of conns) this.#remember(conn, now);
    this.#peak = this.opening(conns).peak;
    this.log.setMeta('peak', String(this.#peak));
  }

  #remember(conn: Connection, now = Date.now()): void {
    const inserted = this.sql.exec(
      'INSERT OR IGNORE INTO stream_listeners (key, at) VALUES (?, ?)',
      listenerKey(conn),
      now,
    ).rowsWritten;
    if (inserted > 0) this.#distinct += 1;
  }
}
