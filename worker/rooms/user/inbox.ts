// One user's notification inbox, in their channel object's SQLite: the rows, the unread count
// (counted from the rows, so it cannot drift from them) and one row per source key, so a retried
// source delivers once. D1 follows through the outbox (worker/db/notifications.ts).
import type { NotificationRow, ReadMirror } from '../../db/notifications';
import type { JsonValue, Notification } from '../../protocol/user';

interface Row extends Record<string, SqlStorageValue> {
  n: number;
  id: string;
  kind: string;
  title: string;
  body: string;
  link: string | null;
  data: string | null;
  created_at: number;
  read_at: number | null;
}

const COLUMNS = 'n, id, kind, title, body, link, data, created_at, read_at';

function toNotification(row: Row): Notification {
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    body: row.body,
    link: row.link,
    data: row.data === null ? null : (JSON.parse(row.data) as { [key: string]: JsonValue }),
    createdAt: row.created_at,
    readAt: row.read_at,
  };
}

export interface NewNotification {
  kind: string;
  title: string;
  body: string;
  link: string | null;
  data: { [key: string]: JsonValue } | null;
  key: string | null;
}

export class Inbox {
  constructor(
    private readonly sql: SqlStorage,
    private readonly userId: string,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS inbox (n INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
      link TEXT, data TEXT, source_key TEXT UNIQUE, created_at INTEGER NOT NULL, read_at INTEGER)`);
    sql.exec('CREATE INDEX IF NOT EXISTS inbox_unread ON inbox (n) WHERE read_at IS NULL');
  }

  unread(): number {
    return this.sql
      .exec<{ c: number }>('SELECT COUNT(*) AS c FROM inbox WHERE read_at IS NULL')
      .one().c;
  }

  /** Newest first, strictly before the cursor (`n` of the last row of the previous page). */
  page(
    limit: number,
    before: number | null,
    unreadOnly: boolean,
  ): { notifications: Notification[]; nextCursor: string | null } {
    const rows = this.sql
      .exec<Row>(
        `SELECT ${COLUMNS} FROM inbox WHERE n < ? ${unreadOnly ? 'AND read_at IS NULL' : ''}
         ORDER BY n DESC LIMIT ?`,
        before ?? Number.MAX_SAFE_INTEGER,
        limit + 1,
      )
      .toArray();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      notifications: page.map(toNotification),
      nextCursor: rows.length > limit && last ? String(last.n) : null,
    };
  }

  bySource(key: string): Notification | null {
    const row = this.sql
      .exec<Row>(`SELECT ${COLUMNS} FROM inbox WHERE source_key = ?`, key)
      .toArray()[0];
    return row ? toNotification(row) : null;
  }

  /** Inserts (inside a commit); the row D1 gets comes back with it. */
  insert(
    input: NewNotification,
    now: number,
  ): { notification: Notification; row: NotificationRow } {
    const id = crypto.randomUUID();
    const data = input.data ? JSON.stringify(input.data) : null;
    const n = this.sql
      .exec<{ n: number }>(
        `INSERT INTO inbox (id, kind, title, body, link, data, source_key, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING n`,
        id,
        input.kind,
        input.title,
        input.body,
        input.link,
        data,
        input.key,
        now,
      )
      .one().n;
    const notification: Notification = {
      id,
      kind: input.kind,
      title: input.title,
      body: input.body,
      link: input.link,
      data: input.data,
      createdAt: now,
      readAt: null,
    };
    const row: NotificationRow = {
      id,
      userId: this.userId,
      n,
      kind: input.kind,
      title: input.title,
      body: input.body,
      link: input.link,
      data,
      sourceKey: input.key,
      createdAt: now,
    };
    return { notification, row };
  }

  /** The ids that are not in this inbox (someone else's, or none at all). */
  missing(ids: string[]): string[] {
    const unique = [...new Set(ids)];
    const found = new Set(
      this.sql
        .exec<{ id: string }>(
          `SELECT id FROM inbox WHERE id IN (${unique.map(() => '?').join(',')})`,
          ...unique,
        )
        .toArray()
        .map((r) => r.id),
    );
    return unique.filter((id) => !found.has(id));
  }

  /** Marks these (inside a commit); returns the ids that were unread, and how D1 follows. */
  markIds(ids: string[], now: number): { ids: string[]; mirror: ReadMirror } {
    const unique = [...new Set(ids)];
    const marked = this.sql
      .exec<{ id: string }>(
        `UPDATE inbox SET read_at = ? WHERE read_at IS NULL
         AND id IN (${unique.map(() => '?').join(',')}) RETURNING id`,
        now,
        ...unique,
      )
      .toArray()
      .map((r) => r.id);
    return { ids: marked, mirror: { userId: this.userId, readAt: now, ids: marked } };
  }

  /** Marks everything (or everything created at or before `upTo`) that is unread. */
  markUpTo(upTo: number | null, now: number): { marked: number; mirror: ReadMirror } {
    const maxN = this.sql.exec<{ n: number | null }>('SELECT MAX(n) AS n FROM inbox').one().n;
    const marked = this.sql
      .exec(
        `UPDATE inbox SET read_at = ? WHERE read_at IS NULL AND (? IS NULL OR created_at <= ?)
         RETURNING n`,
        now,
        upTo,
        upTo,
      )
      .toArray().length;
    return { marked, mirror: { userId: this.userId, readAt: now, maxN: maxN ?? 0, upTo } };
  }
}
