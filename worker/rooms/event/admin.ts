// Event edits and the access list, committed in the event's object. An edit is broadcast as
// `event.updated` (and `seats.updated` when the capacity moved); edits and access changes reach
// D1 through the outbox. Each answers whether access got narrower, so the room can close the
// sockets of watchers who lost it.
import { ChannelError } from '../../channel/errors';
import { findPublicUser } from '../../db/accounts';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import type { EventChanges, EventView } from '../../protocol/events';
import { type Grant, mustManage, mustSee } from './access';
import { commitChange, mirror } from './commits';
import type { EventParts } from './EventRoom';
import { seatsOf } from './inventory';
import { eventCalledOff, eventChanged } from './notices';
import { eventView } from './views';

/** The event as the caller may manage it: 404, 401/403 for a private one, then 403 `forbidden`. */
function managed({ inventory, access }: EventParts, user: PublicUser, what: string) {
  const event = inventory.event();
  mustSee(event, user, access);
  mustManage(event, user, what);
  return event;
}

export function updateEvent(
  parts: EventParts,
  user: PublicUser,
  changes: EventChanges,
): { event: EventView; narrowed: boolean } {
  const before = managed(parts, user, 'change it');
  if (before.cancelledAt !== null) {
    throw new ChannelError(ErrorCode.eventCancelled, 'the event was cancelled', 409);
  }
  const changed = (Object.keys(changes) as (keyof EventChanges)[]).filter(
    (k) => changes[k] !== undefined && changes[k] !== before[k],
  );
  if (changed.length === 0) return { event: eventView(before), narrowed: false };
  const { inventory, kit } = parts;
  const row = commitChange(kit, (tx) => {
    const edited = inventory.edit(changes, Date.now());
    if (!edited) {
      throw new ChannelError(
        ErrorCode.capacityBelowBooked,
        `${before.bookedSeats} seats are booked; capacity cannot go below that`,
        409,
      );
    }
    const published = tx.publish({ type: 'event.updated', event: eventView(edited), changed });
    if (edited.bookedSeats > 0) eventChanged(tx, edited, published.seq, changed);
    if (changed.includes('capacity')) {
      tx.publish({
        type: 'seats.updated',
        eventId: edited.id,
        reason: 'capacity_changed',
        ...seatsOf(edited),
      });
    }
    mirror(tx, 'event.updated', {
      id: edited.id,
      title: edited.title,
      description: edited.description,
      venue: edited.venue,
      startsAt: edited.startsAt,
      capacity: edited.capacity,
      bookedSeats: edited.bookedSeats,
      visibility: edited.visibility,
      updatedAt: edited.updatedAt,
    });
    return edited;
  });
  const narrowed = before.visibility === 'public' && row.visibility === 'private';
  return { event: eventView(row), narrowed };
}

/**
 * Calls the event off: bookings are refused from now on (`event_cancelled`), watchers hear
 * `event.cancelled`, and every holder of a valid ticket is notified through the queue. Bookings
 * and tickets stay as they are (refunds are the organiser's: they may still cancel bookings).
 */
export function cancelEvent(parts: EventParts, user: PublicUser, reason: string | null) {
  managed(parts, user, 'cancel it');
  const { inventory, kit } = parts;
  const row = commitChange(kit, (tx) => {
    const cancelled = inventory.cancel(Date.now());
    if (!cancelled) {
      throw new ChannelError(ErrorCode.eventCancelled, 'the event is already cancelled', 409);
    }
    const event = eventView(cancelled);
    tx.publish({ type: 'event.cancelled', event, reason });
    mirror(tx, 'event.cancelled', { id: cancelled.id, cancelledAt: cancelled.cancelledAt ?? 0 });
    if (cancelled.bookedSeats > 0) eventCalledOff(tx, cancelled, reason);
    return cancelled;
  });
  return { event: eventView(row), reason };
}

export function accessList(parts: EventParts, user: PublicUser) {
  managed(parts, user, 'see its access list');
  return { eventId: parts.inventory.eventId, access: parts.access.list() };
}

export async function grantAccess(parts: EventParts, user: PublicUser, userId: string) {
  managed(parts, user, 'manage its access list');
  if (!(await findPublicUser(parts.kit.env.DB, userId))) {
    throw new ChannelError(ErrorCode.userNotFound, 'no such user', 404);
  }
  const { eventId } = parts.inventory;
  const grant: Grant = { userId, grantedAt: Date.now() };
  const created = commitChange(parts.kit, (tx) => {
    if (!parts.access.grant(grant.userId, grant.grantedAt)) return false;
    mirror(tx, 'access.granted', { eventId, ...grant });
    return true;
  });
  return { eventId, userId, created };
}

export function revokeAccess(parts: EventParts, user: PublicUser, userId: string) {
  const event = managed(parts, user, 'manage its access list');
  const { eventId } = parts.inventory;
  commitChange(parts.kit, (tx) => {
    if (!parts.access.revoke(userId)) {
      throw new ChannelError(ErrorCode.notFound, 'that user is not on the access list', 404);
    }
    mirror(tx, 'access.revoked', { eventId, userId });
  });
  return { eventId, userId, narrowed: event.visibility === 'private' };
}
