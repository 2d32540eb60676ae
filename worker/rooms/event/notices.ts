// What an event's changes tell the users they concern (docs/notifications.md, "Sources"): added
// inside the change's own commit, delivered after it, once per source key however often the
// delivery is retried.
import type { Tx } from '../../channel/room';
import { fanOut, notifyInCommit } from '../user/kind';

interface EventLike {
  id: string;
  title: string;
}

const link = (eventId: string) => `/events/${eventId}`;
const seats = (n: number) => `${n} seat${n === 1 ? '' : 's'}`;

export function bookingConfirmed(
  tx: Tx,
  event: EventLike,
  userId: string,
  bookingId: string,
  quantity: number,
) {
  notifyInCommit(tx, userId, {
    kind: 'booking.confirmed',
    title: `Booking confirmed: ${event.title}`,
    body: `${seats(quantity)} booked.`,
    link: link(event.id),
    data: { eventId: event.id, bookingId, quantity },
    key: `booking.confirmed:${bookingId}`,
  });
}

export function bookingCancelled(
  tx: Tx,
  event: EventLike,
  userId: string,
  bookingId: string,
  quantity: number,
) {
  notifyInCommit(tx, userId, {
    kind: 'booking.cancelled',
    title: `Booking cancelled: ${event.title}`,
    body: `${seats(quantity)} released.`,
    link: link(event.id),
    data: { eventId: event.id, bookingId, quantity },
    key: `booking.cancelled:${bookingId}`,
  });
}

export function ticketTransferred(
  tx: Tx,
  event: EventLike,
  transfer: { id: string; ticketId: string; fromUserId: string; toUserId: string },
) {
  const data = { eventId: event.id, ticketId: transfer.ticketId, transferId: transfer.id };
  notifyInCommit(tx, transfer.toUserId, {
    kind: 'ticket.received',
    title: `A ticket for ${event.title} is yours`,
    body: 'A ticket was transferred to you.',
    link: link(event.id),
    data: { ...data, fromUserId: transfer.fromUserId },
    key: `ticket.received:${transfer.id}`,
  });
  notifyInCommit(tx, transfer.fromUserId, {
    kind: 'ticket.sent',
    title: `Your ticket for ${event.title} was transferred`,
    body: 'The ticket is no longer yours.',
    link: link(event.id),
    data: { ...data, toUserId: transfer.toUserId },
    key: `ticket.sent:${transfer.id}`,
  });
}

/** Every holder of a valid ticket, through the queue: the event is called off (once per event). */
export function eventCalledOff(tx: Tx, event: EventLike, reason: string | null) {
  fanOut(
    tx,
    { kind: 'holders', eventId: event.id },
    {
      kind: 'event.cancelled',
      title: `${event.title} is cancelled`,
      body: reason ?? 'The organiser called the event off.',
      link: link(event.id),
      data: { eventId: event.id, reason },
      key: `event.cancelled:${event.id}`,
    },
  );
}

/** Every holder of a valid ticket, through the queue; `seq` (the change's) makes the key. */
export function eventChanged(tx: Tx, event: EventLike, seq: number, changed: string[]) {
  fanOut(
    tx,
    { kind: 'holders', eventId: event.id },
    {
      kind: 'event.updated',
      title: `${event.title} was updated`,
      body: `Changed: ${changed.join(', ')}.`,
      link: link(event.id),
      data: { eventId: event.id, changed },
      key: `event.updated:${event.id}:${seq}`,
    },
  );
}
