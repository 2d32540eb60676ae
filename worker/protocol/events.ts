// Events and bookings: one channel per bookable event (EventRoom). Writes arrive over REST
// (`POST /api/bookings` with an Idempotency-Key); the socket is for watching. See
// docs/protocol.md ("Kind: event") and docs/bookings.md.
import { z } from 'zod';
import type {
  ClientFrame,
  CoreServerFrame,
  FrameMap,
  PresenceSnapshot,
  Sequenced,
  WelcomeFrame,
} from './core';
import { text } from './core';

/** Most seats one booking may take; larger groups book several times (docs/bookings.md). */
export const MAX_SEATS_PER_BOOKING = 10;
/** Largest capacity an event may have. */
export const MAX_EVENT_CAPACITY = 100_000;
/** How long a stored Idempotency-Key answer is replayed. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Most users named in one create request's access list. */
export const MAX_ACCESS_LIST = 1000;

export const VISIBILITIES = ['public', 'private'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** Ids are server-issued UUIDs; anything else cannot name a row. */
export const entityId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an id');

/** Epoch milliseconds, or an ISO 8601 date-time with an offset (`2030-05-01T19:30:00Z`). */
export const instant = z.union([
  z.number().int().min(0).max(8_640_000_000_000_000),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

export const eventFields = {
  title: text().trim().min(1, 'must not be empty').max(200),
  description: text().trim().max(5000),
  venue: text().trim().min(1, 'must not be empty').max(200),
  startsAt: instant,
  capacity: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_EVENT_CAPACITY, `must be at most ${MAX_EVENT_CAPACITY}`),
  visibility: z.enum(VISIBILITIES),
};

export const createEventBody = z
  .object({
    ...eventFields,
    description: eventFields.description.default(''),
    visibility: eventFields.visibility.default('public'),
    /** Users who may see and book a private event (besides its organiser and admins). */
    accessUserIds: z.array(entityId).max(MAX_ACCESS_LIST).default([]),
  })
  .strict();
export type CreateEventBody = z.infer<typeof createEventBody>;

export const updateEventBody = z
  .object({
    title: eventFields.title,
    description: eventFields.description,
    venue: eventFields.venue,
    startsAt: eventFields.startsAt,
    capacity: eventFields.capacity,
    visibility: eventFields.visibility,
  })
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change');
export type EventChanges = z.infer<typeof updateEventBody>;

export const bookingBody = z
  .object({
    eventId: entityId,
    quantity: z
      .number()
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(MAX_SEATS_PER_BOOKING, `must be at most ${MAX_SEATS_PER_BOOKING}`)
      .default(1),
  })
  .strict();
export type BookingRequest = z.infer<typeof bookingBody>;

export const cancelEventBody = z
  .object({ reason: text().trim().min(1).max(500, 'must be at most 500 characters').optional() })
  .strict();

export const transferBody = z.object({ toUserId: entityId }).strict();

export const accessBody = z.object({ userId: entityId }).strict();

/** The socket only watches: its one frame is the core's `ping`. */
export const eventFrames = {} satisfies FrameMap;
export type EventClientFrame = ClientFrame<typeof eventFrames>;

export interface EventView {
  id: string;
  organiserId: string;
  title: string;
  description: string;
  venue: string;
  startsAt: number;
  capacity: number;
  bookedSeats: number;
  availableSeats: number;
  visibility: Visibility;
  createdAt: number;
  updatedAt: number;
  /** When the organiser called the event off (null: on). Bookings are refused after it. */
  cancelledAt: number | null;
}

export interface Seats {
  capacity: number;
  bookedSeats: number;
  availableSeats: number;
}

export interface TicketView {
  id: string;
  bookingId: string;
  eventId: string;
  holderId: string;
  status: 'valid' | 'cancelled';
  createdAt: number;
}

export interface BookingView {
  id: string;
  eventId: string;
  userId: string;
  quantity: number;
  status: 'confirmed' | 'cancelled';
  createdAt: number;
  cancelledAt: number | null;
  cancelledBy: string | null;
  tickets: TicketView[];
}

/** Body of a `201` from `POST /api/bookings` (stored verbatim for Idempotency-Key retries). */
export interface BookingCreatedResponse {
  booking: BookingView;
  availableSeats: number;
}

// Every durable frame that changes seats carries all three numbers, so a watcher only has to
// keep the `availableSeats` of the last frame it saw (they arrive in `seq` order).

/** A booking was committed (seed 002 `booking_created`, seed 004 `ticket-purchased`). */
export interface BookingCreatedEvent extends Sequenced, Seats {
  type: 'booking.created';
  eventId: string;
  bookingId: string;
  quantity: number;
}

/** A booking was cancelled and its seats returned (seed 002 `booking_cancelled`). */
export interface BookingCancelledEvent extends Sequenced, Seats {
  type: 'booking.cancelled';
  eventId: string;
  bookingId: string;
  quantity: number;
}

/** The seat numbers changed without a booking: the capacity was edited (seed 002 `seat_update`). */
export interface SeatsUpdatedEvent extends Sequenced, Seats {
  type: 'seats.updated';
  eventId: string;
  reason: 'capacity_changed';
}

/** A ticket changed hands (seed 004 `ticket-transferred`). Holders are not named to watchers. */
export interface TicketTransferredEvent extends Sequenced {
  type: 'ticket.transferred';
  eventId: string;
  ticketId: string;
  bookingId: string;
}

/** The organiser edited the event (seed 004 `event-updated`); `event` is the new state. */
export interface EventUpdatedEvent extends Sequenced {
  type: 'event.updated';
  event: EventView;
  changed: (keyof EventChanges)[];
}

/** The organiser called the event off: no more bookings; every ticket holder is notified. */
export interface EventCancelledEvent extends Sequenced {
  type: 'event.cancelled';
  event: EventView;
  reason: string | null;
}

export type EventChannelEvent =
  | BookingCreatedEvent
  | BookingCancelledEvent
  | SeatsUpdatedEvent
  | TicketTransferredEvent
  | EventUpdatedEvent
  | EventCancelledEvent;
export type EventServerFrame = CoreServerFrame | EventChannelEvent;

export interface EventRoomSnapshot extends Seats {
  event: EventView;
  /** Open sockets on this event (counts only: events can draw large audiences). */
  watchers: PresenceSnapshot;
}
export type EventWelcome = WelcomeFrame<EventRoomSnapshot>;
