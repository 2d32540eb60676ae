// The event as its object holds it: one row in the object's SQLite with its capacity and
// confirmed seats. The oversell guard lives here, twice: every change of seats is a conditional
// update (`booked_seats + n <= capacity`), and the table itself refuses a row outside
// 0 ≤ booked ≤ capacity, so no code path can commit an oversold event (docs/bookings.md).
import { ChannelError } from '../../channel/errors';
import type { EventRow } from '../../db/events';
import { ErrorCode } from '../../protocol/core';
import type { EventChanges, Seats } from '../../protocol/events';

const COLUMNS = `id, organiser_id AS organiserId, title, description, venue, starts_at AS startsAt,
  capacity, booked_seats AS bookedSeats, visibility, created_at AS createdAt, updated_at AS updatedAt,
  cancelled_at AS cancelledAt`;

export class Inventory {
  constructor(
    private readonly sql: SqlStorage,
    readonly eventId: string,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS ev_event (id TEXT PRIMARY KEY, organiser_id TEXT NOT NULL,
      title TEXT NOT NULL, description TEXT NOT NULL, venue TEXT NOT NULL,
      starts_at INTEGER NOT NULL, capacity INTEGER NOT NULL, booked_seats INTEGER NOT NULL,
      visibility TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      CHECK (booked_seats >= 0 AND booked_seats <= capacity))`);
    // Objects made before events could be cancelled have the table without the column.
    const columns = sql.exec<{ name: string }>('PRAGMA table_info(ev_event)').toArray();
    if (!columns.some((c) => c.name === 'cancelled_at')) {
      sql.exec('ALTER TABLE ev_event ADD COLUMN cancelled_at INTEGER');
    }
  }

  /** The event; `event_not_found` before the object was seeded with one. */
  event(): EventRow {
    const row = this.sql
      .exec<EventRow & Record<string, SqlStorageValue>>(`SELECT ${COLUMNS} FROM ev_event`)
      .toArray()[0];
    if (!row) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
    return row;
  }

  seats(): Seats {
    return seatsOf(this.event());
  }

  /** Takes seats for a booking. Throws (rolling the caller's commit back) if they do not fit. */
  take(quantity: number): Seats {
    const row = this.sql
      .exec<{ capacity: number; bookedSeats: number }>(
        `UPDATE ev_event SET booked_seats = booked_seats + ?1 WHERE booked_seats + ?1 <= capacity
         RETURNING capacity, booked_seats AS bookedSeats`,
        quantity,
      )
      .toArray()[0];
    if (!row) throw new Error(`event ${this.eventId}: ${quantity} seats do not fit`);
    return seatsOf(row);
  }

  /** Gives a cancelled booking's seats back. */
  give(quantity: number): Seats {
    const row = this.sql
      .exec<{ capacity: number; bookedSeats: number }>(
        `UPDATE ev_event SET booked_seats = booked_seats - ?1
         RETURNING capacity, booked_seats AS bookedSeats`,
        quantity,
      )
      .one();
    return seatsOf(row);
  }

  /** Applies an edit; null (nothing written) when the capacity would drop below the booked seats. */
  edit(changes: EventChanges, now: number): EventRow | null {
    const applied = this.sql.exec(
      `UPDATE ev_event SET title = coalesce(?1, title), description = coalesce(?2, description),
         venue = coalesce(?3, venue), starts_at = coalesce(?4, starts_at),
         capacity = coalesce(?5, capacity), visibility = coalesce(?6, visibility), updated_at = ?7
       WHERE booked_seats <= coalesce(?5, capacity) RETURNING id`,
      changes.title ?? null,
      changes.description ?? null,
      changes.venue ?? null,
      changes.startsAt ?? null,
      changes.capacity ?? null,
      changes.visibility ?? null,
      now,
    );
    return applied.toArray().length > 0 ? this.event() : null;
  }

  /** Calls the event off; null when it already was (nothing written). */
  cancel(now: number): EventRow | null {
    const applied = this.sql.exec(
      'UPDATE ev_event SET cancelled_at = ?1, updated_at = ?1 WHERE cancelled_at IS NULL RETURNING id',
      now,
    );
    return applied.toArray().length > 0 ? this.event() : null;
  }

  /** The event as D1 had it when the object first met it (seeding). */
  put(row: EventRow): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO ev_event (id, organiser_id, title, description, venue, starts_at,
         capacity, booked_seats, visibility, created_at, updated_at, cancelled_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.id,
      row.organiserId,
      row.title,
      row.description,
      row.venue,
      row.startsAt,
      row.capacity,
      row.bookedSeats,
      row.visibility,
      row.createdAt,
      row.updatedAt,
      row.cancelledAt ?? null,
    );
  }
}

export function seatsOf(row: { capacity: number; bookedSeats: number }): Seats {
  const { capacity, bookedSeats } = row;
  return { capacity, bookedSeats, availableSeats: Math.max(0, capacity - bookedSeats) };
}

/** Why a booking cannot be had right now; null if it fits. */
export function refusalFor(
  event: { capacity: number; bookedSeats: number; startsAt: number; cancelledAt?: number | null },
  quantity: number,
  now: number,
): { code: string; message: string } | null {
  const available = event.capacity - event.bookedSeats;
  if (event.cancelledAt != null) {
    return { code: ErrorCode.eventCancelled, message: 'the event was cancelled' };
  }
  if (event.startsAt <= now) {
    return { code: ErrorCode.bookingClosed, message: 'the event has started; booking is closed' };
  }
  if (available <= 0) return { code: ErrorCode.soldOut, message: 'the event is sold out' };
  if (quantity > available) {
    return {
      code: ErrorCode.insufficientSeats,
      message: `only ${available} seat${available === 1 ? '' : 's'} left; asked for ${quantity}`,
    };
  }
  return null;
}
