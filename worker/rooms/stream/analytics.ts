// Live engagement of a broadcast session (issue 11), kept as per-minute buckets (UTC minutes) in
// the DO's SQLite while the station is live: listeners (current, peak, distinct), joins, chat,
// reactions per emoji, poll ballots, favourites, listening time. A bucket is written to D1
// through the outbox when its minute closes (and the open one when the show stops); nothing is
// recomputed from raw rows. Listening time runs per listener — a signed-in user from their first
// tab to their last, an anonymous connection on its own. docs/stations.md.
import type { ChannelKit, Tx } from '../../channel/room';
import { type MinuteRecord, minuteWrites } from '../../db/engagement';
import type { ListenerCounts, ReactionEmoji } from '../../protocol/stream';
import type {
  AnalyticsMinute,
  EngagementSummary,
  PollParticipation,
  SessionAnalytics,
} from '../../protocol/stream-extras';

export const MINUTE_MS = 60_000;
/** A live frame carries this many of the latest minutes; `GET …/analytics` has them all. */
export const LIVE_FRAME_MINUTES = 10;
/** After a long sleep, at most this many empty minutes are filled in at once. */
const MAX_GAP_MINUTES = 24 * 60;

export const minuteOf = (t: number): number => Math.floor(t / MINUTE_MS) * MINUTE_MS;

type MinuteRow = {
  minute: number;
  listeners: number;
  peak: number;
  distinct_count: number;
  joins: number;
  chat: number;
  reactions: string;
  poll_votes: number;
  fav_gained: number;
  fav_lost: number;
  listening_ms: number;
  closed: number;
};

export interface AnalyticsSession {
  id: string;
  startedAt: number;
  endedAt: number | null;
}

type Counter = 'joins' | 'chat' | 'poll_votes' | 'fav_gained' | 'fav_lost';

export class SessionAnalyticsBook {
  constructor(
    private readonly kit: ChannelKit,
    private readonly stationId: string,
  ) {
    kit.sql.exec(`CREATE TABLE IF NOT EXISTS stream_minutes (
      minute INTEGER PRIMARY KEY, listeners INTEGER NOT NULL, peak INTEGER NOT NULL,
      distinct_count INTEGER NOT NULL, joins INTEGER NOT NULL DEFAULT 0, chat INTEGER NOT NULL DEFAULT 0,
      reactions TEXT NOT NULL DEFAULT '{}', poll_votes INTEGER NOT NULL DEFAULT 0,
      fav_gained INTEGER NOT NULL DEFAULT 0, fav_lost INTEGER NOT NULL DEFAULT 0,
      listening_ms INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0)`);
    kit.sql.exec(
      'CREATE TABLE IF NOT EXISTS stream_listening (key TEXT PRIMARY KEY, since INTEGER NOT NULL)',
    );
    kit.outbox.register('session.minute', minuteWrites);
  }

  /** The session the buckets belong to (the live one, or the last one once it stopped). */
  get session(): AnalyticsSession | null {
    return JSON.parse(
      this.kit.log.getMeta('analyticsSession') ?? 'null',
    ) as AnalyticsSession | null;
  }

  get live(): boolean {
    const s = this.session;
    return s !== null && s.endedAt === null;
  }

  /** A new session: empty buckets, and everyone here now starts listening. */
  start(sessionId: string, counts: ListenerCounts, keys: Iterable<string>, now = Date.now()): void {
    this.kit.sql.exec('DELETE FROM stream_minutes');
    this.kit.sql.exec('DELETE FROM stream_listening');
    this.#setMeta('analyticsSession', { id: sessionId, startedAt: now, endedAt: null });
    this.#setMeta('listenedMs', 0);
    this.#setMeta('listenedAtClose', 0);
    for (const key of new Set(keys)) this.#startListening(key, now);
    this.#openMinute(minuteOf(now), counts.listeners, counts.distinct);
  }

  /** The show stops: every listener's time is counted and the open minute is written (in `tx`). */
  stop(tx: Tx, counts: ListenerCounts, now = Date.now()): void {
    const session = this.session;
    if (!session || session.endedAt !== null) return;
    this.#rollWithin(tx, now, counts);
    const keys = this.kit.sql
      .exec<{ key: string }>('SELECT key FROM stream_listening')
      .toArray()
      .map((r) => r.key);
    for (const key of keys) this.#stopListening(key, now);
    this.#listeners(counts);
    this.#closeMinute(tx, minuteOf(now), now);
    this.#setMeta('analyticsSession', { ...session, endedAt: now });
  }

  /** Closes minutes that have ended (each one written to D1 in its own commit). */
  roll(counts: ListenerCounts, now = Date.now()): void {
    if (!this.live) return;
    const open = this.#openMinuteRow();
    if (open && open.minute >= minuteOf(now)) return;
    this.kit.commit(null, (tx) => {
      this.#rollWithin(tx, now, counts);
      return {};
    });
  }

  /** When the open minute ends (for the room's alarm), or null when not live. */
  nextBoundary(now = Date.now()): number | null {
    return this.live ? minuteOf(now) + MINUTE_MS : null;
  }

  joined(key: string, startsListening: boolean, counts: ListenerCounts, now = Date.now()): void {
    if (!this.live) return;
    this.roll(counts, now);
    if (startsListening) this.#startListening(key, now);
    this.#count('joins', 1);
    this.#listeners(counts);
  }

  left(key: string, stopsListening: boolean, counts: ListenerCounts, now = Date.now()): void {
    if (!this.live) return;
    this.roll(counts, now);
    if (stopsListening) this.#stopListening(key, now);
    this.#listeners(counts);
  }

  chat(counts: ListenerCounts, now = Date.now()): void {
    this.#bump('chat', 1, counts, now);
  }

  ballot(counts: ListenerCounts, now = Date.now()): void {
    this.#bump('poll_votes', 1, counts, now);
  }

  favourite(delta: 1 | -1, counts: ListenerCounts, now = Date.now()): void {
    this.#bump(delta > 0 ? 'fav_gained' : 'fav_lost', 1, counts, now);
  }

  reactions(
    window: Partial<Record<ReactionEmoji, number>>,
    counts: ListenerCounts,
    now = Date.now(),
  ): void {
    if (!this.live) return;
    this.roll(counts, now);
    const open = this.#openMinuteRow();
    if (!open) return;
    const sums = JSON.parse(open.reactions) as Record<string, number>;
    for (const [emoji, n] of Object.entries(window)) sums[emoji] = (sums[emoji] ?? 0) + (n ?? 0);
    this.kit.sql.exec(
      'UPDATE stream_minutes SET reactions = ? WHERE minute = ?',
      JSON.stringify(sums),
      open.minute,
    );
  }

  /** The session's analytics from the buckets (the open minute included, as it stands now). */
  summary(
    counts: ListenerCounts,
    polls: PollParticipation[],
    now = Date.now(),
  ): SessionAnalytics | null {
    const session = this.session;
    if (!session) return null;
    const live = session.endedAt === null;
    const rows = this.kit.sql
      .exec<MinuteRow>('SELECT * FROM stream_minutes ORDER BY minute')
      .toArray();
    const minutes = rows.map((r) => {
      const m = minuteFrom(r);
      if (live && r.closed === 0)
        m.listeningMs = this.#listenedTotal(now) - this.#meta('listenedAtClose');
      return m;
    });
    return summarise({
      stationId: this.stationId,
      sessionId: session.id,
      live,
      startedAt: session.startedAt,
      endedAt: session.endedAt,
      current: live ? counts.listeners : 0,
      peak: counts.peak,
      distinct: counts.distinct,
      minutes,
      polls,
      now,
    });
  }

  /** What the lobby's admin view sums across live stations. */
  engagement(counts: ListenerCounts, now = Date.now()): EngagementSummary | null {
    const s = this.summary(counts, [], now);
    if (!s?.live) return null;
    return engagementOf(s);
  }

  // ---- buckets ---------------------------------------------------------------------

  #rollWithin(tx: Tx, now: number, counts: ListenerCounts): void {
    const open = this.#openMinuteRow();
    const current = minuteOf(now);
    if (!open) {
      this.#openMinute(current, counts.listeners, counts.distinct);
      return;
    }
    if (open.minute >= current) return;
    this.#closeMinute(tx, open.minute, open.minute + MINUTE_MS);
    // Minutes nobody woke the object in carry the listeners over (the alarm normally prevents it).
    const first = Math.max(open.minute + MINUTE_MS, current - MAX_GAP_MINUTES * MINUTE_MS);
    for (let m = first; m < current; m += MINUTE_MS) {
      this.#openMinute(m, open.listeners, open.distinct_count);
      this.#closeMinute(tx, m, m + MINUTE_MS);
    }
    this.#openMinute(current, counts.listeners, counts.distinct);
  }

  #openMinute(minute: number, listeners: number, distinct: number): void {
    this.kit.sql.exec(
      `INSERT OR IGNORE INTO stream_minutes (minute, listeners, peak, distinct_count)
       VALUES (?, ?, ?, ?)`,
      minute,
      listeners,
      listeners,
      distinct,
    );
  }

  /** Freezes a minute's listening time at `end` and queues its row for D1. */
  #closeMinute(tx: Tx, minute: number, end: number): void {
    const total = this.#listenedTotal(end);
    const listened = Math.max(0, total - this.#meta('listenedAtClose'));
    this.#setMeta('listenedAtClose', total);
    this.kit.sql.exec(
      'UPDATE stream_minutes SET listening_ms = ?, closed = 1 WHERE minute = ?',
      listened,
      minute,
    );
    const row = this.kit.sql
      .exec<MinuteRow>('SELECT * FROM stream_minutes WHERE minute = ?', minute)
      .toArray()[0];
    const session = this.session;
    if (!row || !session) return;
    const record: MinuteRecord = {
      ...minuteFrom(row),
      sessionId: session.id,
      stationId: this.stationId,
    };
    tx.outbox('session.minute', record);
  }

  #openMinuteRow(): MinuteRow | undefined {
    return this.kit.sql
      .exec<MinuteRow>('SELECT * FROM stream_minutes WHERE closed = 0 ORDER BY minute DESC LIMIT 1')
      .toArray()[0];
  }

  #bump(counter: Counter, by: number, counts: ListenerCounts, now: number): void {
    if (!this.live) return;
    this.roll(counts, now);
    this.#count(counter, by);
  }

  #count(counter: Counter, by: number): void {
    this.kit.sql.exec(`UPDATE stream_minutes SET ${counter} = ${counter} + ? WHERE closed = 0`, by);
  }

  #listeners(counts: ListenerCounts): void {
    this.kit.sql.exec(
      `UPDATE stream_minutes SET listeners = ?, peak = MAX(peak, ?), distinct_count = ?
       WHERE closed = 0`,
      counts.listeners,
      counts.listeners,
      counts.distinct,
    );
  }

  // ---- listening time --------------------------------------------------------------

  #startListening(key: string, now: number): void {
    this.kit.sql.exec(
      'INSERT OR IGNORE INTO stream_listening (key, since) VALUES (?, ?)',
      key,
      now,
    );
  }

  #stopListening(key: string, now: number): void {
    const row = this.kit.sql
      .exec<{ since: number }>('DELETE FROM stream_listening WHERE key = ? RETURNING since', key)
      .toArray()[0];
    if (row) this.#setMeta('listenedMs', this.#meta('listenedMs') + Math.max(0, now - row.since));
  }

  /** Listening time of the session up to `at`: finished stretches plus the open ones. */
  #listenedTotal(at: number): number {
    const open = this.kit.sql
      .exec<{ n: number; since: number | null }>(
        'SELECT COUNT(*) AS n, SUM(since) AS since FROM stream_listening',
      )
      .one();
    return this.#meta('listenedMs') + Math.max(0, open.n * at - (open.since ?? 0));
  }

  #meta(key: string): number {
    return Number(this.kit.log.getMeta(key) ?? '0');
  }

  #setMeta(key: string, value: unknown): void {
    this.kit.log.setMeta(key, typeof value === 'number' ? String(value) : JSON.stringify(value));
  }
}

function minuteFrom(r: MinuteRow): AnalyticsMinute {
  return {
    minute: r.minute,
    listeners: r.listeners,
    peak: r.peak,
    distinct: r.distinct_count,
    joins: r.joins,
    chatMessages: r.chat,
    reactions: JSON.parse(r.reactions) as AnalyticsMinute['reactions'],
    pollVotes: r.poll_votes,
    favouritesGained: r.fav_gained,
    favouritesLost: r.fav_lost,
    listeningMs: r.listening_ms,
  };
}

/** A session's analytics from its minutes: the same arithmetic for the live object and for D1. */
export function summarise(s: {
  stationId: string;
  sessionId: string;
  live: boolean;
  startedAt: number;
  endedAt: number | null;
  current: number;
  peak: number;
  distinct: number;
  minutes: AnalyticsMinute[];
  polls: PollParticipation[];
  now: number;
}): SessionAnalytics {
  const reactions: Record<string, number> = {};
  let chat = 0;
  let pollVotes = 0;
  let gained = 0;
  let lost = 0;
  let listeningMs = 0;
  let peak = s.peak;
  let distinct = s.distinct;
  for (const m of s.minutes) {
    chat += m.chatMessages;
    pollVotes += m.pollVotes;
    gained += m.favouritesGained;
    lost += m.favouritesLost;
    listeningMs += m.listeningMs;
    peak = Math.max(peak, m.peak);
    distinct = Math.max(distinct, m.distinct);
    for (const [emoji, n] of Object.entries(m.reactions))
      reactions[emoji] = (reactions[emoji] ?? 0) + (n ?? 0);
  }
  // Minutes of the session so far (at least one), for the per-minute rates.
  const span = Math.max(1, ((s.endedAt ?? s.now) - s.startedAt) / MINUTE_MS);
  const perMinute: Record<string, number> = {};
  for (const [emoji, n] of Object.entries(reactions)) perMinute[emoji] = round(n / span);
  return {
    stationId: s.stationId,
    sessionId: s.sessionId,
    live: s.live,
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    listeners: { current: s.current, peak, distinct },
    chatMessages: chat,
    chatPerMinute: round(chat / span),
    reactions,
    reactionsPerMinute: perMinute,
    pollVotes,
    polls: s.polls,
    favouritesGained: gained,
    favouritesLost: lost,
    averageListeningSeconds: distinct > 0 ? round(listeningMs / distinct / 1000) : 0,
    listeningSeconds: round(listeningMs / 1000),
    minutes: s.minutes,
    at: s.now,
  };
}

export function engagementOf(s: SessionAnalytics): EngagementSummary {
  let reactions = 0;
  for (const n of Object.values(s.reactionsPerMinute)) reactions += n ?? 0;
  return {
    pollVotes: s.pollVotes,
    favouritesGained: s.favouritesGained,
    listeningSeconds: s.listeningSeconds,
    averageListeningSeconds: s.averageListeningSeconds,
    reactionsPerMinute: round(reactions),
    chatPerMinute: s.chatPerMinute,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
