// An event's bookings and tickets in its object's SQLite: written in the same transaction as the
// seats they take (EventRoom), read for cancellations, transfers and `GET /api/bookings/:id`.
// D1 gets a copy through the outbox (worker/db/bookings.ts).
import type { BookingRow, TicketRow } from '../../db/events';

type StoredBooking = Omit<BookingRow, 'eventId'>;
type StoredTicket = Omit<TicketRow, 'eventId'>;

const BOOKING_COLUMNS = `id, user_id AS userId, quantity, status, idempotency_key AS idempotencyKey,
  created_at AS createdAt, cancelled_at AS cancelledAt, cancelled_by AS cancelledBy`;
const TICKET_COLUMNS =
  'id, booking_id AS bookingId, holder_id AS holderId, status, created_at AS createdAt';

/** Ids of bookings and tickets start with their event's id, so a route knows whom to ask. */
export function itemId(eventId: string): string {
  return `${eventId}.${crypto.randomUUID()}`;
}

/** The event an id made by `itemId` belongs to; undefined for older (plain UUID) ids. */
export function eventOfItem(id: string): string | undefined {
  const dot = id.indexOf('.');
  return dot > 0 ? id.slice(0, dot) : undefined;
}

export class Bookings {
  constructor(
    private readonly sql: SqlStorage,
    private readonly eventId: string,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS ev_bookings (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
      quantity INTEGER NOT NULL, status TEXT NOT NULL, idempotency_key TEXT,
      created_at INTEGER NOT NULL, cancelled_at INTEGER, cancelled_by TEXT)`);
    // A key that booked never books again (docs/bookings.md): at most one booking per user's key.
    sql.exec(
      'CREATE UNIQUE INDEX IF NOT EXISTS ev_bookings_key ON ev_bookings (user_id, idempotency_key)',
    );
    sql.exec(`CREATE TABLE IF NOT EXISTS ev_tickets (id TEXT PRIMARY KEY, booking_id TEXT NOT NULL,
      holder_id TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL)`);
    sql.exec(
      'CREATE INDEX IF NOT EXISTS ev_tickets_booking ON ev_tickets (booking_id, created_at, id)',
    );
  }

  insert(booking: BookingRow, tickets: TicketRow[]): void {
    this.sql.exec(
      `INSERT INTO ev_bookings (id, user_id, quantity, status, idempotency_key, created_at,
         cancelled_at, cancelled_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      booking.id,
      booking.userId,
      booking.quantity,
      booking.status,
      booking.idempotencyKey,
      booking.createdAt,
      booking.cancelledAt,
      booking.cancelledBy,
    );
    for (const t of tickets) {
      this.sql.exec(
        `INSERT INTO ev_tickets (id, booking_id, holder_id, status, created_at)
         VALUES (?, ?, ?, ?, ?)`,
        t.id,
        t.bookingId,
        t.holderId,
        t.status,
        t.createdAt,
      );
    }
  }

  /** A booking and its tickets (created, id order), or undefined. */
  find(bookingId: string): { booking: BookingRow; tickets: TicketRow[] } | undefined {
    const booking = this.sql
      .exec<StoredBooking>(`SELECT ${BOOKING_COLUMNS} FROM ev_bookings WHERE id = ?`, bookingId)
      .toArray()[0];
    if (!booking) return undefined;
    const tickets = this.sql
      .exec<StoredTicket>(
        `SELECT ${TICKET_COLUMNS} FROM ev_tickets WHERE booking_id = ? ORDER BY created_at, id`,
        bookingId,
      )
      .toArray();
    return {
      booking: { ...booking, eventId: this.eventId },
      tickets: tickets.map((t) => ({ ...t, eventId: this.eventId })),
    };
  }

  /** The booking a user's Idempotency-Key made here, if any. */
  byKey(userId: string, key: string): string | undefined {
    return this.sql
      .exec<{ id: string }>(
        'SELECT id FROM ev_bookings WHERE user_id = ? AND idempotency_key = ?',
        userId,
        key,
      )
      .toArray()[0]?.id;
  }

  /** Marks a confirmed booking cancelled and voids its tickets; false if it was not confirmed. */
  cancel(bookingId: string, by: string, at: number): boolean {
    const changed = this.sql.exec(
      `UPDATE ev_bookings SET status = 'cancelled', cancelled_at = ?, cancelled_by = ?
       WHERE id = ? AND status = 'confirmed' RETURNING id`,
      at,
      by,
      bookingId,
    );
    if (changed.toArray().length === 0) return false;
    this.sql.exec("UPDATE ev_tickets SET status = 'cancelled' WHERE booking_id = ?", bookingId);
    return true;
  }

  ticket(ticketId: string): TicketRow | undefined {
    const row = this.sql
      .exec<StoredTicket>(`SELECT ${TICKET_COLUMNS} FROM ev_tickets WHERE id = ?`, ticketId)
      .toArray()[0];
    return row && { ...row, eventId: this.eventId };
  }

  /** Hands a valid ticket from its holder to another user; false if it moved or was voided. */
  moveTicket(ticketId: string, from: string, to: string): boolean {
    const moved = this.sql.exec(
      `UPDATE ev_tickets SET holder_id = ? WHERE id = ? AND holder_id = ? AND status = 'valid'
       RETURNING id`,
      to,
      ticketId,
      from,
    );
    return moved.toArray().length > 0;
  }

  /** Bookings D1 had when the object first met the event (seeding). */
  put(bookings: BookingRow[], tickets: TicketRow[]): void {
    for (const b of bookings) {
      this.sql.exec(
        `INSERT OR IGNORE INTO ev_bookings (id, user_id, quantity, status, idempotency_key,
           created_at, cancelled_at, cancelled_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        b.id,
        b.userId,
        b.quantity,
        b.status,
        b.idempotencyKey,
        b.createdAt,
        b.cancelledAt,
        b.cancelledBy,
      );
    }
    for (const t of tickets) {
      this.sql.exec(
        `INSERT OR IGNORE INTO ev_tickets (id, booking_id, holder_id, status, created_at)
         VALUES (?, ?, ?, ?, ?)`,
        t.id,
        t.bookingId,
        t.holderId,
        t.status,
        t.createdAt,
      );
    }
  }
}
