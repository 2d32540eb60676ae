// Bookings and tickets in D1: the guarded writes behind an event's inventory and the stored
// answers of booking retries. Each write is one D1 batch (a transaction) whose first statement
// is a conditional update; the rows that follow are written only if it applied, so the oversell
// guard lives in D1 itself (docs/bookings.md).
import { and, asc, desc, eq, gte, inArray } from 'drizzle-orm';
import { IDEMPOTENCY_TTL_MS } from '../protocol/events';
import { inChunks } from './chunks';
import type { Db } from './client';
import { db, schema } from './client';
import type { BookingRow, TicketRow } from './events';

export const BOOKING_SCOPE = 'booking';

/** What an Idempotency-Key already means for this user. */
export type KeyState =
  | { kind: 'fresh' }
  | { kind: 'answered'; requestHash: string; status: number; body: string }
  /** Booked with more than the TTL ago: the answer is gone, the booking still holds the key. */
  | { kind: 'spent'; bookingId: string };

export async function keyState(
  database: Db,
  userId: string,
  key: string,
  now = Date.now(),
): Promise<KeyState> {
  const k = schema.idempotencyKeys;
  const [answers, spent] = await database.batch([
    database
      .select({ requestHash: k.requestHash, status: k.responseStatus, body: k.responseBody })
      .from(k)
      .where(
        and(
          eq(k.userId, userId),
          eq(k.scope, BOOKING_SCOPE),
          eq(k.key, key),
          gte(k.createdAt, now - IDEMPOTENCY_TTL_MS),
        ),
      ),
    database
      .select({ id: schema.bookings.id })
      .from(schema.bookings)
      .where(and(eq(schema.bookings.userId, userId), eq(schema.bookings.idempotencyKey, key)))
      .limit(1),
  ]);
  const answer = answers[0];
  if (answer) return { kind: 'answered', ...answer };
  const booking = spent[0];
  if (booking) return { kind: 'spent', bookingId: booking.id };
  return { kind: 'fresh' };
}

export interface BookingCommit {
  eventId: string;
  /** The room's count; the update only applies if D1 agrees (see `commitBooking`). */
  expectedBooked: number;
  bookingId: string;
  ticketIds: string[];
  userId: string;
  quantity: number;
  now: number;
  /** Present when the request carried an Idempotency-Key: the answer stored with the booking. */
  idempotency?: { key: string; requestHash: string; status: number; body: string };
}

// The write batches are plain SQL on the D1 binding: drizzle's D1 batch cannot carry raw
// statements with parameters, and the guards read best as the SQL they are.

/**
 * Books `quantity` seats in one transaction. Returns the committed `booked_seats`, or null when
 * the guard refused (D1 has fewer seats, or a different count, than the room believed) and
 * nothing was written. Throws on a constraint failure (the key was taken concurrently).
 */
export async function commitBooking(d1: D1Database, c: BookingCommit): Promise<number | null> {
  const statements = [
    // Compare-and-set on the room's count as well as the capacity guard: the room can then tell
    // watchers exact numbers, and a second writer (there should be none) is noticed.
    d1
      .prepare(
        `UPDATE events SET booked_seats = booked_seats + ?1
         WHERE id = ?2 AND booked_seats + ?1 <= capacity AND booked_seats = ?3
         RETURNING booked_seats`,
      )
      .bind(c.quantity, c.eventId, c.expectedBooked),
    d1
      .prepare(
        `INSERT INTO bookings (id, event_id, user_id, quantity, status, idempotency_key, created_at)
         SELECT ?1, ?2, ?3, ?4, 'confirmed', ?5, ?6 WHERE changes() = 1`,
      )
      .bind(c.bookingId, c.eventId, c.userId, c.quantity, c.idempotency?.key ?? null, c.now),
    d1
      .prepare(
        `INSERT INTO tickets (id, booking_id, event_id, holder_id, status, created_at)
         SELECT value, ?1, ?2, ?3, 'valid', ?4 FROM json_each(?5)
         WHERE EXISTS (SELECT 1 FROM bookings WHERE id = ?1)`,
      )
      .bind(c.bookingId, c.eventId, c.userId, c.now, JSON.stringify(c.ticketIds)),
  ];
  const i = c.idempotency;
  if (i) {
    statements.push(
      // An expired answer under the same key (a refusal older than the TTL) gives way.
      d1
        .prepare(
          `DELETE FROM idempotency_keys
           WHERE user_id = ?1 AND scope = ?2 AND key = ?3 AND created_at < ?4
             AND EXISTS (SELECT 1 FROM bookings WHERE id = ?5)`,
        )
        .bind(c.userId, BOOKING_SCOPE, i.key, c.now - IDEMPOTENCY_TTL_MS, c.bookingId),
      d1
        .prepare(
          `INSERT INTO idempotency_keys
             (user_id, scope, key, request_hash, response_status, response_body, created_at)
           SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
           WHERE EXISTS (SELECT 1 FROM bookings WHERE id = ?8)`,
        )
        .bind(c.userId, BOOKING_SCOPE, i.key, i.requestHash, i.status, i.body, c.now, c.bookingId),
    );
  }
  const [updated] = await d1.batch<{ booked_seats: number }>(statements);
  return updated?.results[0]?.booked_seats ?? null;
}

/**
 * Stores a refusal under its key so a retry gets the same answer. If the key was answered
 * meanwhile (a concurrent request for another event), that first answer wins and is returned.
 */
export async function storeRefusal(
  d1: D1Database,
  r: {
    userId: string;
    key: string;
    requestHash: string;
    status: number;
    body: string;
    now: number;
  },
): Promise<{ requestHash: string; status: number; body: string }> {
  const [, stored] = await d1.batch<{ requestHash: string; status: number; body: string }>([
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
        r.userId,
        BOOKING_SCOPE,
        r.key,
        r.requestHash,
        r.status,
        r.body,
        r.now,
        r.now - IDEMPOTENCY_TTL_MS,
      ),
    d1
      .prepare(
        `SELECT request_hash AS requestHash, response_status AS status, response_body AS body
         FROM idempotency_keys WHERE user_id = ?1 AND scope = ?2 AND key = ?3`,
      )
      .bind(r.userId, BOOKING_SCOPE, r.key),
  ]);
  const row = stored?.results[0];
  if (!row) throw new Error('idempotency answer vanished after being stored');
  return row;
}

/**
 * Cancels a confirmed booking, returns its seats and voids its tickets, in one transaction.
 * Returns the committed seat numbers, or null when the booking was no longer confirmed.
 */
export async function commitCancel(
  d1: D1Database,
  c: { eventId: string; bookingId: string; quantity: number; by: string; now: number },
): Promise<{ bookedSeats: number; capacity: number } | null> {
  const [cancelled, seats] = await d1.batch<Record<string, number>>([
    d1
      .prepare(
        `UPDATE bookings SET status = 'cancelled', cancelled_at = ?1, cancelled_by = ?2
         WHERE id = ?3 AND event_id = ?4 AND status = 'confirmed'
         RETURNING id`,
      )
      .bind(c.now, c.by, c.bookingId, c.eventId),
    d1
      .prepare(
        `UPDATE events SET booked_seats = booked_seats - ?1
         WHERE id = ?2 AND changes() = 1
         RETURNING booked_seats AS bookedSeats, capacity`,
      )
      .bind(c.quantity, c.eventId),
    d1
      .prepare(
        `UPDATE tickets SET status = 'cancelled'
         WHERE booking_id = ?1 AND status = 'valid'
           AND EXISTS (SELECT 1 FROM bookings WHERE id = ?1 AND status = 'cancelled')`,
      )
      .bind(c.bookingId),
  ]);
  if (!cancelled?.results.length) return null;
  const row = seats?.results[0];
  if (row?.bookedSeats === undefined || row.capacity === undefined) {
    throw new Error(`event ${c.eventId} vanished while cancelling ${c.bookingId}`);
  }
  return { bookedSeats: row.bookedSeats, capacity: row.capacity };
}

/** Moves a valid ticket from its holder to another user and records the transfer. */
export async function commitTransfer(
  d1: D1Database,
  c: { ticketId: string; fromUserId: string; toUserId: string; transferId: string; now: number },
): Promise<boolean> {
  const [moved] = await d1.batch([
    d1
      .prepare(
        `UPDATE tickets SET holder_id = ?1
         WHERE id = ?2 AND holder_id = ?3 AND status = 'valid'
         RETURNING id`,
      )
      .bind(c.toUserId, c.ticketId, c.fromUserId),
    d1
      .prepare(
        `INSERT INTO ticket_transfers (id, ticket_id, from_user_id, to_user_id, transferred_at)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE changes() = 1`,
      )
      .bind(c.transferId, c.ticketId, c.fromUserId, c.toUserId, c.now),
  ]);
  return (moved?.results.length ?? 0) > 0;
}

/** D1 reports constraint failures as errors whose message names the constraint. */
export function isConstraintError(err: unknown): boolean {
  const text = err instanceof Error ? `${err.message} ${String(err.cause ?? '')}` : String(err);
  return /constraint failed|SQLITE_CONSTRAINT/i.test(text);
}

// ---- what their holders list (`/api/me/*`) ----

export interface TransferRecord {
  id: string;
  fromUserId: string;
  toUserId: string;
  transferredAt: number;
}

/** The event a booking belongs to, or undefined for no such booking. */
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
