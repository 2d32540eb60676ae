// The live half of a station's channel: go live, stop and now playing, the listener counts
// and the session's peak, and the reports that keep the Lobby and D1 in step. StreamRoom adds
// chat, moderation and reactions on top. Decisions in docs/stations.md.
import { ChannelError } from '../../channel/errors';
import { ChannelRoom, type Connection, frameTypesOf } from '../../channel/room';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import type { StationReport } from '../../protocol/lobby';
import {
  type BroadcastSession,
  type ListenerCounts,
  type MetadataUpdate,
  type NowPlaying,
  type SessionSummary,
  type ShowInfo,
  type StationInfo,
  type StreamClientFrame,
  type StreamSnapshot,
  type StreamStatus,
  streamClientFrame,
} from '../../protocol/stream';
import { lobbyStub } from '../Lobby';
import { Audience } from './audience';
import { ChatMeter, ReactionTally } from './engagement';
import {
  readStation,
  recordNowPlaying,
  recordSessionEnd,
  recordSessionStart,
  recordSessionStats,
} from './records';

export const stationChannel = (stationId: string) => `station:${stationId}`;

/** Counts reach listeners, and the lobby, at most about once per interval. */
export const LISTENERS_INTERVAL_MS = 1000;
export const LOBBY_INTERVAL_MS = 1000;
/** While live, the lobby hears from the station at least this often (keeps rates fresh). */
export const LOBBY_HEARTBEAT_MS = 30_000;
const LOBBY_RETRY_MS = 2000;
export const REACTION_WINDOW_MS = 1000;

export type StreamTask = 'listeners' | 'lobby' | 'reactions';
const INTERVAL: Record<StreamTask, number> = {
  listeners: LISTENERS_INTERVAL_MS,
  lobby: LOBBY_INTERVAL_MS,
  reactions: REACTION_WINDOW_MS,
};

interface LiveState {
  session: BroadcastSession;
  nowPlaying: NowPlaying;
}

const TRACK_FIELDS = ['hostName', 'trackName', 'artistName', 'trackId'] as const;

export abstract class LiveRoom extends ChannelRoom<StreamClientFrame, StreamSnapshot> {
  protected readonly frames = streamClientFrame;
  protected readonly chatMeter: ChatMeter;
  protected readonly reactionTally: ReactionTally;
  readonly #audience: Audience;
  readonly #lastSent: Record<StreamTask, number> = { listeners: 0, lobby: 0, reactions: 0 };
  protected stationId = '';
  #station: StationInfo | null = null;
  #live: LiveState | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, {
      kind: 'stream',
      presence: 'counts',
      frameTypes: frameTypesOf(streamClientFrame),
    });
    this.#audience = new Audience(this.sql, this.log, this.connections());
    this.chatMeter = new ChatMeter(this.sql, this.log);
    this.reactionTally = new ReactionTally(this.log);
  }

  protected override async load(channel: string): Promise<void> {
    this.stationId = channel.slice('station:'.length);
    this.#live = JSON.parse(this.log.getMeta('live') ?? 'null') as LiveState | null;
    this.#station = await readStation(this.env.DB, this.stationId);
  }

  protected get session(): BroadcastSession | null {
    return this.#live?.session ?? null;
  }

  protected override onJoin(conn: Connection): void {
    this.#audience.joined(conn, this.#live !== null);
    if (this.#live) this.#audience.notePeak(this.counts().listeners);
    this.#countsChanged();
  }

  protected override onLeave(conn: Connection): void {
    this.#audience.left(conn);
    this.#countsChanged();
  }

  protected override async onTask(name: string): Promise<void> {
    if (name === 'listeners') await this.#flushListeners();
    else if (name === 'lobby') await this.reportToLobby();
  }

  // ---- live state ------------------------------------------------------------------

  protected start(user: PublicUser | null, show: ShowInfo) {
    return this.exclusive(async () => {
      const host = await this.requireManager(user);
      if (this.#live) {
        throw new ChannelError(
          ErrorCode.alreadyLive,
          'this station is already live: stop the current show first',
          409,
        );
      }
      const now = Date.now();
      const session: BroadcastSession = {
        id: crypto.randomUUID(),
        stationId: this.stationId,
        showTitle: show.showTitle,
        hostName: show.hostName ?? null,
        showType: show.showType ?? null,
        hostUserId: host.id,
        startedAt: now,
      };
      const nowPlaying: NowPlaying = {
        showTitle: session.showTitle,
        hostName: session.hostName,
        showType: session.showType,
        trackName: show.trackName ?? null,
        artistName: show.artistName ?? null,
        trackId: show.trackId ?? null,
        updatedAt: now,
      };
      // D1 first: if it refuses, nothing here has changed.
      const opening = this.#audience.opening(this.connections());
      await recordSessionStart(this.env.DB, session, nowPlaying, opening.peak, opening.distinct);
      this.#audience.startSession(this.connections(), now);
      this.chatMeter.resetSession();
      this.reactionTally.resetSession();
      this.#setLive({ session, nowPlaying });
      this.log.setMeta('ended', 'null');
      this.log.setMeta('savedStats', `${session.id}:${opening.peak}:${opening.distinct}`);
      const event = this.publish({
        type: 'stream.started',
        stationId: this.stationId,
        session,
        nowPlaying,
      });
      this.#countsChanged();
      await this.reportToLobby();
      return { session, nowPlaying, seq: event.seq };
    });
  }

  protected stop(user: PublicUser | null) {
    return this.exclusive(async () => {
      await this.requireManager(user);
      const live = this.#live;
      if (!live) throw new ChannelError(ErrorCode.notLive, 'this station is not live', 409);
      const counts = this.counts();
      const summary: SessionSummary = {
        ...live.session,
        endedAt: Date.now(),
        peakListeners: counts.peak,
        distinctListeners: counts.distinct,
        chatMessageCount: this.chatMeter.sessionCount,
      };
      await recordSessionEnd(this.env.DB, summary);
      this.#setLive(null);
      this.log.setMeta('ended', JSON.stringify(summary));
      const event = this.publish({
        type: 'stream.stopped',
        stationId: this.stationId,
        session: summary,
      });
      this.#countsChanged();
      await this.reportToLobby();
      return { session: summary, seq: event.seq };
    });
  }

  protected changeMetadata(user: PublicUser | null, patch: MetadataUpdate) {
    return this.exclusive(async () => {
      await this.requireManager(user);
      const live = this.#live;
      if (!live) {
        throw new ChannelError(
          ErrorCode.notLive,
          'this station is not live: go live before changing what plays',
          409,
        );
      }
      const now = Date.now();
      const nowPlaying: NowPlaying = { ...live.nowPlaying, updatedAt: now };
      const changed: string[] = [];
      if (patch.showTitle !== undefined) {
        nowPlaying.showTitle = patch.showTitle;
        changed.push('showTitle');
      }
      for (const field of TRACK_FIELDS) {
        if (patch[field] === undefined) continue;
        nowPlaying[field] = patch[field] ?? null;
        changed.push(field);
      }
      const session = {
        ...live.session,
        showTitle: nowPlaying.showTitle,
        hostName: nowPlaying.hostName,
      };
      await recordNowPlaying(this.env.DB, session, nowPlaying);
      this.#setLive({ session, nowPlaying });
      const event = this.publish({
        type: 'stream.metadata',
        stationId: this.stationId,
        nowPlaying,
        changed,
      });
      await this.reportToLobby();
      return { nowPlaying, seq: event.seq };
    });
  }

  #setLive(state: LiveState | null): void {
    this.#live = state;
    this.log.setMeta('live', JSON.stringify(state));
  }

  /** The station's row changed in D1: reload it and tell the lobby. */
  protected async reloadStation(): Promise<StationInfo | null> {
    this.#station = await readStation(this.env.DB, this.stationId);
    if (this.#station) await this.reportToLobby();
    return this.#station;
  }

  // ---- counts and the lobby --------------------------------------------------------

  protected counts(): ListenerCounts {
    const { users, connections } = this.presenceCounts();
    return this.#audience.counts(users, connections, this.#live !== null);
  }

  /** `joining`: the connection being welcomed, counted before its onJoin runs. */
  protected status(joining?: Connection): StreamStatus {
    if (joining) this.#audience.joined(joining, this.#live !== null);
    return {
      station: this.info(),
      live: this.#live !== null,
      session: this.#live?.session ?? null,
      nowPlaying: this.#live?.nowPlaying ?? null,
      listeners: this.counts(),
    };
  }

  #countsChanged(): void {
    this.coalesce('listeners');
    this.coalesce('lobby');
  }

  /** Runs `task` now if it has not run within its interval, else once the interval is over. */
  protected coalesce(task: StreamTask): void {
    const at = Math.max(Date.now(), this.#lastSent[task] + INTERVAL[task]);
    this.ctx.waitUntil(
      this.schedule(task, at, { ifEarlier: true }).catch((err: unknown) => {
        console.error(`StreamRoom ${this.stationId}: scheduling ${task} failed`, err);
      }),
    );
  }

  /** Marks `task` as just run, for `coalesce`. */
  protected ran(task: StreamTask): void {
    this.#lastSent[task] = Date.now();
  }

  async #flushListeners(): Promise<void> {
    this.ran('listeners');
    const counts = this.counts();
    this.broadcast({ type: 'listeners', stationId: this.stationId, ...counts });
    const live = this.#live;
    if (!live) return;
    // The peak and distinct count reach the session row coalesced, like the frame.
    const stats = `${live.session.id}:${counts.peak}:${counts.distinct}`;
    if (this.log.getMeta('savedStats') === stats) return;
    await recordSessionStats(this.env.DB, live.session.id, counts.peak, counts.distinct);
    this.log.setMeta('savedStats', stats);
  }

  #report(): StationReport {
    const version = Number(this.log.getMeta('reportVersion') ?? '0') + 1;
    this.log.setMeta('reportVersion', String(version));
    const now = Date.now();
    return {
      version,
      ...this.status(),
      chatMessages: this.chatMeter.sessionCount,
      messagesPerMinute: this.chatMeter.perMinute(now),
      reactions: this.reactionTally.totals,
      ended: JSON.parse(this.log.getMeta('ended') ?? 'null') as SessionSummary | null,
      at: now,
    };
  }

  /** Sends the station's full state to the lobby; a failure is retried by the alarm. */
  protected async reportToLobby(): Promise<void> {
    this.ran('lobby');
    try {
      const result = await lobbyStub(this.env).report(this.#report());
      if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
    } catch (err) {
      console.error(`StreamRoom ${this.stationId}: lobby report failed`, err);
      await this.schedule('lobby', Date.now() + LOBBY_RETRY_MS, { ifEarlier: true });
      return;
    }
    if (this.#live) {
      await this.schedule('lobby', Date.now() + LOBBY_HEARTBEAT_MS, { ifEarlier: true });
    }
  }

  // ---- access ----------------------------------------------------------------------

  protected async requireStation(): Promise<StationInfo> {
    // A station created after this object first woke is picked up on the next request.
    if (!this.#station) this.#station = await readStation(this.env.DB, this.stationId);
    return this.info();
  }

  protected info(): StationInfo {
    if (!this.#station) throw new ChannelError(ErrorCode.notFound, 'no such station', 404);
    return this.#station;
  }

  protected canManage(user: PublicUser | null): boolean {
    return user !== null && (user.role === 'admin' || user.id === this.#station?.ownerId);
  }

  protected async requireManager(user: PublicUser | null): Promise<PublicUser> {
    if (!user) {
      throw new ChannelError(ErrorCode.authRequired, 'sign in as the station owner first', 401);
    }
    await this.requireStation();
    if (!this.canManage(user)) {
      throw new ChannelError(
        ErrorCode.forbidden,
        'only the station owner or an admin may do that',
        403,
      );
    }
    return user;
  }
}
