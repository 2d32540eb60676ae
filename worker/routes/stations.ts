// Stations: records and listings from D1 (live state is mirrored there by each StreamRoom),
// listener counts from the Lobby's directory (one RPC per page), and every live-state or chat
// write through the station's StreamRoom — the same path its socket frames take.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { cursorParam } from '../db/paging';
import {
  addFavourite,
  favouriteState,
  favouriteStationIds,
  findStation,
  insertStation,
  listSessions,
  listStations,
  removeFavourite,
  type StationRow,
  stationsByIds,
  updateStation,
} from '../db/stations';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn, signedInAs } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf, idempotent } from '../http/idempotency';
import { messageLimit } from '../http/rate-limit';
import { jsonBody, pathId, query } from '../http/validate';
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

export async function existingStation(c: Context<AppEnv>, stationId: string): Promise<StationRow> {
  const row = await findStation(c.env.DB, stationId);
  if (!row) throw new ApiError(404, ErrorCode.notFound, 'no such station');
  return row;
}

/** The station, if the signed-in user owns it or is an admin (the room checks again). */
export async function managedStation(
  c: Context<AppEnv>,
): Promise<{ row: StationRow; user: PublicUser }> {
  const user = currentUser(c);
  const row = await existingStation(c, pathId(c, 'stationId'));
  if (!mayManageStation(row, user)) {
    throw new ApiError(403, ErrorCode.forbidden, 'only the station owner or an admin may do that');
  }
  return { row, user };
}

export const stationRoutes = new Hono<AppEnv>()
  .get('/stations', query(listQuery), async (c) => {
    const { live, limit, before } = c.req.valid('query');
    const { page, nextCursor } = await listStations(c.env.DB, {
      live: live === undefined ? undefined : live === 'true',
      limit,
      before,
    });
    const counts = await lobby.room(c.env).counts(page.map((r) => r.id));
    return c.json({
      stations: page.map((r) => stationView(r, counts[r.id])),
      nextCursor,
    });
  })
  .post(
    '/stations',
    signedInAs('station_owner'),
    jsonBody(stationCreateBody),
    idempotent,
    async (c) => {
      const user = currentUser(c);
      const body = c.req.valid('json');
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
      await insertStation(c.env.DB, row);
      return c.json({ station: stationView(row, undefined) }, 201);
    },
  )
  .get('/stations/:stationId', async (c) => {
    const stationId = pathId(c, 'stationId');
    const row = await existingStation(c, stationId);
    // One station: ask its room, which holds the exact counts and the authoritative live state.
    const status = await station.room(c.env, stationId).status();
    const user = c.get('user');
    const favourites = await favouriteState(c.env.DB, stationId, user?.id ?? null);
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
        favourited: favourites.favourited,
      },
    });
  })
  .patch('/stations/:stationId', signedIn, jsonBody(stationUpdateBody), idempotent, async (c) => {
    const { row } = await managedStation(c);
    const body = c.req.valid('json');
    const next: StationRow = {
      ...row,
      ...(body.name === undefined ? {} : { name: body.name }),
      ...(body.description === undefined ? {} : { description: body.description }),
      ...(body.genre === undefined ? {} : { genre: body.genre ?? null }),
      updatedAt: Date.now(),
    };
    await updateStation(c.env.DB, row.id, {
      name: next.name,
      description: next.description,
      genre: next.genre,
      updatedAt: next.updatedAt,
    });
    await station.room(c.env, row.id).stationUpdated();
    return c.json({ station: stationView(next, undefined) });
  })
  // Going live, stopping, now playing and moderation pass their Idempotency-Key to the room,
  // which keeps it with the change (the same rule, in the same commit): not `idempotent`.
  .post('/stations/:stationId/live', signedIn, jsonBody(showInfo), async (c) => {
    const { row, user } = await managedStation(c);
    const show = c.req.valid('json');
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
  .put('/stations/:stationId/now-playing', signedIn, jsonBody(metadataUpdate), async (c) => {
    const { row, user } = await managedStation(c);
    const patch = c.req.valid('json');
    const frame = { type: 'stream.metadata', ...patch };
    return answered(
      c,
      await station.room(c.env, row.id).request(user, frame, idempotencyKeyOf(c)),
      200,
    );
  })
  .get('/stations/:stationId/sessions', query(sessionsQuery), async (c) => {
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    const { limit } = c.req.valid('query');
    return c.json({ sessions: await listSessions(c.env.DB, stationId, limit) });
  })
  .get('/stations/:stationId/chat', query(chatQuery), async (c) => {
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    const { limit, before } = c.req.valid('query');
    return c.json(await station.room(c.env, stationId).history(limit, before));
  })
  .post(
    '/stations/:stationId/chat',
    signedIn,
    messageLimit,
    jsonBody(z.object({ body: chatBody }).strict()),
    async (c) => {
      const user = currentUser(c);
      const stationId = pathId(c, 'stationId');
      const key = idempotencyKeyOf(c);
      const { body } = c.req.valid('json');
      const frame = { type: 'chat.send', body };
      return answered(c, await station.room(c.env, stationId).request(user, frame, key), 201);
    },
  )
  .delete('/stations/:stationId/chat/:messageId', async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    const messageId = pathId(c, 'messageId');
    const frame = { type: 'chat.delete', messageId };
    const key = idempotencyKeyOf(c);
    return answered(c, await station.room(c.env, stationId).request(user, frame, key), 200);
  })
  .get('/stations/:stationId/moderation', async (c) => {
    const { row, user } = await managedStation(c);
    return c.json(await station.room(c.env, row.id).restrictions(user));
  })
  .post('/stations/:stationId/moderation', signedIn, jsonBody(moderationBody), async (c) => {
    const { row, user } = await managedStation(c);
    const request = c.req.valid('json');
    const frame = { type: 'chat.moderate', ...request };
    return answered(
      c,
      await station.room(c.env, row.id).request(user, frame, idempotencyKeyOf(c)),
      201,
    );
  })
  .put('/stations/:stationId/favourite', idempotent, async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    if (await addFavourite(c.env.DB, user.id, stationId, Date.now())) {
      await station.room(c.env, stationId).favourited(1);
    }
    return c.json(await favouriteState(c.env.DB, stationId, user.id));
  })
  .delete('/stations/:stationId/favourite', idempotent, async (c) => {
    const user = currentUser(c);
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    if (await removeFavourite(c.env.DB, user.id, stationId)) {
      await station.room(c.env, stationId).favourited(-1);
    }
    return c.json(await favouriteState(c.env.DB, stationId, user.id));
  })
  .get('/me/favourites', async (c) => {
    const user = currentUser(c);
    const ids = await favouriteStationIds(c.env.DB, user.id, 200);
    if (ids.length === 0) return c.json({ stations: [] });
    const rows = await stationsByIds(c.env.DB, ids);
    const counts = await lobby.room(c.env).counts(ids);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return c.json({
      stations: ids.flatMap((id) => {
        const row = byId.get(id);
        return row ? [stationView(row, counts[id])] : [];
      }),
    });
  })
  .get('/admin/streams', signedInAs('admin'), async (c) => {
    return c.json(await lobby.room(c.env).adminStreams());
  });

export const stationSockets = new Hono<AppEnv>()
  .get('/stations/:stationId', (c) =>
    station.connect(c.req.raw, c.env, c.get('user'), pathId(c, 'stationId')),
  )
  .get('/', (c) => lobby.connect(c.req.raw, c.env, c.get('user')));
