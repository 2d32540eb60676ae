// Who may not chat on this station. Kept in the DO's SQLite (checked on every send and
// connect without a D1 read); every change is also recorded in D1 `moderation_actions`.
import type { ModerationAction } from '../../protocol/stream';

export interface ModerationStatus {
  muted: boolean;
  /** When the mute ends; null while muted means until lifted. */
  mutedUntil: number | null;
  banned: boolean;
  bannedUntil: number | null;
}

export interface ActiveRestriction {
  userId: string;
  kind: 'mute' | 'ban';
  until: number | null;
  by: string;
  reason: string | null;
  at: number;
}

const NONE: ModerationStatus = { muted: false, mutedUntil: null, banned: false, bannedUntil: null };

export class ModerationBook {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS stream_moderation (
      user_id TEXT NOT NULL, kind TEXT NOT NULL, until INTEGER, by TEXT NOT NULL,
      reason TEXT, at INTEGER NOT NULL, PRIMARY KEY (user_id, kind))`);
  }

  status(userId: string, now = Date.now()): ModerationStatus {
    const rows = this.sql
      .exec<{ kind: string; until: number | null }>(
        'SELECT kind, until FROM stream_moderation WHERE user_id = ? AND (until IS NULL OR until > ?)',
        userId,
        now,
      )
      .toArray();
    if (rows.length === 0) return NONE;
    const mute = rows.find((r) => r.kind === 'mute');
    const ban = rows.find((r) => r.kind === 'ban');
    return {
      muted: mute !== undefined,
      mutedUntil: mute?.until ?? null,
      banned: ban !== undefined,
      bannedUntil: ban?.until ?? null,
    };
  }

  apply(
    userId: string,
    action: ModerationAction,
    until: number | null,
    by: string,
    reason: string | null,
    now = Date.now(),
  ): void {
    switch (action) {
      case 'mute':
      case 'ban':
        this.sql.exec(
          `INSERT INTO stream_moderation (user_id, kind, until, by, reason, at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(user_id, kind) DO UPDATE SET until = excluded.until, by = excluded.by,
             reason = excluded.reason, at = excluded.at`,
          userId,
          action,
          until,
          by,
          reason,
          now,
        );
        return;
      case 'unmute':
        this.sql.exec("DELETE FROM stream_moderation WHERE user_id = ? AND kind = 'mute'", userId);
        return;
      case 'unban':
        this.sql.exec("DELETE FROM stream_moderation WHERE user_id = ? AND kind = 'ban'", userId);
        return;
    }
  }

  active(now = Date.now()): ActiveRestriction[] {
    this.sql.exec('DELETE FROM stream_moderation WHERE until IS NOT NULL AND until <= ?', now);
    return this.sql
      .exec<{
        user_id: string;
        kind: string;
        until: number | null;
        by: string;
        reason: string | null;
        at: number;
      }>('SELECT user_id, kind, until, by, reason, at FROM stream_moderation ORDER BY at')
      .toArray()
      .map((r) => ({
        userId: r.user_id,
        kind: r.kind === 'ban' ? 'ban' : 'mute',
        until: r.until,
        by: r.by,
        reason: r.reason,
        at: r.at,
      }));
  }
}
