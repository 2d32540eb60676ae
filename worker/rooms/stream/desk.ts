// The show desk (issue 11): what a station's owner runs during a broadcast besides going live —
// live polls (polls.ts), the track queue (queue.ts) — and the engagement analytics of the
// session (analytics.ts). The StreamRoom composes one desk and hands it each frame, join and
// leave; the desk keeps its own coalesced frames (tallies, the owner's analytics) and timers
// (a poll's deadline, the minute boundary) on the room's alarm. docs/stations.md.
import { Coalesced } from '../../channel/coalesce';
import { ChannelError } from '../../channel/errors';
import type { Call, ChannelKit, Connection, Handled, Tx } from '../../channel/room';
import { findSession, listPolls, sessionMinutes } from '../../db/engagement';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import type {
  ListenerCounts,
  MetadataUpdate,
  NowPlaying,
  ReactionEmoji,
  StreamSnapshot,
} from '../../protocol/stream';
import {
  type EngagementSummary,
  POLL_TALLY_WINDOW_MS,
  type PollCreate,
  type QueueAdd,
  type SessionAnalytics,
} from '../../protocol/stream-extras';
import { LIVE_FRAME_MINUTES, SessionAnalyticsBook, summarise } from './analytics';
import { listenerKey } from './audience';
import type { LiveState } from './live';
import { PollBook, participationOf } from './polls';
import { TrackQueue } from './queue';

/** The owner's live `analytics` frame goes out at most this often. */
export const ANALYTICS_INTERVAL_MS = 5000;
const POLL_TASK = 'poll-deadline';
const MINUTE_TASK = 'analytics-minute';

/** What the desk needs from its room. */
export interface DeskHost {
  readonly kit: ChannelKit;
  readonly stationId: string;
  live(): LiveState | null;
  counts(): ListenerCounts;
  connections(): Iterable<Connection>;
  requireManager(user: PublicUser): Promise<PublicUser>;
  isManager(conn: Connection): boolean;
  /** Publishes a now-playing change in the caller's commit (LiveShow.changeMetadata). */
  changeNowPlaying(
    tx: Tx,
    patch: MetadataUpdate,
    queueItemId: string,
  ): { nowPlaying: NowPlaying; seq: number };
  /** The lobby hears of it at once (live state) or coalesced (counts, engagement). */
  lobbyNow(): Promise<void>;
  lobbySoon(): void;
}

export class ShowDesk {
  readonly polls: PollBook;
  readonly queue: TrackQueue;
  readonly analytics: SessionAnalyticsBook;
  readonly #tallies: Coalesced;
  readonly #ownerFeed: Coalesced;

  constructor(private readonly host: DeskHost) {
    const { kit, stationId } = host;
    this.polls = new PollBook(kit, stationId);
    this.queue = new TrackQueue(kit);
    this.analytics = new SessionAnalyticsBook(kit, stationId);
    this.#tallies = new Coalesced(kit, 'poll-tallies', POLL_TALLY_WINDOW_MS, () =>
      this.#sendTallies(),
    );
    this.#ownerFeed = new Coalesced(kit, 'analytics', ANALYTICS_INTERVAL_MS, () =>
      this.#sendAnalytics(),
    );
    kit.task(POLL_TASK, () => this.#pollDeadline());
    kit.task(MINUTE_TASK, () => this.#minuteBoundary());
  }

  snapshot(conn: Connection): Pick<StreamSnapshot, 'poll' | 'queue'> & { ballot: number[] | null } {
    return {
      poll: this.polls.latest,
      queue: this.queue.items,
      ballot: conn.userId ? this.polls.ballotOf(conn.userId) : null,
    };
  }

  // ---- frames --------------------------------------------------------------------------

  async createPoll(call: Call, req: PollCreate): Promise<Handled> {
    await this.host.requireManager(call.user);
    const live = this.#requireLive('open a poll during a broadcast');
    const users = [...this.host.connections()].flatMap((c) => (c.userId ? [c.userId] : []));
    const handled = this.host.kit.commit(call, (tx) => {
      const poll = this.polls.create(tx, live.session.id, call.user.id, req, users);
      return { seq: this.host.kit.log.seq, result: { poll } };
    });
    const poll = this.polls.open;
    if (poll) await this.host.kit.schedule(POLL_TASK, poll.closesAt, { ifEarlier: true });
    this.#engagementChanged();
    return handled;
  }

  vote(call: Call, pollId: string, choices: number[]): Handled {
    const handled = this.#guarded(() =>
      this.host.kit.commit(call, () => ({
        result: { pollId, ...this.polls.vote(call.user.id, pollId, choices) },
      })),
    );
    const { changed, choices: ballot } = handled.result as { changed: boolean; choices: number[] };
    if (changed) {
      this.#tallies.touch();
      this.host.kit.broadcast(
        { type: 'poll.ballot', pollId, choices: ballot },
        (c) => c.userId === call.user.id && c !== call.conn,
      );
      this.analytics.ballot(this.host.counts());
      this.#engagementChanged();
    }
    return handled;
  }

  async closePoll(call: Call, pollId: string): Promise<Handled> {
    await this.host.requireManager(call.user);
    const handled = this.#guarded(() =>
      this.host.kit.commit(call, (tx) => {
        const poll = this.polls.close(tx, pollId, 'owner');
        return { seq: this.host.kit.log.seq, result: { poll } };
      }),
    );
    this.#engagementChanged();
    return handled;
  }

  async queueAdd(call: Call, req: QueueAdd): Promise<Handled> {
    await this.host.requireManager(call.user);
    return this.#guarded(() =>
      this.host.kit.commit(call, (tx) => {
        const { seq, ...result } = this.queue.add(tx, call.user, req);
        return { seq, result };
      }),
    );
  }

  async queueRemove(call: Call, itemId: string): Promise<Handled> {
    await this.host.requireManager(call.user);
    return this.#guarded(() =>
      this.host.kit.commit(call, (tx) => {
        const { seq, ...result } = this.queue.remove(tx, itemId);
        return { seq, result };
      }),
    );
  }

  async queueMove(call: Call, itemId: string, position: number): Promise<Handled> {
    await this.host.requireManager(call.user);
    return this.#guarded(() =>
      this.host.kit.commit(call, (tx) => {
        const { seq, ...result } = this.queue.move(tx, itemId, position);
        return { seq, result };
      }),
    );
  }

  async queueClear(call: Call): Promise<Handled> {
    await this.host.requireManager(call.user);
    return this.#guarded(() =>
      this.host.kit.commit(call, (tx) => {
        const { seq, ...result } = this.queue.clear(tx);
        return { seq, result };
      }),
    );
  }

  /** The head of the queue plays now: taken off the queue and published as now-playing at once. */
  async queueNext(call: Call): Promise<Handled> {
    await this.host.requireManager(call.user);
    this.#requireLive('go live before advancing the queue');
    const handled = this.#guarded(() =>
      this.host.kit.commit(call, (tx) => {
        const item = this.queue.takeHead();
        const { nowPlaying, seq } = this.host.changeNowPlaying(
          tx,
          { trackName: item.trackName, artistName: item.artistName, trackId: item.trackId },
          item.id,
        );
        return { seq, result: { item, nowPlaying, queue: this.queue.items.length } };
      }),
    );
    await this.host.lobbyNow();
    return handled;
  }

  // ---- the room's lifecycle --------------------------------------------------------------

  /** After the go-live commit: the session's buckets start with whoever is here. */
  started(): void {
    const session = this.host.live()?.session;
    if (!session) return;
    const conns = [...this.host.connections()];
    const keys = conns.map(listenerKey);
    this.analytics.start(session.id, this.host.counts(), keys, session.startedAt);
    this.polls.forgetBefore(session.id);
    const next = this.analytics.nextBoundary();
    if (next !== null) this.host.kit.scheduleSoon(MINUTE_TASK, next);
    this.#engagementChanged();
  }

  /** Inside the stop commit, before `stream.stopped`: the open poll closes. */
  stopping(tx: Tx): void {
    const open = this.polls.open;
    if (open) this.polls.close(tx, open.id, 'stream_stopped');
  }

  /** Inside the stop commit, after it: the session's last minute is written. */
  stopped(tx: Tx, endedAt: number): void {
    this.analytics.stop(tx, this.host.counts(), endedAt);
  }

  joined(conn: Connection, firstOfUser: boolean): void {
    if (conn.userId && this.polls.open) this.polls.noteEligible(conn.userId);
    this.analytics.joined(listenerKey(conn), firstOfUser || !conn.userId, this.host.counts());
    this.#engagementChanged(false);
  }

  left(conn: Connection, lastOfUser: boolean): void {
    this.analytics.left(listenerKey(conn), lastOfUser || !conn.userId, this.host.counts());
    this.#engagementChanged(false);
  }

  chatSent(inSession: boolean): void {
    if (!inSession) return;
    this.analytics.chat(this.host.counts());
    this.#engagementChanged(false);
  }

  reactionsSent(counts: Partial<Record<ReactionEmoji, number>>): void {
    this.analytics.reactions(counts, this.host.counts());
    this.#engagementChanged(false);
  }

  favourite(delta: 1 | -1): { counted: boolean } {
    if (!this.analytics.live) return { counted: false };
    this.analytics.favourite(delta, this.host.counts());
    this.#engagementChanged();
    return { counted: true };
  }

  engagement(): EngagementSummary | null {
    return this.analytics.engagement(this.host.counts());
  }

  /** A session's analytics: from the object for its live or last session, else from D1. */
  async sessionAnalytics(sessionId: string): Promise<SessionAnalytics> {
    if (this.analytics.session?.id === sessionId) {
      const summary = this.analytics.summary(
        this.host.counts(),
        this.polls.participation(sessionId),
      );
      if (summary) return summary;
    }
    const d1 = this.host.kit.env.DB;
    const row = await findSession(d1, this.host.stationId, sessionId);
    if (!row) throw new ChannelError(ErrorCode.sessionNotFound, 'no such broadcast session', 404);
    const [minutes, polls] = await Promise.all([
      sessionMinutes(d1, sessionId),
      listPolls(d1, this.host.stationId, { sessionId, limit: 1000 }),
    ]);
    return summarise({
      stationId: this.host.stationId,
      sessionId,
      live: row.endedAt === null,
      startedAt: row.startedAt,
      endedAt: row.endedAt,
      current: 0,
      peak: row.peakListeners,
      distinct: row.distinctListeners,
      minutes,
      polls: polls.reverse().map(participationOf),
      now: Date.now(),
    });
  }

  // ---- timers and coalesced frames ---------------------------------------------------

  async #pollDeadline(): Promise<void> {
    const open = this.polls.open;
    if (!open) return;
    if (Date.now() < open.closesAt) {
      await this.host.kit.schedule(POLL_TASK, open.closesAt, { ifEarlier: true });
      return;
    }
    this.host.kit.commit(null, (tx) => {
      this.polls.close(tx, open.id, 'timer');
      return {};
    });
    this.#engagementChanged();
  }

  async #minuteBoundary(): Promise<void> {
    this.analytics.roll(this.host.counts());
    const next = this.analytics.nextBoundary();
    if (next !== null) await this.host.kit.schedule(MINUTE_TASK, next, { ifEarlier: true });
    this.#engagementChanged(false);
  }

  #sendTallies(): void {
    const poll = this.polls.open;
    if (!poll) return; // closed since: `poll.closed` carried the exact result
    this.host.kit.broadcast({
      type: 'poll.tallies',
      pollId: poll.id,
      tallies: poll.tallies,
      votes: poll.votes,
      voters: poll.voters,
    });
  }

  #sendAnalytics(): void {
    if (!this.analytics.live) return;
    let managers = false;
    for (const conn of this.host.connections()) managers ||= this.host.isManager(conn);
    if (!managers) return;
    const summary = this.analytics.summary(
      this.host.counts(),
      this.polls.participation(this.analytics.session?.id ?? ''),
    );
    if (!summary) return;
    const analytics = { ...summary, minutes: summary.minutes.slice(-LIVE_FRAME_MINUTES) };
    this.host.kit.broadcast({ type: 'analytics', analytics }, (c) => this.host.isManager(c));
  }

  /** Engagement moved: the owner's feed (coalesced) and, for bigger news, the lobby (coalesced). */
  #engagementChanged(lobby = true): void {
    if (!this.analytics.live) return;
    this.#ownerFeed.touch();
    if (lobby) this.host.lobbySoon();
  }

  #requireLive(what: string): LiveState {
    const live = this.host.live();
    if (!live) throw new ChannelError(ErrorCode.notLive, `this station is not live: ${what}`, 409);
    return live;
  }

  /** A commit that threw rolled its SQL back: the desk's cached views are read again. */
  #guarded<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.queue.reload();
      this.polls.reload();
      throw err;
    }
  }
}
