// Bookable events: one channel per event, its seats and bookings (docs/bookings.md). Watchers
// only read; bookings arrive over REST. Private events admit only those who may see them.
import { defineKind } from '../../channel/kind';
import { eventFrames } from '../../protocol/events';

export const event = defineKind({
  kind: 'event',
  prefix: 'event',
  binding: 'EVENT_ROOM',
  frames: eventFrames,
  connect: 'anyone',
  write: 'nobody',
  presence: 'counts',
  reservedEvents: ['booking.', 'seats.', 'event.', 'ticket.'],
});

export type { Answer, Idempotency } from './answers';
export { bookingRequestHash } from './answers';
export { eventOfItem } from './bookings';
export { bookingView, eventView, ticketView } from './views';
