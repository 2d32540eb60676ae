// Stations in D1: the station rows, broadcast sessions, chat and moderation records. A station's
// StreamRoom is the single writer of its live state; it writes here through its outbox, so every
// writer below is idempotent (applying a row twice changes nothing).
import { and, count, desc, eq, inArray, isNull } from 'drizzle-orm';
import type { LanePage, LaneStore } from '../channel/messages';
import type {
  BroadcastSession,
  ChatMessage,
  NowPlaying,
  SessionSummary,
  StationInfo,
} from '../protocol/stream';
import { inChunks } from './chunks';
import { authorColumns, authorOf, db, schema } from './client';
import { pageOf, pastCursor } from './paging';

export async function readStation(d1: D1Database, id: string): Promise<StationInfo | null> {
  const row = await db(d1).query.stations.findFirst({ where: eq(schema.stations.id, id) });
  if (!row) return null;
  return {
    id: row.id,
    ownerId: row.ownerId,
    name: row.name,
    description: row.description,
    genre: row.genre,
  };
}

/** A page of chat, newest first; `before` is an opaque `<createdAt>.<id>` cursor. */
export async function chatPage(
  d1: D1Database,
  stationId: string,
  limit: number,
  before?: string,
): Promise<LanePage<ChatMessage>> {
  const t = schema.chatMessages;
  const rows = await db(d1)
    .select({
      id: t.id,
      sessionId: t.sessionId,
      body: t.body,
      createdAt: t.createdAt,
      ...authorColumns,
    })
    .from(t)
    .innerJoin(schema.users, eq(schema.users.id, t.userId))
    .where(
      and(
        eq(t.stationId, stationId),
        isNull(t.deletedAt),
        pastCursor(t.createdAt, t.id, before, 'desc'),
      ),
    )
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => [r.createdAt, r.id]);
  return {
    messages: page.map((r) => ({
      id: r.id,
      sessionId: r.sessionId,
      user: authorOf(r),
      body: r.body,
      createdAt: r.createdAt,
    })),
    nextCursor,
  };
}

export const chatStore: LaneStore<ChatMessage> = {
  insert: (d1, stationId, m) => {
    const insert = d1
      .prepare(
        `INSERT INTO chat_messages (id, station_id, session_id, user_id, body, created_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(m.id, stationId, m.sessionId, m.user.id, m.body, m.createdAt);
    if (!m.sessionId) return [insert];
    // Counted on its session only when the insert above wrote a row (a replay adds nothing).
    const count = d1
      .prepare(
        'UPDATE broadcast_sessions SET chat_message_count = chat_message_count + changes() WHERE id = ?',
      )
      .bind(m.sessionId);
    return [insert, count];
  },
  remove: (d1, d) => [
    d1
      .prepare(
        'UPDATE chat_messages SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL',
      )
      .bind(d.at, d.by, d.id),
  ],
  async find(d1, stationId, id) {
    const t = schema.chatMessages;
    const row = await db(d1)
      .select({ userId: t.userId, deletedAt: t.deletedAt })
      .from(t)
      .where(and(eq(t.id, id), eq(t.stationId, stationId)))
      .get();
    return row ?? null;
  },
  page: chatPage,
};

/** Opens the session and marks the station live. */
export function sessionStartWrites(
  d1: D1Database,
  s: { session: BroadcastSession; nowPlaying: NowPlaying; peak: number; distinct: number },
): D1PreparedStatement[] {
  const { session, nowPlaying } = s;
  return [
    d1
      .prepare(
        `INSERT INTO broadcast_sessions (id, station_id, show_title, host_name, show_type,
           host_user_id, started_at, peak_listeners, distinct_listeners, chat_message_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(
        session.id,
        session.stationId,
        session.showTitle,
        session.hostName,
        session.showType,
        session.hostUserId,
        session.startedAt,
        s.peak,
        s.distinct,
      ),
    d1
      .prepare(
        `UPDATE stations SET is_live = 1, current_session_id = ?, now_playing = ?, updated_at = ?
         WHERE id = ?`,
      )
      .bind(session.id, JSON.stringify(nowPlaying), session.startedAt, session.stationId),
  ];
}

/** Closes the session with its final numbers (never lower than written) and marks the station offline. */
export function sessionEndWrites(d1: D1Database, summary: SessionSummary): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `UPDATE broadcast_sessions SET ended_at = ?,
           peak_listeners = MAX(peak_listeners, ?), distinct_listeners = MAX(distinct_listeners, ?)
         WHERE id = ?`,
      )
      .bind(summary.endedAt, summary.peakListeners, summary.distinctListeners, summary.id),
    d1
      .prepare(
        `UPDATE stations SET is_live = 0, current_session_id = NULL, now_playing = NULL, updated_at = ?
         WHERE id = ? AND current_session_id = ?`,
      )
      .bind(summary.endedAt, summary.stationId, summary.id),
  ];
}

/** The session's peak and distinct listeners: monotonic, so a replay or a late write never lowers them. */
export function sessionStatsWrites(
  d1: D1Database,
  s: { sessionId: string; peak: number; distinct: number },
): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `UPDATE broadcast_sessions SET peak_listeners = MAX(peak_listeners, ?),
           distinct_listeners = MAX(distinct_listeners, ?) WHERE id = ?`,
      )
      .bind(s.peak, s.distinct, s.sessionId),
  ];
}

export function nowPlayingWrites(
  d1: D1Database,
  s: { session: BroadcastSession; nowPlaying: NowPlaying },
): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        'UPDATE stations SET now_playing = ?, updated_at = ? WHERE id = ? AND current_session_id = ?',
      )
      .bind(
        JSON.stringify(s.nowPlaying),
        s.nowPlaying.updatedAt,
        s.session.stationId,
        s.session.id,
      ),
    d1
      .prepare('UPDATE broadcast_sessions SET show_title = ?, host_name = ? WHERE id = ?')
      .bind(s.session.showTitle, s.session.hostName, s.session.id),
  ];
}

export interface ModerationRecord {
  id: string;
  stationId: string;
  targetUserId: string;
  action: (typeof schema.MODERATION_ACTIONS)[number];
  moderatorId: string;
  reason: string | null;
  expiresAt: number | null;
  createdAt: number;
}

export function moderationWrites(d1: D1Database, r: ModerationRecord): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `INSERT INTO moderation_actions (id, station_id, target_user_id, action, moderator_id,
           reason, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(
        r.id,
        r.stationId,
        r.targetUserId,
        r.action,
        r.moderatorId,
        r.reason,
        r.createdAt,
        r.expiresAt,
      ),
  ];
}

// ---- what the REST routes read and edit: station records, sessions, favourites ----

export type StationRow = typeof schema.stations.$inferSelect;
export type SessionRow = typeof schema.broadcastSessions.$inferSelect;

/** A page of stations, newest first; `live` filters on the mirrored live flag. */
export async function listStations(
  d1: D1Database,
  q: { live?: boolean; limit: number; before?: string },
): Promise<{ page: StationRow[]; nextCursor: string | null }> {
  const t = schema.stations;
  const after = pastCursor(t.createdAt, t.id, q.before, 'desc');
  const rows = await db(d1)
    .select()
    .from(t)
    .where(and(q.live === undefined ? undefined : eq(t.isLive, q.live), after))
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(q.limit + 1);
  return pageOf(rows, q.limit, (r) => [r.createdAt, r.id]);
}

export function findStation(d1: D1Database, id: string): Promise<StationRow | undefined> {
  return db(d1).query.stations.findFirst({ where: eq(schema.stations.id, id) });
}

/** The stations with these ids, in no particular order (missing ids are skipped). */
export function stationsByIds(d1: D1Database, ids: readonly string[]): Promise<StationRow[]> {
  const t = schema.stations;
  return inChunks(ids, (chunk) => db(d1).select().from(t).where(inArray(t.id, chunk)));
}

export async function insertStation(d1: D1Database, row: StationRow): Promise<void> {
  await db(d1).insert(schema.stations).values(row);
}

export async function updateStation(
  d1: D1Database,
  id: string,
  fields: Pick<StationRow, 'name' | 'description' | 'genre' | 'updatedAt'>,
): Promise<void> {
  await db(d1).update(schema.stations).set(fields).where(eq(schema.stations.id, id));
}

/** A station's broadcast sessions, newest first. */
export function listSessions(d1: D1Database, stationId: string, limit: number) {
  const s = schema.broadcastSessions;
  return db(d1)
    .select()
    .from(s)
    .where(eq(s.stationId, stationId))
    .orderBy(desc(s.startedAt), desc(s.id))
    .limit(limit);
}

export interface FavouriteState {
  stationId: string;
  favourited: boolean;
  favourites: number;
}

/** How many users favourite the station, and whether `userId` is one of them. */
export async function favouriteState(
  d1: D1Database,
  stationId: string,
  userId: string | null,
): Promise<FavouriteState> {
  const database = db(d1);
  const f = schema.stationFavourites;
  const [total, mine] = await database.batch([
    database.select({ n: count() }).from(f).where(eq(f.stationId, stationId)),
    database
      .select({ n: count() })
      .from(f)
      .where(and(eq(f.stationId, stationId), eq(f.userId, userId ?? ''))),
  ]);
  return {
    stationId,
    favourited: userId !== null && (mine[0]?.n ?? 0) > 0,
    favourites: total[0]?.n ?? 0,
  };
}

export async function addFavourite(
  d1: D1Database,
  userId: string,
  stationId: string,
  at: number,
): Promise<boolean> {
  const result = await db(d1)
    .insert(schema.stationFavourites)
    .values({ userId, stationId, createdAt: at })
    .onConflictDoNothing();
  // True when this call added the favourite (the session's analytics count gains, issue 11).
  return result.meta.changes > 0;
}

export async function removeFavourite(
  d1: D1Database,
  userId: string,
  stationId: string,
): Promise<boolean> {
  const f = schema.stationFavourites;
  const result = await db(d1)
    .delete(f)
    .where(and(eq(f.stationId, stationId), eq(f.userId, userId)));
  return result.meta.changes > 0;
}

/** The stations a user favourited, most recent first. */
export async function favouriteStationIds(
  d1: D1Database,
  userId: string,
  limit: number,
): Promise<string[]> {
  const f = schema.stationFavourites;
  const rows = await db(d1)
    .select({ stationId: f.stationId })
    .from(f)
    .where(eq(f.userId, userId))
    .orderBy(desc(f.createdAt))
    .limit(limit);
  return rows.map((r) => r.stationId);
}
