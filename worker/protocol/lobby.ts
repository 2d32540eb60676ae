// The lobby: everyone's dashboard. The directory of live stations with listener counts, the
// "now live" / "offline" events, and for admins the monitoring view of every active stream.
import type { ClientFrame, CoreServerFrame, FrameMap, Sequenced, WelcomeFrame } from './core';
import type {
  BroadcastSession,
  ListenerCounts,
  NowPlaying,
  ReactionEmoji,
  SessionSummary,
  StationInfo,
} from './stream';
import type { EngagementSummary } from './stream-extras';

/** The lobby is read-only: clients only listen (and ping). */
/** The lobby is read-only: its one frame is the core's `ping`. */
export const lobbyFrames = {} satisfies FrameMap;
export type LobbyClientFrame = ClientFrame<typeof lobbyFrames>;

/** Live stations listed in a welcome; REST (`GET /api/stations?live=true`) pages past it. */
export const LOBBY_SNAPSHOT_LIMIT = 500;

/** What a StreamRoom tells the lobby about its station (internal RPC, not on the wire). */
export interface StationReport {
  /** Grows with every report of one station; the lobby ignores one older than it has. */
  version: number;
  station: StationInfo;
  live: boolean;
  session: BroadcastSession | null;
  nowPlaying: NowPlaying | null;
  listeners: ListenerCounts;
  /** Chat messages in the current session. */
  chatMessages: number;
  /** Chat messages in the last 60 seconds. */
  messagesPerMinute: number;
  /** Reactions in the current session, per emoji. */
  reactions: Partial<Record<ReactionEmoji, number>>;
  /** The live session's engagement (issue 11); null while offline. */
  engagement?: EngagementSummary | null;
  /** The last session, once it has ended (for the offline event). */
  ended: SessionSummary | null;
  at: number;
}

export interface LiveStation {
  stationId: string;
  name: string;
  genre: string | null;
  ownerId: string;
  session: BroadcastSession;
  nowPlaying: NowPlaying;
  listeners: number;
  connections: number;
  peak: number;
}

export interface StationCount {
  stationId: string;
  listeners: number;
  connections: number;
  peak: number;
}

export interface StationLiveEvent extends Sequenced {
  type: 'station.live';
  station: LiveStation;
}

export interface StationOfflineEvent extends Sequenced {
  type: 'station.offline';
  stationId: string;
  sessionId: string | null;
  /** The ended session with its final peak, distinct listeners and chat count. */
  session: SessionSummary | null;
}

export interface StationMetadataEvent extends Sequenced {
  type: 'station.metadata';
  stationId: string;
  nowPlaying: NowPlaying;
}

/** Ephemeral, coalesced: the live stations whose counts changed since the last one. */
export interface LobbyListenersFrame {
  type: 'listeners';
  stations: StationCount[];
}

export interface AdminStream extends LiveStation {
  users: number;
  anonymous: number;
  distinct: number;
  chatMessages: number;
  messagesPerMinute: number;
  reactions: Partial<Record<ReactionEmoji, number>>;
  reactionTotal: number;
  engagement: EngagementSummary | null;
  updatedAt: number;
}

export interface AdminTotals {
  liveStations: number;
  listeners: number;
  connections: number;
  chatMessages: number;
  messagesPerMinute: number;
  reactions: number;
  /** Summed over live stations (averageListeningSeconds: weighted by distinct listeners). */
  engagement: EngagementSummary;
}

export interface AdminView {
  streams: AdminStream[];
  totals: AdminTotals;
  at: number;
}

/** Ephemeral, admins only, coalesced like `listeners`. */
export interface AdminStreamsFrame extends AdminView {
  type: 'admin.streams';
}

export type LobbyEvent = StationLiveEvent | StationOfflineEvent | StationMetadataEvent;
export type LobbyServerFrame =
  | CoreServerFrame
  | LobbyEvent
  | LobbyListenersFrame
  | AdminStreamsFrame;

export interface LobbySnapshot {
  /** Live stations, most listeners first (at most LOBBY_SNAPSHOT_LIMIT). */
  live: LiveStation[];
  totals: { liveStations: number; listeners: number; connections: number };
  /** Present for admins only. */
  admin: AdminView | null;
}
export type LobbyWelcome = WelcomeFrame<LobbySnapshot>;

/** Counts per station for REST listings (one RPC for a whole page). */
export interface DirectoryCounts {
  [stationId: string]: { live: boolean; listeners: number; connections: number; peak: number };
}
