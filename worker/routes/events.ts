// Events, bookings, tickets. Reads come from D1 (booked seats are committed there before any
// broadcast, so they are always current); every write goes through the event's EventRoom.
import { and, asc, desc, eq, exists, inArray, or, type SQL } from 'drizzle-orm';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { keyState } from '../db/bookings';
import { db, schema } from '../db/client';
import { type EventRow, existingUsers, findBooking, findEvent, findTicket } from '../db/events';
import { cursorParam, pageOf, pastCursor } from '../db/paging';
import type { AppEnv } from '../http/app-env';
import { currentUser, requireRole } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf } from '../http/idempotency';
import { parseBody, parseQuery, pathId } from '../http/validate';
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
  .get('/events', async (c) => {
    const { limit, after } = parseQuery(c, listQuery);
    const user = c.get('user');
    const database = db(c.env.DB);
    const e = schema.events;
    const a = schema.eventAccess;
    const cursor = pastCursor(e.startsAt, e.id, after, 'asc');
    // Public events, plus the private ones this caller organises or is listed on; admins see all.
    const visible: SQL | undefined =
      user?.role === 'admin'
        ? undefined
        : user
          ? or(
              eq(e.visibility, 'public'),
              eq(e.organiserId, user.id),
              exists(
                database
                  .select({ one: a.userId })
                  .from(a)
                  .where(and(eq(a.eventId, e.id), eq(a.userId, user.id))),
              ),
            )
          : eq(e.visibility, 'public');
    const rows = await database
      .select()
      .from(e)
      .where(and(visible, cursor))
      .orderBy(asc(e.startsAt), asc(e.id))
      .limit(limit + 1);
    const { page, nextCursor } = pageOf(rows, limit, (r) => [r.startsAt, r.id]);
    return c.json({
      events: page.map(eventView),
      nextCursor,
    });
  })
  .post('/events', async (c) => {
    const user = requireRole(c, 'organiser');
    const body = await parseBody(c, createEventBody);
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
    const access = accessUserIds.map((userId) =>
      database.insert(schema.eventAccess).values({ eventId: row.id, userId, grantedAt: now }),
    );
    await database.batch([database.insert(schema.events).values(row), ...access]);
    return c.json({ event: eventView(row), accessUserIds }, 201);
  })
  .get('/events/:eventId', async (c) => {
    const event = await visibleEvent(c, pathId(c, 'eventId'));
    return c.json({ event: eventView(event) });
  })
  .patch('/events/:eventId', async (c) => {
    const user = currentUser(c);
    const eventId = pathId(c, 'eventId');
    const changes = await parseBody(c, updateEventBody);
    await visibleEvent(c, eventId);
    return c.json(await eventKind.room(c.env, eventId).updateEvent(user, changes));
  })
  .get('/events/:eventId/access', async (c) => {
    const user = currentUser(c);
    const event = await visibleEvent(c, pathId(c, 'eventId'));
    mustManage(event, user);
    const a = schema.eventAccess;
    const rows = await db(c.env.DB)
      .select({ userId: a.userId, grantedAt: a.grantedAt })
      .from(a)
      .where(eq(a.eventId, event.id))
      .orderBy(asc(a.grantedAt), asc(a.userId));
    return c.json({ eventId: event.id, access: rows });
  })
  .post('/events/:eventId/access', async (c) => {
    const user = currentUser(c);
    const eventId = pathId(c, 'eventId');
    const { userId } = await parseBody(c, accessBody);
    mustManage(await visibleEvent(c, eventId), user);
    const granted = await eventKind.room(c.env, eventId).grantAccess(user, userId);
    return c.json({ eventId, userId }, granted.created ? 201 : 200);
  })
  .delete('/events/:eventId/access/:userId', async (c) => {
    const user = currentUser(c);
    const eventId = pathId(c, 'eventId');
    const userId = pathId(c, 'userId');
    mustManage(await visibleEvent(c, eventId), user);
    return c.json(await eventKind.room(c.env, eventId).revokeAccess(user, userId));
  })
  .post('/bookings', async (c) => {
    const user = currentUser(c);
    const key = idempotencyKeyOf(c);
    const body = await parseBody(c, bookingBody);
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
  .delete('/bookings/:bookingId', async (c) => {
    const user = currentUser(c);
    const bookingId = pathId(c, 'bookingId');
    const booking = await db(c.env.DB).query.bookings.findFirst({
      where: eq(schema.bookings.id, bookingId),
      columns: { eventId: true },
    });
    if (!booking) throw new ApiError(404, ErrorCode.bookingNotFound, 'no such booking');
    const { eventId } = booking;
    return c.json(await eventKind.room(c.env, eventId).cancelBooking(user, bookingId));
  })
  .post('/tickets/:ticketId/transfer', async (c) => {
    const user = currentUser(c);
    const ticketId = pathId(c, 'ticketId');
    const { toUserId } = await parseBody(c, transferBody);
    const ticket = await findTicket(db(c.env.DB), ticketId);
    if (!ticket) throw new ApiError(404, ErrorCode.ticketNotFound, 'no such ticket');
    const { eventId } = ticket;
    return c.json(await eventKind.room(c.env, eventId).transferTicket(user, ticketId, toUserId));
  })
  .get('/me/tickets', async (c) => {
    const user = currentUser(c);
    const { limit } = parseQuery(c, mineQuery);
    const database = db(c.env.DB);
    const t = schema.tickets;
    const e = schema.events;
    const rows = await database
      .select({
        ticket: t,
        event: { id: e.id, title: e.title, venue: e.venue, startsAt: e.startsAt },
      })
      .from(t)
      .innerJoin(e, eq(e.id, t.eventId))
      .where(eq(t.holderId, user.id))
      .orderBy(desc(t.createdAt), asc(t.id))
      .limit(limit);
    const history = await transfersOf(
      database,
      rows.map((r) => r.ticket.id),
    );
    return c.json({
      tickets: rows.map((r) => ({
        ...ticketView(r.ticket),
        event: r.event,
        transfers: history.get(r.ticket.id) ?? [],
      })),
    });
  })
  .get('/me/bookings', async (c) => {
    const user = currentUser(c);
    const { limit } = parseQuery(c, mineQuery);
    const database = db(c.env.DB);
    const b = schema.bookings;
    const bookings = await database
      .select()
      .from(b)
      .where(eq(b.userId, user.id))
      .orderBy(desc(b.createdAt), asc(b.id))
      .limit(limit);
    const tickets = new Map<string, (typeof schema.tickets.$inferSelect)[]>();
    const ids = bookings.map((r) => r.id);
    for (let i = 0; i < ids.length; i += 90) {
      const rows = await database
        .select()
        .from(schema.tickets)
        .where(inArray(schema.tickets.bookingId, ids.slice(i, i + 90)))
        .orderBy(asc(schema.tickets.createdAt), asc(schema.tickets.id));
      for (const r of rows) tickets.set(r.bookingId, [...(tickets.get(r.bookingId) ?? []), r]);
    }
    return c.json({ bookings: bookings.map((r) => bookingView(r, tickets.get(r.id) ?? [])) });
  });

async function transfersOf(database: ReturnType<typeof db>, ticketIds: string[]) {
  const byTicket = new Map<
    string,
    { id: string; fromUserId: string; toUserId: string; transferredAt: number }[]
  >();
  const tt = schema.ticketTransfers;
  // D1 binds at most 100 parameters a statement.
  for (let i = 0; i < ticketIds.length; i += 90) {
    const rows = await database
      .select()
      .from(tt)
      .where(inArray(tt.ticketId, ticketIds.slice(i, i + 90)))
      .orderBy(asc(tt.transferredAt), asc(tt.id));
    for (const r of rows) {
      const list = byTicket.get(r.ticketId) ?? [];
      list.push({
        id: r.id,
        fromUserId: r.fromUserId,
        toUserId: r.toUserId,
        transferredAt: r.transferredAt,
      });
      byTicket.set(r.ticketId, list);
    }
  }
  return byTicket;
}

export const eventSockets = new Hono<AppEnv>().get('/events/:eventId', async (c) => {
  const eventId = pathId(c, 'eventId');
  // Private events are refused here, before the room is reached; the room checks again.
  await visibleEvent(c, eventId);
  return eventKind.connect(c.req.raw, c.env, c.get('user'), eventId);
});
