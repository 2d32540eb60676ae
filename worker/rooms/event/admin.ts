// Event edits and the access list, for the EventRoom. An edit is broadcast as `event.updated`
// (and `seats.updated` when the capacity moved). Each answers whether access got narrower, so
// the room can close the sockets of watchers who lost it.
import { ChannelError } from '../../channel/errors';
import { findPublicUser } from '../../db/accounts';
import {
  type EventRow,
  grantEventAccess,
  revokeEventAccess,
  updateEventRow,
} from '../../db/events';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import type { EventChanges, EventView } from '../../protocol/events';
import { canManage } from './access';
import type { EventState } from './state';
import { eventView } from './views';

function mustManage(event: EventRow, user: PublicUser, what: string): void {
  if (!canManage(event, user)) {
    throw new ChannelError(
      ErrorCode.forbidden,
      `only the event's organiser or an admin may ${what}`,
      403,
    );
  }
}

export async function updateEvent(
  state: EventState,
  d1: D1Database,
  user: PublicUser,
  changes: EventChanges,
): Promise<{ event: EventView; narrowed: boolean }> {
  const before = await state.current();
  mustManage(before, user, 'change it');
  const changed = (Object.keys(changes) as (keyof EventChanges)[]).filter(
    (k) => changes[k] !== undefined && changes[k] !== before[k],
  );
  if (changed.length === 0) return { event: eventView(before), narrowed: false };
  const row = await updateEventRow(d1, state.eventId, changes, Date.now());
  if (!row) {
    const fresh = await state.resync();
    throw new ChannelError(
      ErrorCode.capacityBelowBooked,
      `${fresh.bookedSeats} seats are booked; capacity cannot go below that`,
      409,
    );
  }
  state.replace(row);
  state.emit({ type: 'event.updated', event: eventView(row), changed });
  if (changed.includes('capacity')) {
    state.emit({
      type: 'seats.updated',
      eventId: state.eventId,
      reason: 'capacity_changed',
      ...state.seats(),
    });
  }
  const narrowed = before.visibility === 'public' && row.visibility === 'private';
  return { event: eventView(row), narrowed };
}

export async function grantAccess(
  state: EventState,
  d1: D1Database,
  user: PublicUser,
  userId: string,
) {
  mustManage(await state.current(), user, 'manage its access list');
  if (!(await findPublicUser(d1, userId))) {
    throw new ChannelError(ErrorCode.userNotFound, 'no such user', 404);
  }
  const created = await grantEventAccess(d1, state.eventId, userId, Date.now());
  return { eventId: state.eventId, userId, created };
}

export async function revokeAccess(
  state: EventState,
  d1: D1Database,
  user: PublicUser,
  userId: string,
) {
  const event = await state.current();
  mustManage(event, user, 'manage its access list');
  if (!(await revokeEventAccess(d1, state.eventId, userId))) {
    throw new ChannelError(ErrorCode.notFound, 'that user is not on the access list', 404);
  }
  return { eventId: state.eventId, userId, narrowed: event.visibility === 'private' };
}
