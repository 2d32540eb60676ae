// A relay's copy of the active announcements, in its SQLite so a welcome after hibernation needs
// no call to the root.
import type { Announcement } from '../../protocol/broadcast';

export class RelayAnnouncements {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS relay_announcements (id TEXT PRIMARY KEY,
      created_at INTEGER NOT NULL, json TEXT NOT NULL)`);
  }

  has(id: string): boolean {
    return this.sql.exec('SELECT 1 FROM relay_announcements WHERE id = ?', id).toArray().length > 0;
  }

  add(a: Announcement): boolean {
    if (this.has(a.id)) return false;
    this.sql.exec(
      'INSERT INTO relay_announcements (id, created_at, json) VALUES (?, ?, ?)',
      a.id,
      a.createdAt,
      JSON.stringify(a),
    );
    return true;
  }

  remove(id: string): boolean {
    if (!this.has(id)) return false;
    this.sql.exec('DELETE FROM relay_announcements WHERE id = ?', id);
    return true;
  }

  ids(): string[] {
    return this.sql
      .exec<{ id: string }>('SELECT id FROM relay_announcements')
      .toArray()
      .map((r) => r.id);
  }

  /** Active ones, oldest first (one past its expiry is left out even before the root says so). */
  active(now = Date.now()): Announcement[] {
    return this.sql
      .exec<{ json: string }>('SELECT json FROM relay_announcements ORDER BY created_at, id')
      .toArray()
      .map((r) => JSON.parse(r.json) as Announcement)
      .filter((a) => a.expiresAt === null || a.expiresAt > now);
  }
}
