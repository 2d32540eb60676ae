// Events and their access lists in D1. An event is created here; from then on its Durable Object
// is the only writer of its row, seats and access list, and D1 follows from the object's outbox
// (docs/bookings.md). Listings read D1; the object reads it once, to seed itself.
import { and, asc, eq, exists, inArray, or, type SQL } from 'drizzle-orm';
import type { PublicUser } from '../protocol/core';
import { inChunks } from './chunks';
import type { Db } from './client';
import { db, schema } from './client';
import { pageOf, pastCursor } from './paging';

export type EventRow = typeof schema.events.$inferSelect;
export type BookingRow = typeof schema.bookings.$inferSelect;
export type TicketRow = typeof schema.tickets.$inferSelect;

export function findEvent(database: Db, eventId: string): Promise<EventRow | undefined> {
  return database.query.events.findFirst({ where: eq(schema.events.id, eventId) });
}

/** An event's access list, oldest grant first (read once, to seed the event's object). */
export function accessOf(d1: D1Database, eventId: string) {
  const a = schema.eventAccess;
  return db(d1)
    .select({ userId: a.userId, grantedAt: a.grantedAt })
    .from(a)
    .where(eq(a.eventId, eventId))
    .orderBy(asc(a.grantedAt), asc(a.userId));
}

export async function existingUsers(database: Db, userIds: string[]): Promise<Set<string>> {
  const rows = await inChunks(userIds, (chunk) =>
    database
      .select({ id: schema.users.id })
      .from(schema.users)
      .where(inArray(schema.users.id, chunk)),
  );
  return new Set(rows.map((r) => r.id));
}

/** The fields of an event its organiser may edit, with the seats, as the object holds them. */
export type EventState = Omit<EventRow, 'organiserId' | 'createdAt' | 'cancelledAt'>;

export interface AccessRow {
  eventId: string;
  userId: string;
  grantedAt: number;
}

// Outbox writers for what an event's object commits besides bookings (docs/architecture.md,
// "One commit point"): absolute values and inserts that do nothing twice, applied in order.
export const eventWriters = {
  'event.updated': (d1: D1Database, e: EventState): D1PreparedStatement[] => [
    d1
      .prepare(
        `UPDATE events SET title = ?1, description = ?2, venue = ?3, starts_at = ?4,
           capacity = ?5, booked_seats = ?6, visibility = ?7, updated_at = ?8
         WHERE id = ?9`,
      )
      .bind(
        e.title,
        e.description,
        e.venue,
        e.startsAt,
        e.capacity,
        e.bookedSeats,
        e.visibility,
        e.updatedAt,
        e.id,
      ),
  ],
  'event.cancelled': (
    d1: D1Database,
    e: { id: string; cancelledAt: number },
  ): D1PreparedStatement[] => [
    d1
      .prepare(
        'UPDATE events SET cancelled_at = ?1, updated_at = ?1 WHERE id = ?2 AND cancelled_at IS NULL',
      )
      .bind(e.cancelledAt, e.id),
  ],
  'access.granted': (d1: D1Database, a: AccessRow): D1PreparedStatement[] => [
    d1
      .prepare(
        'INSERT INTO event_access (event_id, user_id, granted_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING',
      )
      .bind(a.eventId, a.userId, a.grantedAt),
  ],
  'access.revoked': (d1: D1Database, a: Omit<AccessRow, 'grantedAt'>): D1PreparedStatement[] => [
    d1
      .prepare('DELETE FROM event_access WHERE event_id = ?1 AND user_id = ?2')
      .bind(a.eventId, a.userId),
  ],
};

/**
 * A page of the events `user` may see, soonest first: public events, plus the private ones
 * they organise or are listed on; admins see all.
 */
export async function listVisibleEvents(
  d1: D1Database,
  user: PublicUser | null,
  q: { limit: number; after?: string },
): Promise<{ page: EventRow[]; nextCursor: string | null }> {
  const database = db(d1);
  const e = schema.events;
  const a = schema.eventAccess;
  const visible: SQL | undefined =
    user?.role === 'admin'
      ? undefined
      : user
        ? or(
            eq(e.visibility, 'public'),
            eq(e.organiserId, user.id),
            exists(
              database
                .select({ one: a.userId })
                .from(a)
                .where(and(eq(a.eventId, e.id), eq(a.userId, user.id))),
            ),
          )
        : eq(e.visibility, 'public');
  const rows = await database
    .select()
    .from(e)
    .where(and(visible, pastCursor(e.startsAt, e.id, q.after, 'asc')))
    .orderBy(asc(e.startsAt), asc(e.id))
    .limit(q.limit + 1);
  return pageOf(rows, q.limit, (r) => [r.startsAt, r.id]);
}

/** Creates the event and its access list in one transaction. */
export async function insertEvent(
  d1: D1Database,
  row: EventRow,
  accessUserIds: readonly string[],
): Promise<void> {
  const database = db(d1);
  const access = accessUserIds.map((userId) =>
    database
      .insert(schema.eventAccess)
      .values({ eventId: row.id, userId, grantedAt: row.createdAt }),
  );
  await database.batch([database.insert(schema.events).values(row), ...access]);
}
