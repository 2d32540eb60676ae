// Notification inboxes and session revocations in D1. A user's channel object is the single
// writer of their inbox; it writes here through its outbox, so every writer is idempotent.
// The fan-out queue reads its recipients here (favouriters of a station, holders of an event).
import { and, asc, eq, gt, sql } from 'drizzle-orm';
import { db, schema } from './client';

export interface NotificationRow {
  id: string;
  userId: string;
  n: number;
  kind: string;
  title: string;
  body: string;
  link: string | null;
  data: string | null;
  sourceKey: string | null;
  createdAt: number;
}

/** What a read wrote in the object: the ids it marked, or "everything up to n" (read-all, upTo). */
export type ReadMirror =
  | { userId: string; readAt: number; ids: string[] }
  | { userId: string; readAt: number; maxN: number; upTo: number | null };

export const notificationWriters = {
  'notification.created': (d1: D1Database, row: NotificationRow): D1PreparedStatement[] => [
    d1
      .prepare(
        `INSERT INTO notifications (id, user_id, n, kind, title, body, link, data, source_key, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .bind(
        row.id,
        row.userId,
        row.n,
        row.kind,
        row.title,
        row.body,
        row.link,
        row.data,
        row.sourceKey,
        row.createdAt,
      ),
  ],
  'notifications.read': (d1: D1Database, mark: ReadMirror): D1PreparedStatement[] => {
    if ('ids' in mark) {
      return chunks(mark.ids, 90).map((ids) =>
        d1
          .prepare(
            `UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL
             AND id IN (${ids.map(() => '?').join(',')})`,
          )
          .bind(mark.readAt, mark.userId, ...ids),
      );
    }
    return [
      d1
        .prepare(
          `UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL AND n <= ?
           AND (? IS NULL OR created_at <= ?)`,
        )
        .bind(mark.readAt, mark.userId, mark.maxN, mark.upTo, mark.upTo),
    ];
  },
};

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Unread rows in D1 (tests and operators: the object's count must equal this once D1 caught up). */
export async function unreadInD1(d1: D1Database, userId: string): Promise<number> {
  const t = schema.notifications;
  const row = await db(d1)
    .select({ n: sql<number>`count(*)` })
    .from(t)
    .where(and(eq(t.userId, userId), sql`${t.readAt} IS NULL`))
    .get();
  return row?.n ?? 0;
}

/** Users who favourited a station, in id order after `after` (the fan-out's pages). */
export async function favouritersPage(
  d1: D1Database,
  stationId: string,
  after: string | null,
  limit: number,
): Promise<string[]> {
  const t = schema.stationFavourites;
  const rows = await db(d1)
    .select({ userId: t.userId })
    .from(t)
    .where(and(eq(t.stationId, stationId), after === null ? undefined : gt(t.userId, after)))
    .orderBy(asc(t.userId))
    .limit(limit);
  return rows.map((r) => r.userId);
}

/** Users holding a valid ticket for an event, in id order after `after`. */
export async function holdersPage(
  d1: D1Database,
  eventId: string,
  after: string | null,
  limit: number,
): Promise<string[]> {
  const t = schema.tickets;
  const rows = await db(d1)
    .selectDistinct({ userId: t.holderId })
    .from(t)
    .where(
      and(
        eq(t.eventId, eventId),
        eq(t.status, 'valid'),
        after === null ? undefined : gt(t.holderId, after),
      ),
    )
    .orderBy(asc(t.holderId))
    .limit(limit);
  return rows.map((r) => r.userId);
}

/** When the user last logged out everywhere (epoch ms), or null. */
export async function revokedAt(d1: D1Database, userId: string): Promise<number | null> {
  const row = await d1
    .prepare('SELECT revoked_at AS at FROM session_revocations WHERE user_id = ?')
    .bind(userId)
    .first<{ at: number }>();
  return row?.at ?? null;
}

/** Records a revocation; a later one wins, an earlier one changes nothing. */
export async function recordRevocation(d1: D1Database, userId: string, at: number): Promise<void> {
  await d1
    .prepare(
      `INSERT INTO session_revocations (user_id, revoked_at) VALUES (?, ?)
       ON CONFLICT(user_id) DO UPDATE SET revoked_at = MAX(revoked_at, excluded.revoked_at)`,
    )
    .bind(userId, at)
    .run();
}
