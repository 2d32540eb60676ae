// Who may do what with an event. The access list of a private event is kept in the event's own
// object (the only writer of grants and revokes, seeded once from D1), so the door check of a
// booking, a socket or a read never asks D1.
import { ChannelError } from '../../channel/errors';
import type { EventRow } from '../../db/events';
import { ErrorCode, type PublicUser } from '../../protocol/core';

export interface Grant {
  userId: string;
  grantedAt: number;
}

export class AccessList {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(
      'CREATE TABLE IF NOT EXISTS ev_access (user_id TEXT PRIMARY KEY, granted_at INTEGER NOT NULL)',
    );
  }

  has(userId: string): boolean {
    return this.sql.exec('SELECT 1 FROM ev_access WHERE user_id = ?', userId).toArray().length > 0;
  }

  /** Oldest grant first. */
  list(): Grant[] {
    return this.sql
      .exec<{ userId: string; grantedAt: number }>(
        'SELECT user_id AS userId, granted_at AS grantedAt FROM ev_access ORDER BY granted_at, user_id',
      )
      .toArray();
  }

  /** False when the user was on the list already. */
  grant(userId: string, at: number): boolean {
    const added = this.sql.exec(
      'INSERT OR IGNORE INTO ev_access (user_id, granted_at) VALUES (?, ?) RETURNING user_id',
      userId,
      at,
    );
    return added.toArray().length > 0;
  }

  /** The list D1 had when the object first met the event (seeding). */
  put(grants: Grant[]): void {
    for (const g of grants) {
      this.sql.exec(
        'INSERT OR IGNORE INTO ev_access (user_id, granted_at) VALUES (?, ?)',
        g.userId,
        g.grantedAt,
      );
    }
  }

  /** False when the user was not on the list. */
  revoke(userId: string): boolean {
    const removed = this.sql.exec(
      'DELETE FROM ev_access WHERE user_id = ? RETURNING user_id',
      userId,
    );
    return removed.toArray().length > 0;
  }
}

/** Organisers manage their own events; admins manage every event. */
export function canManage(event: Pick<EventRow, 'organiserId'>, user: PublicUser | null): boolean {
  return !!user && (user.role === 'admin' || event.organiserId === user.id);
}

/** Public events are open to everyone; private ones to the organiser, admins and the access list. */
export function canSee(
  event: Pick<EventRow, 'organiserId' | 'visibility'>,
  user: PublicUser | null,
  access: AccessList,
): boolean {
  if (event.visibility === 'public') return true;
  if (!user) return false;
  return canManage(event, user) || access.has(user.id);
}

/** Refuses a caller who may not see the event: 401 when anonymous, 403 otherwise. */
export function mustSee(
  event: Pick<EventRow, 'organiserId' | 'visibility'>,
  user: PublicUser | null,
  access: AccessList,
): void {
  if (canSee(event, user, access)) return;
  if (!user) throw new ChannelError(ErrorCode.authRequired, 'this event is private; sign in', 401);
  throw new ChannelError(ErrorCode.eventAccessDenied, 'this event is private', 403);
}

export function mustManage(event: Pick<EventRow, 'organiserId'>, user: PublicUser, what: string) {
  if (!canManage(event, user)) {
    throw new ChannelError(
      ErrorCode.forbidden,
      `only the event's organiser or an admin may ${what}`,
      403,
    );
  }
}
