// How events, bookings and tickets are shown: the same views over REST and in frames.
import type { BookingRow, EventRow, TicketRow } from '../../db/events';
import type { BookingView, EventChannelEvent, EventView, TicketView } from '../../protocol/events';

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
    cancelledAt: row.cancelledAt ?? null,
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

type Unsequenced<T> = T extends unknown ? Omit<T, 'seq' | 'at'> : never;
export type UnsequencedEvent = Unsequenced<EventChannelEvent>;
