// Bookings and tickets in D1. An event's Durable Object is where a booking, a cancellation and a
// transfer commit (docs/bookings.md); D1 receives them from that object's outbox through the
// idempotent writers below, for queries across events (`/api/me/*`, admin views). Also here: what
// an object reads once to seed itself from bookings made before it kept its own, and the lists
// their holders see.
import { and, asc, desc, eq, gte, inArray, isNotNull, lt } from 'drizzle-orm';
import { IDEMPOTENCY_TTL_MS } from '../protocol/events';
import { inChunks } from './chunks';
import { db, schema } from './client';
import type { BookingRow, TicketRow } from './events';

export const BOOKING_SCOPE = 'booking';

/** A booking's Idempotency-Key answer, as the event's object stored it with the booking. */
export interface StoredAnswer {
  key: string;
  requestHash: string;
  status: number;
  body: string;
  at: number;
}

export interface BookingCreatedRow {
  booking: Omit<BookingRow, 'cancelledAt' | 'cancelledBy' | 'status'>;
  ticketIds: string[];
  /** The event's confirmed seats after this booking: an absolute value, never an increment. */
  bookedSeats: number;
  answer?: StoredAnswer;
}

export interface BookingCancelledRow {
  eventId: string;
  bookingId: string;
  by: string;
  at: number;
  bookedSeats: number;
}

export interface TicketTransferredRow {
  transferId: string;
  ticketId: string;
  fromUserId: string;
  toUserId: string;
  at: number;
}

// Outbox writers (docs/architecture.md, "One commit point"). Each may be applied twice — the
// object stopped between D1's commit and the outbox delete — and changes nothing the second time:
// inserts do nothing on conflict, updates set absolute values and rows are applied in order.
export const bookingWriters = {
  'booking.created': (d1: D1Database, r: BookingCreatedRow): D1PreparedStatement[] => {
    const b = r.booking;
    const statements = [
      d1
        .prepare(
          `INSERT INTO bookings (id, event_id, user_id, quantity, status, idempotency_key, created_at)
           VALUES (?1, ?2, ?3, ?4, 'confirmed', ?5, ?6) ON CONFLICT DO NOTHING`,
        )
        .bind(b.id, b.eventId, b.userId, b.quantity, b.idempotencyKey, b.createdAt),
      d1
        .prepare(
          `INSERT INTO tickets (id, booking_id, event_id, holder_id, status, created_at)
           SELECT value, ?1, ?2, ?3, 'valid', ?4 FROM json_each(?5) WHERE true
           ON CONFLICT DO NOTHING`,
        )
        .bind(b.id, b.eventId, b.userId, b.createdAt, JSON.stringify(r.ticketIds)),
      d1
        .prepare('UPDATE events SET booked_seats = ?1 WHERE id = ?2')
        .bind(r.bookedSeats, b.eventId),
    ];
    const a = r.answer;
    if (a) {
      statements.push(
        // A copy of the answer the object keeps; an expired one under the same key gives way.
        d1
          .prepare(
            `INSERT INTO idempotency_keys
               (user_id, scope, key, request_hash, response_status, response_body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (user_id, scope, key) DO UPDATE SET
               request_hash = excluded.request_hash, response_status = excluded.response_status,
               response_body = excluded.response_body, created_at = excluded.created_at
             WHERE idempotency_keys.created_at < ?8`,
          )
          .bind(
            b.userId,
            BOOKING_SCOPE,
            a.key,
            a.requestHash,
            a.status,
            a.body,
            a.at,
            a.at - IDEMPOTENCY_TTL_MS,
          ),
      );
    }
    return statements;
  },
  'booking.cancelled': (d1: D1Database, r: BookingCancelledRow): D1PreparedStatement[] => [
    d1
      .prepare(
        `UPDATE bookings SET status = 'cancelled', cancelled_at = ?1, cancelled_by = ?2
         WHERE id = ?3 AND status = 'confirmed'`,
      )
      .bind(r.at, r.by, r.bookingId),
    d1.prepare("UPDATE tickets SET status = 'cancelled' WHERE booking_id = ?1").bind(r.bookingId),
    d1.prepare('UPDATE events SET booked_seats = ?1 WHERE id = ?2').bind(r.bookedSeats, r.eventId),
  ],
  'ticket.transferred': (d1: D1Database, r: TicketTransferredRow): D1PreparedStatement[] => [
    d1
      .prepare(
        `INSERT INTO ticket_transfers (id, ticket_id, from_user_id, to_user_id, transferred_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING`,
      )
      .bind(r.transferId, r.ticketId, r.fromUserId, r.toUserId, r.at),
    d1.prepare('UPDATE tickets SET holder_id = ?1 WHERE id = ?2').bind(r.toUserId, r.ticketId),
  ],
};

// ---- what an event's object reads once, to seed itself ----

/** Rows per page while seeding, so a large event never comes back as one huge result. */
const SEED_PAGE = 1000;

/** Every booking of an event (oldest first) with its tickets. */
export async function bookingsOfEvent(
  d1: D1Database,
  eventId: string,
): Promise<{ bookings: BookingRow[]; tickets: TicketRow[] }> {
  const database = db(d1);
  const b = schema.bookings;
  const bookings: BookingRow[] = [];
  for (;;) {
    const page = await database
      .select()
      .from(b)
      .where(eq(b.eventId, eventId))
      .orderBy(asc(b.id))
      .limit(SEED_PAGE)
      .offset(bookings.length);
    bookings.push(...page);
    if (page.length < SEED_PAGE) break;
  }
  const tickets = await inChunks(
    bookings.map((r) => r.id),
    (ids) => database.select().from(schema.tickets).where(inArray(schema.tickets.bookingId, ids)),
  );
  return { bookings, tickets };
}

/** Booking answers stored since `since` whose request hash is one of `hashes` (one event's). */
export async function answersWithHashes(
  d1: D1Database,
  hashes: string[],
  since: number,
): Promise<(StoredAnswer & { userId: string })[]> {
  const k = schema.idempotencyKeys;
  return db(d1)
    .select({
      userId: k.userId,
      key: k.key,
      requestHash: k.requestHash,
      status: k.responseStatus,
      body: k.responseBody,
      at: k.createdAt,
    })
    .from(k)
    .where(
      and(eq(k.scope, BOOKING_SCOPE), gte(k.createdAt, since), inArray(k.requestHash, hashes)),
    );
}

/** Rows per page while a key claim shard seeds itself. */
const KEYS_PAGE = 5000;

/**
 * The booking keys of the users whose ids fall in [from, to): answers stored since `since`, and
 * every key that made a booking (read once, by a KeyClaims shard).
 */
export async function keysOfUsers(d1: D1Database, from: string, to: string, since: number) {
  const database = db(d1);
  const k = schema.idempotencyKeys;
  const b = schema.bookings;
  const answers: { userId: string; key: string; requestHash: string; at: number }[] = [];
  for (;;) {
    const page = await database
      .select({ userId: k.userId, key: k.key, requestHash: k.requestHash, at: k.createdAt })
      .from(k)
      .where(
        and(
          gte(k.userId, from),
          lt(k.userId, to),
          eq(k.scope, BOOKING_SCOPE),
          gte(k.createdAt, since),
        ),
      )
      .orderBy(asc(k.userId), asc(k.key))
      .limit(KEYS_PAGE)
      .offset(answers.length);
    answers.push(...page);
    if (page.length < KEYS_PAGE) break;
  }
  const booked: { userId: string; key: string; bookingId: string }[] = [];
  for (let offset = 0; ; offset += KEYS_PAGE) {
    const page = await database
      .select({ userId: b.userId, key: b.idempotencyKey, bookingId: b.id })
      .from(b)
      .where(and(gte(b.userId, from), lt(b.userId, to), isNotNull(b.idempotencyKey)))
      .orderBy(asc(b.id))
      .limit(KEYS_PAGE)
      .offset(offset);
    for (const r of page) if (r.key !== null) booked.push({ ...r, key: r.key });
    if (page.length < KEYS_PAGE) break;
  }
  return { answers, booked };
}

/** The booking a user's key made, if D1 knows of one. */
export async function bookingWithKey(
  d1: D1Database,
  userId: string,
  key: string,
): Promise<string | undefined> {
  const b = schema.bookings;
  const [row] = await db(d1)
    .select({ id: b.id })
    .from(b)
    .where(and(eq(b.userId, userId), eq(b.idempotencyKey, key)))
    .limit(1);
  return row?.id;
}

// ---- where a booking or ticket made before ids named their event lives ----

export async function bookingEventId(
  d1: D1Database,
  bookingId: string,
): Promise<string | undefined> {
  const row = await db(d1).query.bookings.findFirst({
    where: eq(schema.bookings.id, bookingId),
    columns: { eventId: true },
  });
  return row?.eventId;
}

export async function ticketEventId(d1: D1Database, ticketId: string): Promise<string | undefined> {
  const row = await db(d1).query.tickets.findFirst({
    where: eq(schema.tickets.id, ticketId),
    columns: { eventId: true },
  });
  return row?.eventId;
}

// ---- what their holders list (`/api/me/*`) ----

export interface TransferRecord {
  id: string;
  fromUserId: string;
  toUserId: string;
  transferredAt: number;
}

/** A user's bookings, newest first, each with its tickets. */
export async function bookingsOf(
  d1: D1Database,
  userId: string,
  limit: number,
): Promise<{ booking: BookingRow; tickets: TicketRow[] }[]> {
  const database = db(d1);
  const b = schema.bookings;
  const t = schema.tickets;
  const bookings = await database
    .select()
    .from(b)
    .where(eq(b.userId, userId))
    .orderBy(desc(b.createdAt), asc(b.id))
    .limit(limit);
  const tickets = await inChunks(
    bookings.map((r) => r.id),
    (ids) =>
      database
        .select()
        .from(t)
        .where(inArray(t.bookingId, ids))
        .orderBy(asc(t.createdAt), asc(t.id)),
  );
  const byBooking = groupBy(tickets, (r) => r.bookingId);
  return bookings.map((booking) => ({ booking, tickets: byBooking.get(booking.id) ?? [] }));
}

/** The tickets a user holds, newest first, with their event and transfer history. */
export async function ticketsHeldBy(d1: D1Database, userId: string, limit: number) {
  const database = db(d1);
  const t = schema.tickets;
  const e = schema.events;
  const tt = schema.ticketTransfers;
  const rows = await database
    .select({
      ticket: t,
      event: { id: e.id, title: e.title, venue: e.venue, startsAt: e.startsAt },
    })
    .from(t)
    .innerJoin(e, eq(e.id, t.eventId))
    .where(eq(t.holderId, userId))
    .orderBy(desc(t.createdAt), asc(t.id))
    .limit(limit);
  const transfers = await inChunks(
    rows.map((r) => r.ticket.id),
    (ids) =>
      database
        .select()
        .from(tt)
        .where(inArray(tt.ticketId, ids))
        .orderBy(asc(tt.transferredAt), asc(tt.id)),
  );
  const byTicket = groupBy(transfers, (r) => r.ticketId);
  return rows.map((r) => ({
    ...r,
    transfers: (byTicket.get(r.ticket.id) ?? []).map(
      (x): TransferRecord => ({
        id: x.id,
        fromUserId: x.fromUserId,
        toUserId: x.toUserId,
        transferredAt: x.transferredAt,
      }),
    ),
  }));
}

function groupBy<R>(rows: R[], keyOf: (row: R) => string): Map<string, R[]> {
  const groups = new Map<string, R[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}
