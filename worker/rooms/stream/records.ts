// The station's records in D1: what outlives the channel (stations, sessions, chat, moderation).
// The StreamRoom is the single writer of live state; these are its writes and reads.
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import { authorColumns, authorOf, db, schema } from '../../db/client';
import { pageOf, pastCursor } from '../../http/paging';
import type {
  BroadcastSession,
  ChatMessage,
  NowPlaying,
  SessionSummary,
  StationInfo,
} from '../../protocol/stream';

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

export async function readUserRole(d1: D1Database, id: string): Promise<string | null> {
  const row = await db(d1)
    .select({ role: schema.users.role })
    .from(schema.users)
    .where(eq(schema.users.id, id))
    .get();
  return row?.role ?? null;
}

/** A page of chat, newest first; `before` is an opaque `<createdAt>.<id>` cursor. */
export async function readChatPage(
  d1: D1Database,
  stationId: string,
  limit: number,
  before?: string,
): Promise<{ messages: ChatMessage[]; nextCursor: string | null }> {
  const t = schema.chatMessages;
  const cursor = pastCursor(t.createdAt, t.id, before, 'desc');
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
    .where(and(eq(t.stationId, stationId), isNull(t.deletedAt), cursor))
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => [r.createdAt, r.id]);
  return {
    messages: page.map((r) => ({
      id: r.id,
      stationId,
      sessionId: r.sessionId,
      user: authorOf(r),
      body: r.body,
      createdAt: r.createdAt,
    })),
    nextCursor,
  };
}

/** Opens the session and marks the station live, in one batch (all or nothing). */
export async function recordSessionStart(
  d1: D1Database,
  session: BroadcastSession,
  nowPlaying: NowPlaying,
  peak: number,
  distinct: number,
): Promise<void> {
  const database = db(d1);
  await database.batch([
    database.insert(schema.broadcastSessions).values({
      id: session.id,
      stationId: session.stationId,
      showTitle: session.showTitle,
      hostName: session.hostName,
      showType: session.showType,
      hostUserId: session.hostUserId,
      startedAt: session.startedAt,
      peakListeners: peak,
      distinctListeners: distinct,
      chatMessageCount: 0,
    }),
    database
      .update(schema.stations)
      .set({
        isLive: true,
        currentSessionId: session.id,
        nowPlaying: JSON.stringify(nowPlaying),
        updatedAt: session.startedAt,
      })
      .where(eq(schema.stations.id, session.stationId)),
  ]);
}

/** Closes the session with its final numbers and marks the station offline. */
export async function recordSessionEnd(d1: D1Database, summary: SessionSummary): Promise<void> {
  const database = db(d1);
  const s = schema.broadcastSessions;
  await database.batch([
    database
      .update(s)
      .set({
        endedAt: summary.endedAt,
        // Monotonic even if a coalesced write raced ahead: a peak never decreases.
        peakListeners: sql`MAX(${s.peakListeners}, ${summary.peakListeners})`,
        distinctListeners: sql`MAX(${s.distinctListeners}, ${summary.distinctListeners})`,
      })
      .where(eq(s.id, summary.id)),
    database
      .update(schema.stations)
      .set({ isLive: false, currentSessionId: null, nowPlaying: null, updatedAt: summary.endedAt })
      .where(eq(schema.stations.id, summary.stationId)),
  ]);
}

export async function recordSessionStats(
  d1: D1Database,
  sessionId: string,
  peak: number,
  distinct: number,
): Promise<void> {
  const s = schema.broadcastSessions;
  await db(d1)
    .update(s)
    .set({
      peakListeners: sql`MAX(${s.peakListeners}, ${peak})`,
      distinctListeners: sql`MAX(${s.distinctListeners}, ${distinct})`,
    })
    .where(eq(s.id, sessionId));
}

export async function recordNowPlaying(
  d1: D1Database,
  session: BroadcastSession,
  nowPlaying: NowPlaying,
): Promise<void> {
  const database = db(d1);
  await database.batch([
    database
      .update(schema.stations)
      .set({ nowPlaying: JSON.stringify(nowPlaying), updatedAt: nowPlaying.updatedAt })
      .where(eq(schema.stations.id, session.stationId)),
    database
      .update(schema.broadcastSessions)
      .set({ showTitle: session.showTitle, hostName: session.hostName })
      .where(eq(schema.broadcastSessions.id, session.id)),
  ]);
}

/** Stores a message and counts it on its session in one batch. */
export async function recordChat(d1: D1Database, message: ChatMessage): Promise<void> {
  const database = db(d1);
  const insert = database.insert(schema.chatMessages).values({
    id: message.id,
    stationId: message.stationId,
    sessionId: message.sessionId,
    userId: message.user.id,
    body: message.body,
    createdAt: message.createdAt,
  });
  if (!message.sessionId) {
    await insert;
    return;
  }
  const s = schema.broadcastSessions;
  await database.batch([
    insert,
    database
      .update(s)
      .set({ chatMessageCount: sql`${s.chatMessageCount} + 1` })
      .where(eq(s.id, message.sessionId)),
  ]);
}

export async function readChatMessage(d1: D1Database, stationId: string, messageId: string) {
  return db(d1).query.chatMessages.findFirst({
    where: and(eq(schema.chatMessages.id, messageId), eq(schema.chatMessages.stationId, stationId)),
  });
}

export interface ModerationRecord {
  stationId: string;
  targetUserId: string;
  action: (typeof schema.MODERATION_ACTIONS)[number];
  moderatorId: string;
  reason: string | null;
  expiresAt: number | null;
  createdAt: number;
}

function moderationInsert(d1: D1Database, record: ModerationRecord) {
  return db(d1)
    .insert(schema.moderationActions)
    .values({ id: crypto.randomUUID(), ...record });
}

export async function recordModeration(d1: D1Database, record: ModerationRecord): Promise<void> {
  await moderationInsert(d1, record);
}

/** Soft-deletes a message; a deletion by someone other than its author is a moderation action. */
export async function recordChatDeletion(
  d1: D1Database,
  messageId: string,
  deletedBy: string,
  at: number,
  moderation: ModerationRecord | null,
): Promise<void> {
  const database = db(d1);
  const update = database
    .update(schema.chatMessages)
    .set({ deletedAt: at, deletedBy })
    .where(eq(schema.chatMessages.id, messageId));
  if (!moderation) {
    await update;
    return;
  }
  await database.batch([update, moderationInsert(d1, moderation)]);
}
