// The one place counts meet: every channel object and the worker's isolates report here (at
// most once per flush window each), and /metrics, /api/admin/metrics and /health read from here.
// Counters are kept as running totals in SQLite, so they survive the hub's own eviction and only
// ever grow (what Prometheus expects of a counter); gauges are each object's last report,
// forgotten after GAUGE_TTL_MS without one. docs/operations.md.
import { DurableObject } from 'cloudflare:workers';
import {
  type ChannelReport,
  emptyHistogram,
  GAUGE_TTL_MS,
  type Histogram,
  mergeHistogram,
} from './metrics';

/** What a worker isolate tells the hub: requests per route group since its last report. */
export interface RequestReport {
  at: number;
  routes: Record<string, { statuses: Record<string, number>; latencyMs: Histogram }>;
  /** What counts toward the failure ratio (probes and scrapes do not; the worker decides). */
  window: { handled: number; failures: number };
}

export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface HistogramSeries {
  name: string;
  labels: Record<string, string>;
  histogram: Histogram;
}

export interface ChannelGauge {
  channel: string;
  kind: string;
  connections: number;
  users: number;
  /** Frames in and out per minute, decayed (half-life one minute). */
  activity: number;
  reportedAt: number;
}

export interface KindGauge {
  /** Objects of this kind holding at least one socket. */
  occupied: number;
  connections: number;
  users: number;
  peak: number;
}

export interface HubSnapshot {
  at: number;
  counters: Series[];
  histograms: HistogramSeries[];
  kinds: Record<string, KindGauge>;
  platform: { connections: number; peak: number; occupied: number };
  channels: ChannelGauge[];
  window: HealthWindow;
}

export interface HealthWindow {
  minutes: number;
  /** Frames that reached a channel plus HTTP requests, over the window. */
  handled: number;
  /** `internal_error` frames plus HTTP 5xx answers, over the window. */
  failures: number;
}

/** The error rate's window, and how long per-minute buckets are kept. */
export const HEALTH_WINDOW_MINUTES = 5;
const MINUTES_KEPT = 60;
const ACTIVITY_HALF_LIFE_MS = 60_000;
const PLATFORM = '*';

type Row = Record<string, SqlStorageValue>;

export class MetricsHub extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  #counters: Map<string, number> | null = null;
  #histograms: Map<string, Histogram> | null = null;
  #channels: Map<string, ChannelGauge> | null = null;
  /** Open connections per kind (and PLATFORM) over the objects in `#channels`. */
  readonly #totals = new Map<string, number>();
  #peaks: Map<string, number> | null = null;
  #lastExpiry = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS hub_counters (key TEXT PRIMARY KEY, value REAL NOT NULL);
      CREATE TABLE IF NOT EXISTS hub_histograms (key TEXT PRIMARY KEY, data TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS hub_channels (channel TEXT PRIMARY KEY, kind TEXT NOT NULL,
        connections INTEGER NOT NULL, users INTEGER NOT NULL, activity REAL NOT NULL,
        reported_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS hub_peaks (scope TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS hub_minutes (minute INTEGER PRIMARY KEY, handled INTEGER NOT NULL,
        failures INTEGER NOT NULL);`);
  }

  // ---- reports ----------------------------------------------------------------------

  report(r: ChannelReport): void {
    const kind = { channel_kind: r.kind };
    this.#atomically(() => {
      const c = r.counters;
      this.#add('channel_connections_opened_total', kind, c.opened);
      this.#add('channel_frames_received_total', kind, c.framesReceived);
      this.#add('channel_frames_sent_total', kind, c.framesSent);
      this.#add('channel_batches_sent_total', kind, c.batchesSent);
      this.#add('channel_sent_bytes_total', kind, c.bytesSent);
      this.#add('channel_events_published_total', kind, c.eventsPublished);
      for (const [code, n] of Object.entries(r.closed)) {
        this.#add('channel_connections_closed_total', { ...kind, code }, n);
      }
      for (const [code, n] of Object.entries(r.errors)) {
        this.#add('channel_errors_total', { ...kind, code }, n);
      }
      for (const [reason, n] of Object.entries(r.refusals)) {
        this.#add('channel_refusals_total', { ...kind, reason }, n);
      }
      for (const [result, n] of Object.entries(r.resumes)) {
        this.#add('channel_resumes_total', { ...kind, result }, n);
      }
      this.#observe('channel_frame_duration_seconds', kind, r.frameMs);
      this.#observe('channel_publish_to_last_write_seconds', kind, r.publishMs);
      this.#observe('client_heartbeat_rtt_seconds', kind, r.rttMs);
      this.#add('metrics_reports_total', { source: 'channel' }, 1);
      this.#gauge(r);
      this.#minute(r.at, c.framesReceived, r.errors.internal_error ?? 0);
    });
  }

  reportRequests(r: RequestReport): void {
    this.#atomically(() => {
      for (const [route, { statuses, latencyMs }] of Object.entries(r.routes)) {
        for (const [status, n] of Object.entries(statuses)) {
          this.#add('http_requests_total', { route, status }, n);
        }
        this.#observe('http_request_duration_seconds', { route }, latencyMs);
      }
      this.#add('metrics_reports_total', { source: 'worker' }, 1);
      this.#minute(r.at, r.window.handled, r.window.failures);
    });
  }

  /**
   * One report in one transaction. The in-memory maps follow each write, so when the transaction
   * rolls back they are dropped and read again from SQLite: otherwise a counter could count the
   * report's retry twice in memory and then fall back (go down) when the hub is next evicted.
   */
  #atomically(apply: () => void): void {
    try {
      this.ctx.storage.transactionSync(apply);
    } catch (err) {
      this.#counters = null;
      this.#histograms = null;
      this.#channels = null;
      this.#totals.clear();
      this.#peaks = null;
      throw err;
    }
  }

  // ---- reads ------------------------------------------------------------------------

  snapshot(now = Date.now()): HubSnapshot {
    this.#expire(now, true);
    const kinds: Record<string, KindGauge> = {};
    const kindOf = (name: string): KindGauge => {
      kinds[name] ??= { occupied: 0, connections: 0, users: 0, peak: 0 };
      return kinds[name];
    };
    let connections = 0;
    let occupied = 0;
    const channels: ChannelGauge[] = [];
    for (const g of this.#gaugesByChannel().values()) {
      const k = kindOf(g.kind);
      k.connections += g.connections;
      k.users += g.users;
      if (g.connections > 0) {
        k.occupied += 1;
        occupied += 1;
      }
      connections += g.connections;
      channels.push({ ...g, activity: decayed(g, now) });
    }
    for (const [scope, peak] of this.#peakMap()) {
      if (scope === PLATFORM) continue;
      kindOf(scope).peak = peak;
    }
    return {
      at: now,
      counters: [...this.#counterMap()].map(([key, value]) => ({ ...parseKey(key), value })),
      histograms: [...this.#histogramMap()].map(([key, histogram]) => ({
        ...parseKey(key),
        histogram,
      })),
      kinds,
      platform: { connections, occupied, peak: this.#peakMap().get(PLATFORM) ?? 0 },
      channels,
      window: this.health(now),
    };
  }

  /** Handled and failed over the last HEALTH_WINDOW_MINUTES (the current minute included). */
  health(now = Date.now()): HealthWindow {
    const from = minuteOf(now) - HEALTH_WINDOW_MINUTES + 1;
    const row = this.#sql
      .exec<{ handled: number | null; failures: number | null }>(
        'SELECT SUM(handled) AS handled, SUM(failures) AS failures FROM hub_minutes WHERE minute >= ?',
        from,
      )
      .one();
    return {
      minutes: HEALTH_WINDOW_MINUTES,
      handled: row.handled ?? 0,
      failures: row.failures ?? 0,
    };
  }

  // ---- storage ----------------------------------------------------------------------

  #add(name: string, labels: Record<string, string>, by: number): void {
    if (!by) return;
    const key = seriesKey(name, labels);
    const map = this.#counterMap();
    const value = (map.get(key) ?? 0) + by;
    map.set(key, value);
    this.#sql.exec(
      'INSERT INTO hub_counters (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
  }

  #observe(name: string, labels: Record<string, string>, h: Histogram): void {
    if (h.count === 0) return;
    const key = seriesKey(name, labels);
    const map = this.#histogramMap();
    const merged = mergeHistogram(map.get(key) ?? emptyHistogram(), h);
    map.set(key, merged);
    this.#sql.exec(
      'INSERT INTO hub_histograms (key, data) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET data = excluded.data',
      key,
      JSON.stringify(merged),
    );
  }

  /** Takes an object's gauges and raises the kind's and the platform's peaks. */
  #gauge(r: ChannelReport): void {
    this.#expire(r.at, false);
    const gauges = this.#gaugesByChannel();
    const before = gauges.get(r.channel);
    // The peak this report shows: the others as last reported, plus this object at its own peak.
    const mine = before?.connections ?? 0;
    const kindOthers = (this.#totals.get(r.kind) ?? 0) - (before?.kind === r.kind ? mine : 0);
    this.#raisePeak(r.kind, kindOthers + r.peak);
    this.#raisePeak(PLATFORM, (this.#totals.get(PLATFORM) ?? 0) - mine + r.peak);
    const frames = r.counters.framesReceived + r.counters.framesSent;
    const g: ChannelGauge = {
      channel: r.channel,
      kind: r.kind,
      connections: r.connections,
      users: r.users,
      activity: (before ? decayed(before, r.at) : 0) + frames,
      reportedAt: r.at,
    };
    this.#setGauge(g);
    this.#sql.exec(
      `INSERT INTO hub_channels (channel, kind, connections, users, activity, reported_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(channel) DO UPDATE SET kind = excluded.kind,
       connections = excluded.connections, users = excluded.users, activity = excluded.activity,
       reported_at = excluded.reported_at`,
      g.channel,
      g.kind,
      g.connections,
      g.users,
      g.activity,
      g.reportedAt,
    );
  }

  /** Sets (or, with null, drops) an object's gauges, keeping the per-kind totals in step. */
  #setGauge(g: ChannelGauge | null, channel = g?.channel ?? ''): void {
    const gauges = this.#gaugesByChannel();
    const before = gauges.get(channel);
    if (before) this.#count(before, -1);
    if (g) {
      gauges.set(channel, g);
      this.#count(g, 1);
    } else gauges.delete(channel);
  }

  #count(g: ChannelGauge, sign: 1 | -1): void {
    for (const scope of [g.kind, PLATFORM]) {
      this.#totals.set(scope, (this.#totals.get(scope) ?? 0) + sign * g.connections);
    }
  }

  #raisePeak(scope: string, value: number): void {
    const peaks = this.#peakMap();
    if ((peaks.get(scope) ?? 0) >= value) return;
    peaks.set(scope, value);
    this.#sql.exec(
      'INSERT INTO hub_peaks (scope, value) VALUES (?, ?) ON CONFLICT(scope) DO UPDATE SET value = excluded.value',
      scope,
      value,
    );
  }

  #minute(at: number, handled: number, failures: number): void {
    if (!handled && !failures) return;
    const minute = minuteOf(at);
    this.#sql.exec(
      `INSERT INTO hub_minutes (minute, handled, failures) VALUES (?, ?, ?) ON CONFLICT(minute)
       DO UPDATE SET handled = handled + excluded.handled, failures = failures + excluded.failures`,
      minute,
      handled,
      failures,
    );
    this.#sql.exec('DELETE FROM hub_minutes WHERE minute < ?', minute - MINUTES_KEPT);
  }

  /** Forgets objects not heard from within GAUGE_TTL_MS (checked at most once a minute on writes). */
  #expire(now: number, always: boolean): void {
    if (!always && now - this.#lastExpiry < 60_000) return;
    this.#lastExpiry = now;
    const cutoff = now - GAUGE_TTL_MS;
    const gauges = this.#gaugesByChannel();
    for (const [channel, g] of gauges) if (g.reportedAt < cutoff) this.#setGauge(null, channel);
    this.#sql.exec('DELETE FROM hub_channels WHERE reported_at < ?', cutoff);
  }

  #counterMap(): Map<string, number> {
    this.#counters ??= new Map(
      this.#rows('SELECT key, value FROM hub_counters').map((r) => [
        String(r.key),
        Number(r.value),
      ]),
    );
    return this.#counters;
  }

  #histogramMap(): Map<string, Histogram> {
    this.#histograms ??= new Map(
      this.#rows('SELECT key, data FROM hub_histograms').map((r) => [
        String(r.key),
        JSON.parse(String(r.data)) as Histogram,
      ]),
    );
    return this.#histograms;
  }

  #gaugesByChannel(): Map<string, ChannelGauge> {
    if (this.#channels) return this.#channels;
    this.#channels = new Map(
      this.#rows(
        'SELECT channel, kind, connections, users, activity, reported_at FROM hub_channels',
      ).map((r) => [
        String(r.channel),
        {
          channel: String(r.channel),
          kind: String(r.kind),
          connections: Number(r.connections),
          users: Number(r.users),
          activity: Number(r.activity),
          reportedAt: Number(r.reported_at),
        },
      ]),
    );
    for (const g of this.#channels.values()) this.#count(g, 1);
    return this.#channels;
  }

  #peakMap(): Map<string, number> {
    this.#peaks ??= new Map(
      this.#rows('SELECT scope, value FROM hub_peaks').map((r) => [
        String(r.scope),
        Number(r.value),
      ]),
    );
    return this.#peaks;
  }

  #rows(query: string): Row[] {
    return this.#sql.exec<Row>(query).toArray();
  }
}

function minuteOf(at: number): number {
  return Math.floor(at / 60_000);
}

function decayed(g: ChannelGauge, now: number): number {
  return g.activity * 2 ** (-Math.max(0, now - g.reportedAt) / ACTIVITY_HALF_LIFE_MS);
}

/** A series' identity: its name and its labels in a fixed order. */
function seriesKey(name: string, labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k] as string]);
  return `${name}|${JSON.stringify(sorted)}`;
}

function parseKey(key: string): { name: string; labels: Record<string, string> } {
  const bar = key.indexOf('|');
  const pairs = JSON.parse(key.slice(bar + 1)) as [string, string][];
  return { name: key.slice(0, bar), labels: Object.fromEntries(pairs) };
}
