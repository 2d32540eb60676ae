// A station's show: going live, stopping and what plays now. Kept in the object's SQLite; each
// change is committed once (state, sequenced event, outbox row for D1) by the StreamRoom.
import { ChannelError } from '../../channel/errors';
import type { ChannelKit, Tx } from '../../channel/room';
import {
  nowPlayingWrites,
  sessionEndWrites,
  sessionStartWrites,
  sessionStatsWrites,
} from '../../db/stations';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import type {
  BroadcastSession,
  MetadataUpdate,
  NowPlaying,
  SessionSummary,
  ShowInfo,
} from '../../protocol/stream';
import { wentLive } from './notices';

export interface LiveState {
  session: BroadcastSession;
  nowPlaying: NowPlaying;
}

const TRACK_FIELDS = ['hostName', 'trackName', 'artistName', 'trackId'] as const;

export class LiveShow {
  #live: LiveState | null | undefined;

  constructor(
    private readonly kit: ChannelKit,
    private readonly stationId: string,
  ) {
    kit.outbox.register('session.start', sessionStartWrites);
    kit.outbox.register('session.end', sessionEndWrites);
    kit.outbox.register('session.stats', sessionStatsWrites);
    kit.outbox.register('now-playing', nowPlayingWrites);
  }

  get state(): LiveState | null {
    this.#live ??= JSON.parse(this.kit.log.getMeta('live') ?? 'null') as LiveState | null;
    return this.#live;
  }

  /** The last session, once it has ended (for the lobby's offline event). */
  get ended(): SessionSummary | null {
    return JSON.parse(this.kit.log.getMeta('ended') ?? 'null') as SessionSummary | null;
  }

  start(tx: Tx, host: PublicUser, show: ShowInfo, opening: { peak: number; distinct: number }) {
    if (this.state) {
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
    this.#set({ session, nowPlaying });
    this.kit.log.setMeta('ended', 'null');
    this.kit.log.setMeta('savedStats', `${session.id}:${opening.peak}:${opening.distinct}`);
    tx.outbox('session.start', { session, nowPlaying, ...opening });
    wentLive(tx, session);
    const event = tx.publish({
      type: 'stream.started',
      stationId: this.stationId,
      session,
      nowPlaying,
    });
    return { session, nowPlaying, seq: event.seq };
  }

  stop(tx: Tx, final: { peak: number; distinct: number; chatMessages: number }) {
    const live = this.#require();
    const summary: SessionSummary = {
      ...live.session,
      endedAt: Date.now(),
      peakListeners: final.peak,
      distinctListeners: final.distinct,
      chatMessageCount: final.chatMessages,
    };
    this.#set(null);
    this.kit.log.setMeta('ended', JSON.stringify(summary));
    tx.outbox('session.end', summary);
    const event = tx.publish({
      type: 'stream.stopped',
      stationId: this.stationId,
      session: summary,
    });
    return { session: summary, seq: event.seq };
  }

  /** `queueItemId`: the queue's head that plays now (one event for both, issue 11). */
  changeMetadata(tx: Tx, patch: MetadataUpdate, queueItemId?: string) {
    const live = this.#require('go live before changing what plays');
    const nowPlaying: NowPlaying = { ...live.nowPlaying, updatedAt: Date.now() };
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
    this.#set({ session, nowPlaying });
    tx.outbox('now-playing', { session, nowPlaying });
    const event = tx.publish({
      type: 'stream.metadata',
      stationId: this.stationId,
      nowPlaying,
      changed,
      ...(queueItemId ? { queueItemId } : {}),
    });
    return { nowPlaying, seq: event.seq };
  }

  /** Writes the session's peak and distinct count to D1 when they moved (coalesced by the room). */
  saveStats(peak: number, distinct: number): void {
    const live = this.state;
    if (!live) return;
    const stats = `${live.session.id}:${peak}:${distinct}`;
    if (this.kit.log.getMeta('savedStats') === stats) return;
    this.kit.commit(null, (tx) => {
      tx.outbox('session.stats', { sessionId: live.session.id, peak, distinct });
      this.kit.log.setMeta('savedStats', stats);
      return {};
    });
  }

  #require(what = 'nothing to stop'): LiveState {
    const live = this.state;
    if (!live) {
      throw new ChannelError(ErrorCode.notLive, `this station is not live: ${what}`, 409);
    }
    return live;
  }

  #set(state: LiveState | null): void {
    this.#live = state;
    this.kit.log.setMeta('live', JSON.stringify(state));
  }
}
