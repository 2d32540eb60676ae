// Stations: records and listings from D1 (live state is mirrored there by each StreamRoom),
// listener counts from the Lobby's directory (one RPC per page), and every live-state or chat
// write through the station's StreamRoom — the same path its socket frames take.
import { and, count, desc, eq, inArray } from 'drizzle-orm';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { db, schema } from '../db/client';
import { cursorParam, pageOf, pastCursor } from '../db/paging';
import type { AppEnv } from '../http/app-env';
import { currentUser, requireRole } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf } from '../http/idempotency';
import { parseBody, parseQuery, pathId } from '../http/validate';
import { ErrorCode, type PublicUser } from '../protocol/core';
import type { DirectoryCounts } from '../protocol/lobby';
import {
  CHAT_PAGE_SIZE,
  chatBody,
  metadataUpdate,
  moderationBody,
  type NowPlaying,
  showInfo,
  stationCreateBody,
  stationUpdateBody,
} from '../protocol/stream';
import { lobby } from '../rooms/lobby/kind';
import { mayManageStation, station } from '../rooms/stream/kind';
import { answered } from './answers';

type StationRow = typeof schema.stations.$inferSelect;

const listQuery = z.object({
  live: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  // Opaque cursor from a previous page: `<createdAt>.<id>`.
  before: cursorParam,
});

const chatQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(CHAT_PAGE_SIZE),
  before: cursorParam,
});

const sessionsQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) });

function stationView(row: StationRow, counts: DirectoryCounts[string] | undefined) {
  return {
    id: row.id,
    ownerId: row.ownerId,
    name: row.name,
    description: row.description,
    genre: row.genre,
    isLive: row.isLive,
    currentSessionId: row.currentSessionId,
    nowPlaying: row.nowPlaying ? (JSON.parse(row.nowPlaying) as NowPlaying) : null,
    listeners: counts?.listeners ?? 0,
    connections: counts?.connections ?? 0,
    peak: counts?.peak ?? 0,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

async function findStation(c: Context<AppEnv>, stationId: string): Promise<StationRow> {
  const row = await db(c.env.DB).query.stations.findFirst({
    where: eq(schema.stations.id, stationId),
  });
  if (!row) throw new ApiError(404, ErrorCode.notFound, 'no such station');
  return row;
}

/** The station, if the signed-in user owns it or is an admin (the room checks again). */
async function managedStation(c: Context<AppEnv>): Promise<{ row: StationRow; user: PublicUser }> {
  const user = currentUser(c);
  const row = await findStation(c, pathId(c, 'stationId'));
  if (!mayManageStation(row, user)) {
    throw new ApiError(403, ErrorCode.forbidden, 'only the station owner or an admin may do that');
  }
  return { row, user };
}

async function favouriteState(c: Context<AppEnv>, stationId: string, userId: string) {
  const database = db(c.env.DB);
  const f = schema.stationFavourites;
  const [total, mine] = await database.batch([
    database.select({ n: count() }).from(f).where(eq(f.stationId, stationId)),
    database
      .select({ n: count() })
      .from(f)
      .where(and(eq(f.stationId, stationId), eq(f.userId, userId))),
  ]);
  return { stationId, favourited: (mine[0]?.n ?? 0) > 0, favourites: total[0]?.n ?? 0 };
}

export const stationRoutes = new Hono<AppEnv>()
  .get('/stations', async (c) => {
    const { live, limit, before } = parseQuery(c, listQuery);
    const t = schema.stations;
    const after = pastCursor(t.createdAt, t.id, before, 'desc');
    const rows = await db(c.env.DB)
      .select()
      .from(t)
      .where(and(live === undefined ? undefined : eq(t.isLive, live === 'true'), after))
      .orderBy(desc(t.createdAt), desc(t.id))
      .limit(limit + 1);
    const { page, nextCursor } = pageOf(rows, limit, (r) => [r.createdAt, r.id]);
    const counts = await lobby.room(c.env).counts(page.map((r) => r.id));
    return c.json({
      stations: page.map((r) => stationView(r, counts[r.id])),
      nextCursor,
    });
  })
  .post('/stations', async (c) => {
    const user = requireRole(c, 'station_owner');
    const body = await parseBody(c, stationCreateBody);
    const now = Date.now();
    const row: StationRow = {
      id: crypto.randomUUID(),
      ownerId: user.id,
      name: body.name,
      description: body.description,
      genre: body.genre,
      isLive: false,
      currentSessionId: null,
      nowPlaying: null,
      createdAt: now,
      updatedAt: now,
    };
    await db(c.env.DB).insert(schema.stations).values(row);
    return c.json({ station: stationView(row, undefined) }, 201);
  })
  .get('/stations/:stationId', async (c) => {
    const stationId = pathId(c, 'stationId');
    const row = await findStation(c, stationId);
    // One station: ask its room, which holds the exact counts and the authoritative live state.
    const status = await station.room(c.env, stationId).status();
    const user = c.get('user');
    const favourites = await favouriteState(c, stationId, user?.id ?? '');
    return c.json({
      station: {
        ...stationView(row, undefined),
        isLive: status.live,
        currentSessionId: status.session?.id ?? null,
        nowPlaying: status.nowPlaying,
        listeners: status.listeners.listeners,
        connections: status.listeners.connections,
        peak: status.listeners.peak,
        counts: status.listeners,
        session: status.session,
        favourites: favourites.favourites,
        favourited: user ? favourites.favourited : false,
      },
    });
  })
  .patch('/stations/:stationId', async (c) => {
    const { row } = await managedStation(c);
    const body = await parseBody(c, stationUpdateBody);
    const next: StationRow = {
      ...row,
      ...(body.name === undefined ? {} : { name: body.name }),
      ...(body.description === undefined ? {} : { description: body.description }),
      ...(body.genre === undefined ? {} : { genre: body.genre ?? null }),
      updatedAt: Date.now(),
    };
    await db(c.env.DB)
      .update(schema.stations)
      .set({
        name: next.name,
        description: next.description,
        genre: next.genre,
        updatedAt: next.updatedAt,
      })
      .where(eq(schema.stations.id, row.id));
    await station.room(c.env, row.id).stationUpdated();
    return c.json({ station: stationView(next, undefined) });
  })
  .post('/stations/:stationId/live', async (c) => {
    const { row, user } = await managedStation(c);
    const show = await parseBody(c, showInfo);
    const frame = { type: 'stream.start', ...show };
    return answered(
      c,
      await station.room(c.env, row.id).request(user, frame, idempotencyKeyOf(c)),
      201,
    );
  })
  .delete('/stations/:stationId/live', async (c) => {
    const { row, user } = await managedStation(c);
    const frame = { type: 'stream.stop' };
    return answered(
      c,
      await station.room(c.env, row.id).request(user, frame, idempotencyKeyOf(c)),
      200,
    );
  })
  .put('/stations/:stationId/now-playing', async (c) => {
    const { row, user } = await managedStation(c);
    const patch = await parseBody(c, metadataUpdate);
    const frame = { type: 'stream.metadata', ...patch };
    return answered(
      c,
      await station.room(c.env, row.id).request(user, frame, idempotencyKeyOf(c)),
      200,
    );
  })
  .get('/stations/:stationId/sessions', async (c) => {
    const stationId = pathId(c, 'stationId');
    await findStation(c, stationId);
    const { limit } = parseQuery(c, sessionsQuery);
    const s = schema.broadcastSessions;
    const sessions = await db(c.env.DB)
      .select()
      .from(s)
      .where(eq(s.stationId, stationId))
      .orderBy(desc(s.startedAt), desc(s.id))
      .limit(limit);
    return c.json({ sessions });
  })
  .get('/stations/:stationId/chat', async (c) => {
    const stationId = pathId(c, 'stationId');
    await findStation(c, stationId);
    const { limit, before } = parseQuery(c, chatQuery);
    return c.json(await station.room(c.env, stationId).history(limit, before));
  })
  .post('/stations/:stationId/chat', async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    const key = idempotencyKeyOf(c);
    const { body } = await parseBody(c, z.object({ body: chatBody }).strict());
    const frame = { type: 'chat.send', body };
    return answered(c, await station.room(c.env, stationId).request(user, frame, key), 201);
  })
  .delete('/stations/:stationId/chat/:messageId', async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    const messageId = pathId(c, 'messageId');
    const frame = { type: 'chat.delete', messageId };
    return answered(c, await station.room(c.env, stationId).request(user, frame), 200);
  })
  .get('/stations/:stationId/moderation', async (c) => {
    const { row, user } = await managedStation(c);
    return c.json(await station.room(c.env, row.id).restrictions(user));
  })
  .post('/stations/:stationId/moderation', async (c) => {
    const { row, user } = await managedStation(c);
    const request = await parseBody(c, moderationBody);
    const frame = { type: 'chat.moderate', ...request };
    return answered(
      c,
      await station.room(c.env, row.id).request(user, frame, idempotencyKeyOf(c)),
      201,
    );
  })
  .put('/stations/:stationId/favourite', async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    await findStation(c, stationId);
    await db(c.env.DB)
      .insert(schema.stationFavourites)
      .values({ userId: user.id, stationId, createdAt: Date.now() })
      .onConflictDoNothing();
    return c.json(await favouriteState(c, stationId, user.id));
  })
  .delete('/stations/:stationId/favourite', async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    await findStation(c, stationId);
    const f = schema.stationFavourites;
    await db(c.env.DB)
      .delete(f)
      .where(and(eq(f.stationId, stationId), eq(f.userId, user.id)));
    return c.json(await favouriteState(c, stationId, user.id));
  })
  .get('/me/favourites', async (c) => {
    const user = currentUser(c);
    const f = schema.stationFavourites;
    const favourites = await db(c.env.DB)
      .select({ stationId: f.stationId })
      .from(f)
      .where(eq(f.userId, user.id))
      .orderBy(desc(f.createdAt))
      .limit(200);
    const ids = favourites.map((r) => r.stationId);
    if (ids.length === 0) return c.json({ stations: [] });
    const rows = await db(c.env.DB)
      .select()
      .from(schema.stations)
      .where(inArray(schema.stations.id, ids));
    const counts = await lobby.room(c.env).counts(ids);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return c.json({
      stations: ids.flatMap((id) => {
        const row = byId.get(id);
        return row ? [stationView(row, counts[id])] : [];
      }),
    });
  })
  .get('/admin/streams', async (c) => {
    requireRole(c, 'admin');
    return c.json(await lobby.room(c.env).adminStreams());
  });

export const stationSockets = new Hono<AppEnv>()
  .get('/stations/:stationId', (c) =>
    station.connect(c.req.raw, c.env, c.get('user'), pathId(c, 'stationId')),
  )
  .get('/', (c) => lobby.connect(c.req.raw, c.env, c.get('user')));
