// Who may do what with an event: written once, used by the routes (before the room is reached)
// and by the EventRoom itself (which checks again).

import type { Db } from '../../db/client';
import { type EventRow, onAccessList } from '../../db/events';
import type { PublicUser } from '../../protocol/core';

/** Organisers manage their own events; admins manage every event. */
export function canManage(event: Pick<EventRow, 'organiserId'>, user: PublicUser | null): boolean {
  return !!user && (user.role === 'admin' || event.organiserId === user.id);
}

/** Public events are open to everyone; private ones to the organiser, admins and the access list. */
export async function canSee(
  database: Db,
  event: Pick<EventRow, 'id' | 'organiserId' | 'visibility'>,
  user: PublicUser | null,
): Promise<boolean> {
  if (event.visibility === 'public') return true;
  if (!user) return false;
  if (canManage(event, user)) return true;
  return onAccessList(database, event.id, user.id);
}
