// Events, their access lists, bookings and tickets as read from D1, and the event edits an
// EventRoom commits. The room is the only writer of an event's row and inventory.
import { and, asc, eq, exists, inArray, lte, or, type SQL } from 'drizzle-orm';
import type { PublicUser } from '../protocol/core';
import type { EventChanges } from '../protocol/events';
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

export async function findBooking(
  database: Db,
  bookingId: string,
): Promise<{ booking: BookingRow; tickets: TicketRow[] } | undefined> {
  const booking = await database.query.bookings.findFirst({
    where: eq(schema.bookings.id, bookingId),
  });
  if (!booking) return undefined;
  const tickets = await database
    .select()
    .from(schema.tickets)
    .where(eq(schema.tickets.bookingId, bookingId))
    .orderBy(asc(schema.tickets.createdAt), asc(schema.tickets.id));
  return { booking, tickets };
}

export function findTicket(database: Db, ticketId: string): Promise<TicketRow | undefined> {
  return database.query.tickets.findFirst({ where: eq(schema.tickets.id, ticketId) });
}

/** Is the user on the event's access list? */
export async function onAccessList(
  database: Db,
  eventId: string,
  userId: string,
): Promise<boolean> {
  const a = schema.eventAccess;
  const row = await database
    .select({ userId: a.userId })
    .from(a)
    .where(and(eq(a.eventId, eventId), eq(a.userId, userId)))
    .limit(1);
  return row.length > 0;
}

/** The subset of `userIds` on the event's access list. */
export async function withAccess(
  database: Db,
  eventId: string,
  userIds: string[],
): Promise<Set<string>> {
  const a = schema.eventAccess;
  const rows = await inChunks(userIds, (chunk) =>
    database
      .select({ userId: a.userId })
      .from(a)
      .where(and(eq(a.eventId, eventId), inArray(a.userId, chunk))),
  );
  return new Set(rows.map((r) => r.userId));
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

/** Applies an edit; capacity can never drop below the confirmed seats (guarded in D1). */
export async function updateEventRow(
  d1: D1Database,
  eventId: string,
  changes: EventChanges,
  now: number,
): Promise<EventRow | undefined> {
  const e = schema.events;
  const [row] = await db(d1)
    .update(e)
    .set({ ...changes, updatedAt: now })
    .where(
      and(
        eq(e.id, eventId),
        changes.capacity === undefined ? undefined : lte(e.bookedSeats, changes.capacity),
      ),
    )
    .returning();
  return row;
}

/** Adds a user to the access list; false when they were already on it. */
export async function grantEventAccess(
  d1: D1Database,
  eventId: string,
  userId: string,
  now: number,
) {
  const inserted = await db(d1)
    .insert(schema.eventAccess)
    .values({ eventId, userId, grantedAt: now })
    .onConflictDoNothing()
    .returning({ userId: schema.eventAccess.userId });
  return inserted.length > 0;
}

/** Removes a user from the access list; false when they were not on it. */
export async function revokeEventAccess(d1: D1Database, eventId: string, userId: string) {
  const a = schema.eventAccess;
  const removed = await db(d1)
    .delete(a)
    .where(and(eq(a.eventId, eventId), eq(a.userId, userId)))
    .returning({ userId: a.userId });
  return removed.length > 0;
}

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

/** An event's access list, oldest grant first. */
export function listAccess(d1: D1Database, eventId: string) {
  const a = schema.eventAccess;
  return db(d1)
    .select({ userId: a.userId, grantedAt: a.grantedAt })
    .from(a)
    .where(eq(a.eventId, eventId))
    .orderBy(asc(a.grantedAt), asc(a.userId));
}
