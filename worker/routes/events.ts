// Events, bookings, tickets. Reads come from D1 (booked seats are committed there before any
// broadcast, so they are always current); every write goes through the event's EventRoom.
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { bookingEventId, bookingsOf, keyState, ticketsHeldBy } from '../db/bookings';
import { db } from '../db/client';
import {
  type EventRow,
  existingUsers,
  findBooking,
  findEvent,
  findTicket,
  insertEvent,
  listAccess,
  listVisibleEvents,
} from '../db/events';
import { cursorParam } from '../db/paging';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn, signedInAs } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf, idempotent } from '../http/idempotency';
import { jsonBody, pathId, query } from '../http/validate';
import { ErrorCode, type PublicUser } from '../protocol/core';
import {
  accessBody,
  bookingBody,
  createEventBody,
  transferBody,
  updateEventBody,
} from '../protocol/events';
import {
  type Answer,
  bookingView,
  canManage,
  canSee,
  event as eventKind,
  eventView,
  requestHash,
  settle,
  ticketView,
} from '../rooms/event/kind';

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  // Opaque cursor from a previous page: `<startsAt>.<id>`.
  after: cursorParam,
});

const mineQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) });

function answer(c: Context<AppEnv>, a: Pick<Answer, 'status' | 'body' | 'replayed'>): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (a.replayed) headers['idempotent-replayed'] = 'true';
  return c.body(a.body, a.status as ContentfulStatusCode, headers);
}

/** The event, if this caller may see it: 404 for none, 401/403 for a private one. */
async function visibleEvent(c: Context<AppEnv>, eventId: string): Promise<EventRow> {
  const database = db(c.env.DB);
  const event = await findEvent(database, eventId);
  if (!event) throw new ApiError(404, ErrorCode.eventNotFound, 'no such event');
  const user = c.get('user');
  if (!(await canSee(database, event, user))) {
    if (!user) throw new ApiError(401, ErrorCode.authRequired, 'this event is private; sign in');
    throw new ApiError(403, ErrorCode.eventAccessDenied, 'this event is private');
  }
  return event;
}

function mustManage(event: EventRow, user: PublicUser): void {
  if (!canManage(event, user)) {
    throw new ApiError(403, ErrorCode.forbidden, "only the event's organiser or an admin may");
  }
}

export const eventRoutes = new Hono<AppEnv>()
  .get('/events', query(listQuery), async (c) => {
    const { page, nextCursor } = await listVisibleEvents(
      c.env.DB,
      c.get('user'),
      c.req.valid('query'),
    );
    return c.json({ events: page.map(eventView), nextCursor });
  })
  .post('/events', signedInAs('organiser'), jsonBody(createEventBody), idempotent, async (c) => {
    const user = currentUser(c);
    const body = c.req.valid('json');
    const now = Date.now();
    if (body.startsAt <= now) {
      const fields = [{ path: 'startsAt', message: 'must be in the future' }];
      throw new ApiError(
        400,
        ErrorCode.invalidBody,
        'invalid body: "startsAt" must be in the future',
        fields,
      );
    }
    const database = db(c.env.DB);
    const accessUserIds = [...new Set(body.accessUserIds)];
    const known = await existingUsers(database, accessUserIds);
    const unknown = accessUserIds.filter((u) => !known.has(u));
    if (unknown.length > 0) {
      const fields = unknown.map((u) => ({ path: 'accessUserIds', message: `no user ${u}` }));
      throw new ApiError(400, ErrorCode.invalidBody, `invalid body: no user ${unknown[0]}`, fields);
    }
    const row: EventRow = {
      id: crypto.randomUUID(),
      organiserId: user.id,
      title: body.title,
      description: body.description,
      venue: body.venue,
      startsAt: body.startsAt,
      capacity: body.capacity,
      bookedSeats: 0,
      visibility: body.visibility,
      createdAt: now,
      updatedAt: now,
    };
    await insertEvent(c.env.DB, row, accessUserIds);
    return c.json({ event: eventView(row), accessUserIds }, 201);
  })
  .get('/events/:eventId', async (c) => {
    const event = await visibleEvent(c, pathId(c, 'eventId'));
    return c.json({ event: eventView(event) });
  })
  .patch('/events/:eventId', signedIn, jsonBody(updateEventBody), idempotent, async (c) => {
    const user = currentUser(c);
    const eventId = pathId(c, 'eventId');
    const changes = c.req.valid('json');
    await visibleEvent(c, eventId);
    return c.json(await eventKind.room(c.env, eventId).updateEvent(user, changes));
  })
  .get('/events/:eventId/access', async (c) => {
    const user = currentUser(c);
    const event = await visibleEvent(c, pathId(c, 'eventId'));
    mustManage(event, user);
    return c.json({ eventId: event.id, access: await listAccess(c.env.DB, event.id) });
  })
  .post('/events/:eventId/access', signedIn, jsonBody(accessBody), idempotent, async (c) => {
    const user = currentUser(c);
    const eventId = pathId(c, 'eventId');
    const { userId } = c.req.valid('json');
    mustManage(await visibleEvent(c, eventId), user);
    const granted = await eventKind.room(c.env, eventId).grantAccess(user, userId);
    return c.json({ eventId, userId }, granted.created ? 201 : 200);
  })
  .delete('/events/:eventId/access/:userId', idempotent, async (c) => {
    const user = currentUser(c);
    const eventId = pathId(c, 'eventId');
    const userId = pathId(c, 'userId');
    mustManage(await visibleEvent(c, eventId), user);
    return c.json(await eventKind.room(c.env, eventId).revokeAccess(user, userId));
  })
  // Bookings keep their Idempotency-Key answers with the booking itself (docs/bookings.md).
  .post('/bookings', signedIn, jsonBody(bookingBody), async (c) => {
    const user = currentUser(c);
    const key = idempotencyKeyOf(c);
    const body = c.req.valid('json');
    const database = db(c.env.DB);
    const hash = key === undefined ? undefined : await requestHash(body);
    if (key !== undefined && hash !== undefined) {
      // Fast path for retries of finished requests; the room checks again in its queue.
      const settled = settle(await keyState(database, user.id, key), hash);
      if (settled?.kind === 'reused') {
        throw new ApiError(422, ErrorCode.idempotencyKeyReused, settled.message);
      }
      if (settled) return answer(c, { ...settled, replayed: true });
    }
    await visibleEvent(c, body.eventId);
    const idem = key !== undefined && hash !== undefined ? { key, requestHash: hash } : undefined;
    const result = await eventKind.room(c.env, body.eventId).book(user, body.quantity, idem);
    return answer(c, result);
  })
  .get('/bookings/:bookingId', async (c) => {
    const user = currentUser(c);
    const database = db(c.env.DB);
    const found = await findBooking(database, pathId(c, 'bookingId'));
    if (!found) throw new ApiError(404, ErrorCode.bookingNotFound, 'no such booking');
    if (found.booking.userId !== user.id) {
      const event = await findEvent(database, found.booking.eventId);
      if (!event || !canManage(event, user)) {
        throw new ApiError(404, ErrorCode.bookingNotFound, 'no such booking');
      }
    }
    return c.json({ booking: bookingView(found.booking, found.tickets) });
  })
  .delete('/bookings/:bookingId', idempotent, async (c) => {
    const user = currentUser(c);
    const bookingId = pathId(c, 'bookingId');
    const eventId = await bookingEventId(c.env.DB, bookingId);
    if (!eventId) throw new ApiError(404, ErrorCode.bookingNotFound, 'no such booking');
    return c.json(await eventKind.room(c.env, eventId).cancelBooking(user, bookingId));
  })
  .post('/tickets/:ticketId/transfer', signedIn, jsonBody(transferBody), idempotent, async (c) => {
    const user = currentUser(c);
    const ticketId = pathId(c, 'ticketId');
    const { toUserId } = c.req.valid('json');
    const ticket = await findTicket(db(c.env.DB), ticketId);
    if (!ticket) throw new ApiError(404, ErrorCode.ticketNotFound, 'no such ticket');
    const { eventId } = ticket;
    return c.json(await eventKind.room(c.env, eventId).transferTicket(user, ticketId, toUserId));
  })
  .get('/me/tickets', query(mineQuery), async (c) => {
    const user = currentUser(c);
    const held = await ticketsHeldBy(c.env.DB, user.id, c.req.valid('query').limit);
    return c.json({
      tickets: held.map((r) => ({
        ...ticketView(r.ticket),
        event: r.event,
        transfers: r.transfers,
      })),
    });
  })
  .get('/me/bookings', query(mineQuery), async (c) => {
    const user = currentUser(c);
    const rows = await bookingsOf(c.env.DB, user.id, c.req.valid('query').limit);
    return c.json({ bookings: rows.map((r) => bookingView(r.booking, r.tickets)) });
  });

export const eventSockets = new Hono<AppEnv>().get('/events/:eventId', async (c) => {
  const eventId = pathId(c, 'eventId');
  // Private events are refused here, before the room is reached; the room checks again.
  await visibleEvent(c, eventId);
  return eventKind.connect(c.req.raw, c.env, c.get('user'), eventId);
});
