// Events, bookings, tickets. Each event's Durable Object is where its inventory commits and
// what reads of one event ask (an event, a booking, its access list: current, never behind an
// answer); listings and `/api/me/*` read D1, which follows the objects within moments
// (docs/bookings.md, "D1 follows").
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { ChannelError } from '../channel/errors';
import { bookingEventId, bookingsOf, ticketEventId, ticketsHeldBy } from '../db/bookings';
import { db } from '../db/client';
import { type EventRow, existingUsers, insertEvent, listVisibleEvents } from '../db/events';
import { cursorParam } from '../db/paging';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn, signedInAs } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf, idempotent } from '../http/idempotency';
import { jsonBody, pathId, query } from '../http/validate';
import { ErrorCode } from '../protocol/core';
import {
  accessBody,
  bookingBody,
  cancelEventBody,
  createEventBody,
  transferBody,
  updateEventBody,
} from '../protocol/events';
import {
  type Answer,
  bookingRequestHash,
  bookingView,
  event as eventKind,
  eventOfItem,
  eventView,
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

type EventRoomClient = ReturnType<typeof eventKind.room>;

/**
 * Calls the object of the event a booking or ticket belongs to. Ids made since events commit
 * their own bookings name it (`<eventId>.<random>`); older ones are looked up in D1, where they
 * were written when they were made. An id of no event's is `notFound`.
 */
async function inEventOf<T>(
  c: Context<AppEnv>,
  id: string,
  lookup: (d1: D1Database, id: string) => Promise<string | undefined>,
  notFound: () => ApiError,
  call: (room: EventRoomClient) => Promise<T>,
): Promise<T> {
  const eventId = eventOfItem(id) ?? (await lookup(c.env.DB, id));
  if (!eventId) throw notFound();
  try {
    return await call(eventKind.room(c.env, eventId));
  } catch (err) {
    if (err instanceof ChannelError && err.code === ErrorCode.eventNotFound) throw notFound();
    throw err;
  }
}

const noBooking = () => new ApiError(404, ErrorCode.bookingNotFound, 'no such booking');
const noTicket = () => new ApiError(404, ErrorCode.ticketNotFound, 'no such ticket');

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
      cancelledAt: null,
    };
    await insertEvent(c.env.DB, row, accessUserIds);
    return c.json({ event: eventView(row), accessUserIds }, 201);
  })
  .get('/events/:eventId', async (c) => {
    const room = eventKind.room(c.env, pathId(c, 'eventId'));
    return c.json(await room.view(c.get('user')));
  })
  .patch('/events/:eventId', signedIn, jsonBody(updateEventBody), idempotent, async (c) => {
    const room = eventKind.room(c.env, pathId(c, 'eventId'));
    return c.json(await room.updateEvent(currentUser(c), c.req.valid('json')));
  })
  .post('/events/:eventId/cancel', signedIn, jsonBody(cancelEventBody), idempotent, async (c) => {
    const room = eventKind.room(c.env, pathId(c, 'eventId'));
    return c.json(await room.cancelEvent(currentUser(c), c.req.valid('json').reason ?? null));
  })
  .get('/events/:eventId/access', async (c) => {
    const room = eventKind.room(c.env, pathId(c, 'eventId'));
    return c.json(await room.accessList(currentUser(c)));
  })
  .post('/events/:eventId/access', signedIn, jsonBody(accessBody), idempotent, async (c) => {
    const eventId = pathId(c, 'eventId');
    const { userId } = c.req.valid('json');
    const granted = await eventKind.room(c.env, eventId).grantAccess(currentUser(c), userId);
    return c.json({ eventId, userId }, granted.created ? 201 : 200);
  })
  .delete('/events/:eventId/access/:userId', idempotent, async (c) => {
    const room = eventKind.room(c.env, pathId(c, 'eventId'));
    return c.json(await room.revokeAccess(currentUser(c), pathId(c, 'userId')));
  })
  // One round trip to the event's object, and no D1 on the way: it checks access, answers
  // retries from the answers it keeps, and commits (docs/bookings.md).
  .post('/bookings', signedIn, jsonBody(bookingBody), async (c) => {
    const user = currentUser(c);
    const key = idempotencyKeyOf(c);
    const { eventId, quantity } = c.req.valid('json');
    const idem =
      key === undefined
        ? undefined
        : { key, requestHash: await bookingRequestHash(eventId, quantity) };
    return answer(c, await eventKind.room(c.env, eventId).book(user, quantity, idem));
  })
  .get('/bookings/:bookingId', async (c) => {
    const user = currentUser(c);
    const bookingId = pathId(c, 'bookingId');
    return c.json(
      await inEventOf(c, bookingId, bookingEventId, noBooking, (room) =>
        room.booking(user, bookingId),
      ),
    );
  })
  .delete('/bookings/:bookingId', idempotent, async (c) => {
    const user = currentUser(c);
    const bookingId = pathId(c, 'bookingId');
    return c.json(
      await inEventOf(c, bookingId, bookingEventId, noBooking, (room) =>
        room.cancelBooking(user, bookingId),
      ),
    );
  })
  .post('/tickets/:ticketId/transfer', signedIn, jsonBody(transferBody), idempotent, async (c) => {
    const user = currentUser(c);
    const ticketId = pathId(c, 'ticketId');
    const { toUserId } = c.req.valid('json');
    return c.json(
      await inEventOf(c, ticketId, ticketEventId, noTicket, (room) =>
        room.transferTicket(user, ticketId, toUserId),
      ),
    );
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

// Private events are refused by the event's object, which keeps their access lists.
export const eventSockets = new Hono<AppEnv>().get('/events/:eventId', (c) =>
  eventKind.connect(c.req.raw, c.env, c.get('user'), pathId(c, 'eventId')),
);
