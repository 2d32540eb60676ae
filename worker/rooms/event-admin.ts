// Event edits and the access list, for the EventRoom. An edit is broadcast as `event.updated`
// (and `seats.updated` when the capacity moved); losing access closes a watcher with 4403.
import { and, eq, lte } from 'drizzle-orm';
import { ChannelError } from '../channel/errors';
import { db, schema } from '../db/client';
import { CloseCode, ErrorCode, type PublicUser } from '../protocol/core';
import type { EventChanges, EventView } from '../protocol/events';
import { canManage, type EventRow, type EventScope, eventView, withAccess } from './event-records';

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
  scope: EventScope,
  user: PublicUser,
  changes: EventChanges,
): Promise<{ event: EventView }> {
  const before = await scope.current();
  mustManage(before, user, 'change it');
  const changed = (Object.keys(changes) as (keyof EventChanges)[]).filter(
    (k) => changes[k] !== undefined && changes[k] !== before[k],
  );
  if (changed.length === 0) return { event: eventView(before) };
  const e = schema.events;
  // The capacity guard lives in D1 too: capacity can never drop below the confirmed seats.
  const [row] = await db(scope.d1)
    .update(e)
    .set({ ...changes, updatedAt: Date.now() })
    .where(
      and(
        eq(e.id, scope.eventId),
        changes.capacity === undefined ? undefined : lte(e.bookedSeats, changes.capacity),
      ),
    )
    .returning();
  if (!row) {
    const fresh = await scope.resync();
    throw new ChannelError(
      ErrorCode.capacityBelowBooked,
      `${fresh.bookedSeats} seats are booked; capacity cannot go below that`,
      409,
    );
  }
  scope.replace(row);
  scope.emit({ type: 'event.updated', event: eventView(row), changed });
  if (changed.includes('capacity')) {
    scope.emit({
      type: 'seats.updated',
      eventId: scope.eventId,
      reason: 'capacity_changed',
      ...scope.seats(),
    });
  }
  if (before.visibility === 'public' && row.visibility === 'private') {
    await closeWithoutAccess(scope, row);
  }
  return { event: eventView(row) };
}

export async function grantAccess(scope: EventScope, user: PublicUser, userId: string) {
  const database = db(scope.d1);
  mustManage(await scope.current(), user, 'manage its access list');
  const exists = await database.query.users.findFirst({
    where: eq(schema.users.id, userId),
    columns: { id: true },
  });
  if (!exists) throw new ChannelError(ErrorCode.userNotFound, 'no such user', 404);
  const inserted = await database
    .insert(schema.eventAccess)
    .values({ eventId: scope.eventId, userId, grantedAt: Date.now() })
    .onConflictDoNothing()
    .returning({ userId: schema.eventAccess.userId });
  return { eventId: scope.eventId, userId, created: inserted.length > 0 };
}

export async function revokeAccess(scope: EventScope, user: PublicUser, userId: string) {
  const event = await scope.current();
  mustManage(event, user, 'manage its access list');
  const a = schema.eventAccess;
  const removed = await db(scope.d1)
    .delete(a)
    .where(and(eq(a.eventId, scope.eventId), eq(a.userId, userId)))
    .returning({ userId: a.userId });
  if (removed.length === 0) {
    throw new ChannelError(ErrorCode.notFound, 'that user is not on the access list', 404);
  }
  if (event.visibility === 'private') await closeWithoutAccess(scope, event);
  return { eventId: scope.eventId, userId };
}

/** The event is private: sockets of anyone not allowed in (anonymous ones too) close with 4403. */
async function closeWithoutAccess(scope: EventScope, event: EventRow): Promise<void> {
  const watchers = scope.watchers();
  const listed = [
    ...new Set(watchers.flatMap((w) => (w.user && !canManage(event, w.user) ? [w.user.id] : []))),
  ];
  const allowed = await withAccess(db(scope.d1), scope.eventId, listed);
  for (const w of watchers) {
    if (w.user && (canManage(event, w.user) || allowed.has(w.user.id))) continue;
    w.close(CloseCode.forbidden, 'no access to this private event');
  }
}
