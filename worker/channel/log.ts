// The channel's sequence log in the DO's SQLite: every durable event gets the next `seq`,
// is kept for a retention window (by count and by age) and replayed to resuming clients.
import type { Sequenced } from '../protocol/core';

export interface Retention {
  maxEvents: number;
  maxAgeMs: number;
}

export type ResumeResult =
  | { recovered: true; events: string[] }
  | { recovered: false; reason: 'epoch_changed' | 'beyond_window' | 'ahead_of_channel' };

export class SequenceLog {
  #seq: number;
  readonly epoch: string;

  constructor(
    private readonly sql: SqlStorage,
    private readonly retention: Retention,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS channel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(
      `CREATE TABLE IF NOT EXISTS channel_log (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, frame TEXT NOT NULL)`,
    );
    this.epoch = this.#meta('epoch') ?? this.#setMeta('epoch', crypto.randomUUID().slice(0, 8));
    this.#seq = Number(this.#meta('seq') ?? '0');
  }

  get seq(): number {
    return this.#seq;
  }

  /** Re-reads the position from storage (after a transaction that appended was rolled back). */
  reload(): void {
    this.#seq = Number(this.#meta('seq') ?? '0');
  }

  /** Numbers, stores and returns the event with its serialised frame. Synchronous, so a
   * caller that broadcasts right after never interleaves with another append. */
  append<E extends { type: string }>(
    event: E,
    now = Date.now(),
  ): { frame: E & Sequenced; json: string } {
    const seq = this.#seq + 1;
    const frame = { ...event, seq };
    const json = JSON.stringify(frame);
    this.sql.exec('INSERT INTO channel_log (seq, at, frame) VALUES (?, ?, ?)', seq, now, json);
    this.#setMeta('seq', String(seq));
    this.#seq = seq;
    if (seq > this.retention.maxEvents) {
      this.sql.exec('DELETE FROM channel_log WHERE seq <= ?', seq - this.retention.maxEvents);
    }
    return { frame, json };
  }

  /** Drops events older than the age window. */
  trim(now = Date.now()): void {
    this.sql.exec('DELETE FROM channel_log WHERE at < ?', now - this.retention.maxAgeMs);
  }

  /** The events after `since`, if the log still holds all of them. */
  resume(since: number, epoch: string, now = Date.now()): ResumeResult {
    if (epoch !== this.epoch) return { recovered: false, reason: 'epoch_changed' };
    if (since > this.#seq) return { recovered: false, reason: 'ahead_of_channel' };
    if (since === this.#seq) return { recovered: true, events: [] };
    this.trim(now);
    const first = this.sql
      .exec<{ seq: number }>('SELECT MIN(seq) AS seq FROM channel_log')
      .one().seq;
    if (first === null || first > since + 1) return { recovered: false, reason: 'beyond_window' };
    const events = this.sql
      .exec<{ frame: string }>('SELECT frame FROM channel_log WHERE seq > ? ORDER BY seq', since)
      .toArray()
      .map((r) => r.frame);
    return { recovered: true, events };
  }

  /** The newest `limit` retained events, oldest first (optionally only those before `before`). */
  recent(limit: number, before?: number): string[] {
    return this.sql
      .exec<{ frame: string }>(
        'SELECT frame FROM channel_log WHERE seq < ? ORDER BY seq DESC LIMIT ?',
        before ?? Number.MAX_SAFE_INTEGER,
        limit,
      )
      .toArray()
      .map((r) => r.frame)
      .reverse();
  }

  /** Number of events currently retained (for tests and monitoring). */
  size(): number {
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM channel_log').one().n;
  }

  #meta(key: string): string | undefined {
    return this.sql
      .exec<{ value: string }>('SELECT value FROM channel_meta WHERE key = ?', key)
      .toArray()[0]?.value;
  }

  #setMeta(key: string, value: string): string {
    this.sql.exec(
      'INSERT INTO channel_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
    return value;
  }

  /** Small key/value store beside the log for a room's own durable settings. */
  getMeta(key: string): string | undefined {
    return this.#meta(key);
  }

  setMeta(key: string, value: string): void {
    this.#setMeta(key, value);
  }
}
