// A station's poll results and per-minute engagement in D1 (issue 11). The StreamRoom writes
// both through its outbox, so the writers are idempotent: a poll's result is inserted once, and
// a minute's row is replaced by the same values when a replayed outbox row applies it again.
import { and, asc, desc, eq } from 'drizzle-orm';
import type { AnalyticsMinute, PollCloseReason, PollResult } from '../protocol/stream-extras';
import { db, schema } from './client';

export function pollResultWrites(d1: D1Database, p: PollResult): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `INSERT INTO polls (id, station_id, session_id, question, options, multiple, opened_by,
           opened_at, closes_at, closed_at, close_reason, tallies, votes, voters, eligible)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(
        p.id,
        p.stationId,
        p.sessionId,
        p.question,
        JSON.stringify(p.options),
        p.multiple ? 1 : 0,
        p.openedBy,
        p.openedAt,
        p.closesAt,
        p.closedAt ?? p.closesAt,
        p.closeReason ?? 'timer',
        JSON.stringify(p.tallies),
        p.votes,
        p.voters,
        p.eligible,
      ),
  ];
}

export interface MinuteRecord extends AnalyticsMinute {
  sessionId: string;
  stationId: string;
}

export function minuteWrites(d1: D1Database, m: MinuteRecord): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `INSERT INTO session_minutes (session_id, station_id, minute, listeners, peak,
           distinct_listeners, joins, chat_messages, reactions, poll_votes, favourites_gained,
           favourites_lost, listening_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (session_id, minute) DO UPDATE SET listeners = excluded.listeners,
           peak = excluded.peak, distinct_listeners = excluded.distinct_listeners,
           joins = excluded.joins, chat_messages = excluded.chat_messages,
           reactions = excluded.reactions, poll_votes = excluded.poll_votes,
           favourites_gained = excluded.favourites_gained,
           favourites_lost = excluded.favourites_lost, listening_ms = excluded.listening_ms`,
      )
      .bind(
        m.sessionId,
        m.stationId,
        m.minute,
        m.listeners,
        m.peak,
        m.distinct,
        m.joins,
        m.chatMessages,
        JSON.stringify(m.reactions),
        m.pollVotes,
        m.favouritesGained,
        m.favouritesLost,
        m.listeningMs,
      ),
  ];
}

type PollRow = typeof schema.polls.$inferSelect;

function pollOf(r: PollRow): PollResult {
  return {
    id: r.id,
    stationId: r.stationId,
    sessionId: r.sessionId,
    question: r.question,
    options: JSON.parse(r.options) as string[],
    multiple: r.multiple,
    openedBy: r.openedBy ?? '',
    openedAt: r.openedAt,
    closesAt: r.closesAt,
    closedAt: r.closedAt,
    closeReason: r.closeReason as PollCloseReason,
    open: false,
    tallies: JSON.parse(r.tallies) as number[],
    votes: r.votes,
    voters: r.voters,
    eligible: r.eligible,
  };
}

/** Closed polls of a station (optionally of one session), newest first. */
export async function listPolls(
  d1: D1Database,
  stationId: string,
  q: { sessionId?: string; limit: number },
): Promise<PollResult[]> {
  const t = schema.polls;
  const rows = await db(d1)
    .select()
    .from(t)
    .where(and(eq(t.stationId, stationId), q.sessionId ? eq(t.sessionId, q.sessionId) : undefined))
    .orderBy(desc(t.openedAt), desc(t.id))
    .limit(q.limit);
  return rows.map(pollOf);
}

export function findSession(d1: D1Database, stationId: string, sessionId: string) {
  const s = schema.broadcastSessions;
  return db(d1)
    .select()
    .from(s)
    .where(and(eq(s.id, sessionId), eq(s.stationId, stationId)))
    .get();
}

/** A session's closed minutes, oldest first. */
export async function sessionMinutes(
  d1: D1Database,
  sessionId: string,
): Promise<AnalyticsMinute[]> {
  const m = schema.sessionMinutes;
  const rows = await db(d1)
    .select()
    .from(m)
    .where(eq(m.sessionId, sessionId))
    .orderBy(asc(m.minute));
  return rows.map((r) => ({
    minute: r.minute,
    listeners: r.listeners,
    peak: r.peak,
    distinct: r.distinctListeners,
    joins: r.joins,
    chatMessages: r.chatMessages,
    reactions: JSON.parse(r.reactions) as AnalyticsMinute['reactions'],
    pollVotes: r.pollVotes,
    favouritesGained: r.favouritesGained,
    favouritesLost: r.favouritesLost,
    listeningMs: r.listeningMs,
  }));
}
