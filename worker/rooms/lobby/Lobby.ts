// The lobby: one authoritative directory of stations, fed by each StreamRoom's reports.
// Live, offline and now-playing changes are published (sequenced, resumable) the moment a
// report shows them; listener counts are coalesced into at most about one `listeners` frame
// a second; admins also get the monitoring view. How this fans out past one DO: docs/stations.md.
import { Coalesced } from '../../channel/coalesce';
import { ChannelRoom, type Connection, type Handlers } from '../../channel/room';
import {
  type AdminStream,
  type AdminView,
  type DirectoryCounts,
  type LiveStation,
  LOBBY_SNAPSHOT_LIMIT,
  type LobbySnapshot,
  type lobbyFrames,
  type StationCount,
  type StationReport,
} from '../../protocol/lobby';
import type { EngagementSummary } from '../../protocol/stream-extras';
import { lobby } from './kind';

/** Counts reach dashboards at most about once per interval. */
export const LOBBY_FLUSH_MS = 1000;

export class Lobby extends ChannelRoom<typeof lobbyFrames, LobbySnapshot> {
  protected readonly handlers: Handlers<typeof lobbyFrames> = {};
  // Read from SQLite the first time a request needs it, not on every wake (sweeps included).
  #loaded: Map<string, StationReport> | null = null;
  readonly #counts: Coalesced;
  // Welcomes read the sorted live list; a burst of dashboards should not sort it each time.
  #liveSorted: StationReport[] | null = null;
  // Admin views are cheap to rebuild; losing this flag to an eviction only skips one refresh.
  #adminDirty = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, lobby);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS lobby_directory (
      station_id TEXT PRIMARY KEY, version INTEGER NOT NULL, dirty INTEGER NOT NULL,
      report TEXT NOT NULL)`);
    this.#counts = new Coalesced(this.kit, 'flush', LOBBY_FLUSH_MS, () => this.#flush());
  }

  get #reports(): Map<string, StationReport> {
    if (!this.#loaded) {
      this.#loaded = new Map();
      for (const row of this.sql.exec<{ report: string }>('SELECT report FROM lobby_directory')) {
        const report = JSON.parse(row.report) as StationReport;
        this.#loaded.set(report.station.id, report);
      }
    }
    return this.#loaded;
  }

  protected snapshot(conn: Connection): LobbySnapshot {
    const live = this.#live();
    return {
      live: live.slice(0, LOBBY_SNAPSHOT_LIMIT).map(liveStation),
      totals: {
        liveStations: live.length,
        listeners: sum(live, (r) => r.listeners.listeners),
        connections: sum(live, (r) => r.listeners.connections),
      },
      admin: isAdmin(conn) ? this.#adminView() : null,
    };
  }

  // ---- RPC -------------------------------------------------------------------------

  /** A StreamRoom's full state; older than what the lobby has (a late delivery) is ignored. */
  report(report: StationReport) {
    return this.rpc(() => this.#apply(report));
  }

  /** Counts for a page of stations (REST listings), without waking their rooms. */
  counts(stationIds: string[]) {
    return this.rpc(() => {
      const counts: DirectoryCounts = {};
      for (const id of stationIds) {
        const r = this.#reports.get(id);
        if (!r) continue;
        counts[id] = {
          live: r.live,
          listeners: r.listeners.listeners,
          connections: r.listeners.connections,
          peak: r.listeners.peak,
        };
      }
      return counts;
    });
  }

  adminStreams() {
    return this.rpc(() => this.#adminView());
  }

  // ---- directory -------------------------------------------------------------------

  #apply(report: StationReport): { applied: boolean } {
    const id = report.station.id;
    const prev = this.#reports.get(id);
    if (prev && prev.version >= report.version) return { applied: false };
    const wasLive = prev?.live ? (prev.session?.id ?? null) : null;
    const isLive = report.live ? (report.session?.id ?? null) : null;
    const countsMoved =
      !prev ||
      prev.listeners.listeners !== report.listeners.listeners ||
      prev.listeners.connections !== report.listeners.connections ||
      prev.listeners.peak !== report.listeners.peak;
    const dirty = isLive !== null && isLive === wasLive && countsMoved;
    this.#reports.set(id, report);
    this.#liveSorted = null;
    this.sql.exec(
      `INSERT INTO lobby_directory (station_id, version, dirty, report) VALUES (?, ?, ?, ?)
       ON CONFLICT(station_id) DO UPDATE SET version = excluded.version,
         dirty = MAX(dirty, excluded.dirty), report = excluded.report`,
      id,
      report.version,
      dirty ? 1 : 0,
      JSON.stringify(report),
    );
    if (wasLive !== null && wasLive !== isLive) {
      const ended = report.ended?.id === wasLive ? report.ended : null;
      this.publish({ type: 'station.offline', stationId: id, sessionId: wasLive, session: ended });
    }
    if (isLive !== null && isLive !== wasLive) {
      this.publish({ type: 'station.live', station: liveStation(report) });
    } else if (
      isLive !== null &&
      report.nowPlaying &&
      JSON.stringify(prev?.nowPlaying) !== JSON.stringify(report.nowPlaying)
    ) {
      this.publish({ type: 'station.metadata', stationId: id, nowPlaying: report.nowPlaying });
    }
    if (isLive !== null || wasLive !== null) this.#adminDirty = true;
    if (dirty || this.#adminDirty) this.#counts.touch();
    return { applied: true };
  }

  #flush(): void {
    const dirtyIds = this.sql
      .exec<{ station_id: string }>('SELECT station_id FROM lobby_directory WHERE dirty = 1')
      .toArray()
      .map((r) => r.station_id);
    this.sql.exec('UPDATE lobby_directory SET dirty = 0 WHERE dirty = 1');
    const stations: StationCount[] = [];
    for (const id of dirtyIds) {
      const r = this.#reports.get(id);
      if (!r?.live) continue;
      stations.push({
        stationId: id,
        listeners: r.listeners.listeners,
        connections: r.listeners.connections,
        peak: r.listeners.peak,
      });
    }
    if (stations.length > 0) this.broadcast({ type: 'listeners', stations });
    if (stations.length > 0 || this.#adminDirty) {
      this.#adminDirty = false;
      let admins = false;
      for (const conn of this.connections()) admins ||= isAdmin(conn);
      if (admins) this.broadcast({ type: 'admin.streams', ...this.#adminView() }, isAdmin);
    }
  }

  #live(): StationReport[] {
    this.#liveSorted ??= [...this.#reports.values()]
      .filter((r) => r.live && r.session && r.nowPlaying)
      .sort((a, b) => b.listeners.listeners - a.listeners.listeners);
    return this.#liveSorted;
  }

  #adminView(): AdminView {
    const streams: AdminStream[] = this.#live().map((r) => ({
      ...liveStation(r),
      users: r.listeners.users,
      anonymous: r.listeners.anonymous,
      distinct: r.listeners.distinct,
      chatMessages: r.chatMessages,
      messagesPerMinute: r.messagesPerMinute,
      reactions: r.reactions,
      reactionTotal: sum(Object.values(r.reactions), (n) => n ?? 0),
      engagement: r.engagement ?? null,
      updatedAt: r.at,
    }));
    return {
      streams,
      totals: {
        liveStations: streams.length,
        listeners: sum(streams, (s) => s.listeners),
        connections: sum(streams, (s) => s.connections),
        chatMessages: sum(streams, (s) => s.chatMessages),
        messagesPerMinute: sum(streams, (s) => s.messagesPerMinute),
        reactions: sum(streams, (s) => s.reactionTotal),
        engagement: sumEngagement(streams),
      },
      at: Date.now(),
    };
  }
}

function liveStation(r: StationReport): LiveStation {
  if (!r.session || !r.nowPlaying) throw new Error(`station ${r.station.id} is not live`);
  return {
    stationId: r.station.id,
    name: r.station.name,
    genre: r.station.genre,
    ownerId: r.station.ownerId,
    session: r.session,
    nowPlaying: r.nowPlaying,
    listeners: r.listeners.listeners,
    connections: r.listeners.connections,
    peak: r.listeners.peak,
  };
}

/** Engagement summed over live stations; the average listening time weighted by distinct listeners. */
function sumEngagement(streams: AdminStream[]): EngagementSummary {
  const parts = streams.flatMap((s) => (s.engagement ? [{ e: s.engagement, n: s.distinct }] : []));
  const listeners = sum(parts, (p) => p.n);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    pollVotes: sum(parts, (p) => p.e.pollVotes),
    favouritesGained: sum(parts, (p) => p.e.favouritesGained),
    listeningSeconds: round(sum(parts, (p) => p.e.listeningSeconds)),
    averageListeningSeconds:
      listeners > 0 ? round(sum(parts, (p) => p.e.averageListeningSeconds * p.n) / listeners) : 0,
    reactionsPerMinute: round(sum(parts, (p) => p.e.reactionsPerMinute)),
    chatPerMinute: round(sum(parts, (p) => p.e.chatPerMinute)),
  };
}

function isAdmin(conn: Connection): boolean {
  return conn.userId !== null && conn.user?.role === 'admin';
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += of(item);
  return total;
}
