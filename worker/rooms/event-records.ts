// Reading events, bookings and tickets from D1, and who may see an event. Shared by the
// EventRoom and the REST routes so the worker's pre-checks and the room's checks agree.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { schema } from '../db/client';
import type { PublicUser } from '../protocol/core';
import type {
  BookingView,
  EventChannelEvent,
  EventView,
  Seats,
  TicketView,
} from '../protocol/events';

export type EventRow = typeof schema.events.$inferSelect;
export type BookingRow = typeof schema.bookings.$inferSelect;
export type TicketRow = typeof schema.tickets.$inferSelect;

export const eventChannel = (eventId: string) => `event:${eventId}`;

export function eventView(row: EventRow): EventView {
  return {
    id: row.id,
    organiserId: row.organiserId,
    title: row.title,
    description: row.description,
    venue: row.venue,
    startsAt: row.startsAt,
    capacity: row.capacity,
    bookedSeats: row.bookedSeats,
    availableSeats: Math.max(0, row.capacity - row.bookedSeats),
    visibility: row.visibility,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function ticketView(row: TicketRow): TicketView {
  return {
    id: row.id,
    bookingId: row.bookingId,
    eventId: row.eventId,
    holderId: row.holderId,
    status: row.status,
    createdAt: row.createdAt,
  };
}

export function bookingView(row: BookingRow, tickets: TicketRow[]): BookingView {
  return {
    id: row.id,
    eventId: row.eventId,
    userId: row.userId,
    quantity: row.quantity,
    status: row.status,
    createdAt: row.createdAt,
    cancelledAt: row.cancelledAt,
    cancelledBy: row.cancelledBy,
    tickets: tickets.map(ticketView),
  };
}

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

/** Organisers manage their own events; admins manage every event. */
export function canManage(event: Pick<EventRow, 'organiserId'>, user: PublicUser | null): boolean {
  return !!user && (user.role === 'admin' || event.organiserId === user.id);
}

/** Public events are open to everyone; private ones to the organiser, admins and the access list. */
export async function canSee(
  database: Db,
  event: Pick<EventRow, 'id' | 'organiserId' | 'visibility'>,
  user: PublicUser | null,
): Promise<boolean> {
  if (event.visibility === 'public') return true;
  if (!user) return false;
  if (canManage(event, user)) return true;
  const row = await database
    .select({ userId: schema.eventAccess.userId })
    .from(schema.eventAccess)
    .where(and(eq(schema.eventAccess.eventId, event.id), eq(schema.eventAccess.userId, user.id)))
    .limit(1);
  return row.length > 0;
}

/** The subset of `userIds` on the event's access list. */
export async function withAccess(
  database: Db,
  eventId: string,
  userIds: string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  // D1 binds at most 100 parameters a statement.
  for (let i = 0; i < userIds.length; i += 90) {
    const rows = await database
      .select({ userId: schema.eventAccess.userId })
      .from(schema.eventAccess)
      .where(
        and(
          eq(schema.eventAccess.eventId, eventId),
          inArray(schema.eventAccess.userId, userIds.slice(i, i + 90)),
        ),
      );
    for (const r of rows) found.add(r.userId);
  }
  return found;
}

export async function existingUsers(database: Db, userIds: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < userIds.length; i += 90) {
    const rows = await database
      .select({ id: schema.users.id })
      .from(schema.users)
      .where(inArray(schema.users.id, userIds.slice(i, i + 90)));
    for (const r of rows) found.add(r.id);
  }
  return found;
}

type Unsequenced<T> = T extends unknown ? Omit<T, 'seq' | 'at'> : never;
export type UnsequencedEvent = Unsequenced<EventChannelEvent>;

/**
 * What the EventRoom lends the modules that handle one of its concerns (edits and access in
 * event-admin.ts, transfers in event-tickets.ts). They run inside the room's write queue.
 */
export interface EventScope {
  readonly d1: D1Database;
  readonly eventId: string;
  /** The event as the room holds it; refuses with `event_not_found` if there is none. */
  current(): Promise<EventRow>;
  replace(row: EventRow): void;
  /** Reloads the event from D1 and tells watchers if the seat numbers moved. */
  resync(): Promise<EventRow>;
  seats(): Seats;
  emit(event: UnsequencedEvent): void;
  watchers(): { user: PublicUser | null; close(code: number, reason: string): void }[];
}
