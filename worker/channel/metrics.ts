// What a channel object counts, and how the counts leave it. The room calls the small recording
// methods below from its frame, connect, close and alarm paths; nothing here writes per frame.
// Counts are kept in memory and flushed — at most once per FLUSH_WINDOW_MS — to the metrics hub
// (and to Workers Analytics Engine when the binding exists), only while the object is awake
// anyway: the first change after a quiet window goes at once, later ones ride a timer that fires
// within the window, well inside the runtime's ten-second hibernation grace, so it neither wakes
// an object nor keeps one in memory longer. docs/operations.md says how stale that makes them.

/** The aggregating object every channel and the worker report to (`MetricsHub`). */
export function metricsHub(env: Env) {
  return env.METRICS_HUB.get(env.METRICS_HUB.idFromName('metrics'));
}

/** The Analytics Engine dataset, when bound (production); `wrangler dev` may drop or lack it. */
export function analyticsOf(env: Env): AnalyticsEngineDataset | null {
  return (env as Partial<Pick<Env, 'ANALYTICS'>>).ANALYTICS ?? null;
}

/** Upper bounds (ms) of the latency histograms' buckets; one more bucket holds the rest (+Inf). */
export const LATENCY_BUCKETS_MS = [
  1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000,
] as const;

/** At most one flush per object per window. Below the ten seconds after which an idle object may
 * hibernate, so the trailing flush always runs while the object is in memory anyway. */
export const FLUSH_WINDOW_MS = 5000;

/** An object that holds sockets re-reports its gauges this often (at a sweep it runs anyway), so
 * the hub can forget objects that vanished without a close (a reset); see GAUGE_TTL_MS. */
export const GAUGE_REFRESH_MS = 10 * 60_000;

/** The hub forgets an object's gauges after this long without a report. */
export const GAUGE_TTL_MS = 25 * 60_000;

/** A connection's heartbeat round trip is counted at most this often (the SDK reports once a minute). */
export const RTT_SAMPLE_MS = 30_000;

export interface Histogram {
  /** Per-bucket counts (not cumulative); the last one is above the largest bound. */
  buckets: number[];
  /** Sum of the observations, in ms. */
  sum: number;
  count: number;
}

export function emptyHistogram(): Histogram {
  return { buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), sum: 0, count: 0 };
}

export function observe(h: Histogram, ms: number): void {
  const value = Math.max(0, ms);
  let i = LATENCY_BUCKETS_MS.findIndex((bound) => value <= bound);
  if (i < 0) i = LATENCY_BUCKETS_MS.length;
  h.buckets[i] = (h.buckets[i] ?? 0) + 1;
  h.sum += value;
  h.count += 1;
}

export function mergeHistogram(into: Histogram, from: Histogram): Histogram {
  for (let i = 0; i < into.buckets.length; i++) {
    into.buckets[i] = (into.buckets[i] ?? 0) + (from.buckets[i] ?? 0);
  }
  into.sum += from.sum;
  into.count += from.count;
  return into;
}

/**
 * A quantile estimated from the buckets (linear within the bucket that holds it), in ms; null
 * when nothing was observed. Exact to the bucket: p99 = 180 means "between 100 and 250".
 */
export function quantile(h: Histogram, q: number): number | null {
  if (h.count === 0) return null;
  const rank = q * h.count;
  let seen = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const n = h.buckets[i] ?? 0;
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : (LATENCY_BUCKETS_MS[i - 1] as number);
      const upper = LATENCY_BUCKETS_MS[i] ?? lower;
      return Math.round((lower + ((upper - lower) * (rank - seen)) / n) * 100) / 100;
    }
    seen += n;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] as number;
}

/** UTF-8 length of a string without encoding it (frames are counted before compression). */
export function utf8Bytes(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 2; // a surrogate pair: 2 code units, 4 bytes
      i += 1;
    } else bytes += 2;
  }
  return bytes;
}

/** Plain counters of a channel object (each a `_total` on /metrics, labelled by kind). */
export interface ChannelCounters {
  opened: number;
  framesReceived: number;
  framesSent: number;
  batchesSent: number;
  bytesSent: number;
  eventsPublished: number;
}

/** What one object tells the hub: gauges as they are now, counters as deltas since its last report. */
export interface ChannelReport {
  channel: string;
  kind: string;
  at: number;
  connections: number;
  users: number;
  /** The most connections the object held since its last report. */
  peak: number;
  counters: ChannelCounters;
  /** Closed connections by close code; error frames, refusals and resumes by their code. */
  closed: Record<string, number>;
  errors: Record<string, number>;
  refusals: Record<string, number>;
  resumes: Record<string, number>;
  /** Time spent on a frame; from a publishing request's arrival to its last socket written;
   * heartbeat round trips reported by clients. */
  frameMs: Histogram;
  publishMs: Histogram;
  rttMs: Histogram;
}

/** Close codes counted by number; anything else a client sends is counted as `other`. */
const KNOWN_CLOSE_CODES = new Set([
  1000, 1001, 1005, 1006, 1009, 1011, 4401, 4403, 4404, 4408, 4429, 4500,
]);

function zeroCounters(): ChannelCounters {
  return {
    opened: 0,
    framesReceived: 0,
    framesSent: 0,
    batchesSent: 0,
    bytesSent: 0,
    eventsPublished: 0,
  };
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

/** Adds `from`'s deltas into `into` (gauges take `from`'s, the later report's). */
export function mergeReport(into: ChannelReport, from: ChannelReport): ChannelReport {
  for (const key of Object.keys(into.counters) as (keyof ChannelCounters)[]) {
    into.counters[key] += from.counters[key];
  }
  for (const part of ['closed', 'errors', 'refusals', 'resumes'] as const) {
    for (const [k, v] of Object.entries(from[part])) bump(into[part], k, v);
  }
  mergeHistogram(into.frameMs, from.frameMs);
  mergeHistogram(into.publishMs, from.publishMs);
  mergeHistogram(into.rttMs, from.rttMs);
  into.peak = Math.max(into.peak, from.peak);
  into.connections = from.connections;
  into.users = from.users;
  into.at = from.at;
  return into;
}

export interface MetricsHost {
  channel: string;
  kind: string;
  label: string;
  env: Env;
  sql: SqlStorage;
  /** Open sockets and distinct users right now. */
  presence(): { connections: number; users: number };
  /** The fanout's running totals (frames and batches written, bytes before compression). */
  sent(): { frames: number; batches: number; bytes: number };
}

export class ChannelMetrics {
  #counters = zeroCounters();
  #closed: Record<string, number> = {};
  #errors: Record<string, number> = {};
  #refusals: Record<string, number> = {};
  #resumes: Record<string, number> = {};
  #frameMs = emptyHistogram();
  #publishMs = emptyHistogram();
  #rttMs = emptyHistogram();
  #peak = 0;
  #sentSeen = { frames: 0, batches: 0, bytes: 0 };
  #changed = false;
  #lastFlush = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** A report the hub did not take (it was down): sent again with the next one. */
  #unsent: ChannelReport | null = null;
  #flushing: Promise<void> | null = null;
  /** What the hub last heard from this object (persisted, so a woken instance knows). */
  #reported: { at: number; connections: number } | null = null;

  constructor(private readonly host: MetricsHost) {
    host.sql.exec(
      'CREATE TABLE IF NOT EXISTS channel_metrics (id INTEGER PRIMARY KEY, reported_at INTEGER NOT NULL, connections INTEGER NOT NULL)',
    );
    this.#sentSeen = { ...host.sent() };
  }

  // ---- recording (called by the room) -------------------------------------------------

  opened(connectionsNow: number): void {
    this.#counters.opened += 1;
    this.#peak = Math.max(this.#peak, connectionsNow);
    this.#changed = true;
  }

  closed(code: number): void {
    bump(this.#closed, KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other');
    this.#changed = true;
  }

  frameReceived(): void {
    this.#counters.framesReceived += 1;
    this.#changed = true;
  }

  frameHandled(ms: number): void {
    observe(this.#frameMs, ms);
  }

  error(code: string): void {
    bump(this.#errors, code);
    this.#changed = true;
  }

  refused(reason: string): void {
    bump(this.#refusals, reason);
    this.#changed = true;
  }

  resumed(recovered: boolean): void {
    bump(this.#resumes, recovered ? 'recovered' : 'not_recovered');
    this.#changed = true;
  }

  published(events: number): void {
    this.#counters.eventsPublished += events;
    this.#changed = true;
  }

  /** The fanout wrote a published event to its last socket `ms` after its request arrived. */
  publishWritten(ms: number): void {
    observe(this.#publishMs, ms);
  }

  rtt(ms: number): void {
    observe(this.#rttMs, ms);
    this.#changed = true;
  }

  // ---- flushing -----------------------------------------------------------------------

  /**
   * Called when the object finishes handling something (a frame, a connect, a close, an RPC, an
   * alarm): flushes now if the window allows, else makes sure a flush is due at its end.
   */
  settle(now = Date.now()): void {
    if (!this.#dirty() || this.#timer) return;
    const due = this.#lastFlush + FLUSH_WINDOW_MS;
    if (now >= due) {
      void this.flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, due - now);
  }

  /** At a sweep (which runs anyway while sockets are open): re-report gauges the hub may expire. */
  refresh(now = Date.now()): void {
    const reported = this.#lastReported();
    const { connections } = this.host.presence();
    const stale = connections > 0 && now - reported.at >= GAUGE_REFRESH_MS;
    if (stale || connections !== reported.connections) this.#changed = true;
    this.settle(now);
  }

  /** Sends what was counted since the last flush (also what tests and operators call). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    // One flush at a time; a call during one waits for it and then sends what came since.
    const run = (this.#flushing ?? Promise.resolve()).then(() => this.#send());
    this.#flushing = run.finally(() => {
      if (this.#flushing === run) this.#flushing = null;
    });
    return run;
  }

  async #send(): Promise<void> {
    this.#lastFlush = Date.now();
    const fresh = this.#take();
    if (!fresh && !this.#unsent) return;
    if (fresh) writeAnalytics(this.host.env, fresh);
    const report =
      fresh && this.#unsent ? mergeReport(this.#unsent, fresh) : (fresh ?? this.#unsent);
    if (!report) return;
    this.#unsent = null;
    try {
      await metricsHub(this.host.env).report(report);
      this.#reported = { at: report.at, connections: report.connections };
      this.host.sql.exec(
        'INSERT OR REPLACE INTO channel_metrics (id, reported_at, connections) VALUES (1, ?, ?)',
        report.at,
        report.connections,
      );
    } catch (err) {
      // Kept for the next flush: the hub's counts arrive late rather than never.
      this.#unsent = this.#unsent ? mergeReport(report, this.#unsent) : report;
      console.error(`${this.host.label}: metrics report failed`, err);
    }
  }

  #dirty(): boolean {
    const sent = this.host.sent();
    return this.#changed || sent.frames !== this.#sentSeen.frames || this.#unsent !== null;
  }

  /** Takes the counts since the last flush as a report, or null when nothing moved. */
  #take(): ChannelReport | null {
    const sent = this.host.sent();
    const moved = this.#changed || sent.frames !== this.#sentSeen.frames;
    if (!moved) return null;
    const { connections, users } = this.host.presence();
    const counters = {
      ...this.#counters,
      framesSent: sent.frames - this.#sentSeen.frames,
      batchesSent: sent.batches - this.#sentSeen.batches,
      bytesSent: sent.bytes - this.#sentSeen.bytes,
    };
    const report: ChannelReport = {
      channel: this.host.channel,
      kind: this.host.kind,
      at: Date.now(),
      connections,
      users,
      peak: Math.max(this.#peak, connections),
      counters,
      closed: this.#closed,
      errors: this.#errors,
      refusals: this.#refusals,
      resumes: this.#resumes,
      frameMs: this.#frameMs,
      publishMs: this.#publishMs,
      rttMs: this.#rttMs,
    };
    this.#sentSeen = { ...sent };
    this.#counters = zeroCounters();
    this.#closed = {};
    this.#errors = {};
    this.#refusals = {};
    this.#resumes = {};
    this.#frameMs = emptyHistogram();
    this.#publishMs = emptyHistogram();
    this.#rttMs = emptyHistogram();
    this.#peak = connections;
    this.#changed = false;
    return report;
  }

  #lastReported(): { at: number; connections: number } {
    this.#reported ??= this.host.sql
      .exec<{ at: number; connections: number }>(
        'SELECT reported_at AS at, connections FROM channel_metrics WHERE id = 1',
      )
      .toArray()[0] ?? { at: 0, connections: 0 };
    return this.#reported;
  }
}

/**
 * One data point per flush to Workers Analytics Engine (the `ANALYTICS` binding), plus one per
 * error code seen. Absent locally or unconfigured: nothing is written. Layout: docs/operations.md.
 */
function writeAnalytics(env: Env, r: ChannelReport): void {
  const dataset = analyticsOf(env);
  if (!dataset) return;
  try {
    const c = r.counters;
    dataset.writeDataPoint({
      indexes: [r.kind],
      blobs: ['channel', r.kind, r.channel],
      doubles: [
        r.connections,
        r.peak,
        c.opened,
        sum(r.closed),
        c.framesReceived,
        c.framesSent,
        c.bytesSent,
        c.eventsPublished,
        sum(r.errors),
        sum(r.refusals),
        r.frameMs.count,
        r.frameMs.sum,
        r.publishMs.count,
        r.publishMs.sum,
        r.rttMs.count,
        r.rttMs.sum,
      ],
    });
    for (const [code, n] of Object.entries(r.errors)) {
      dataset.writeDataPoint({
        indexes: [r.kind],
        blobs: ['channel_error', r.kind, code],
        doubles: [n],
      });
    }
  } catch (err) {
    console.error('analytics write failed', err);
  }
}

function sum(map: Record<string, number>): number {
  let total = 0;
  for (const n of Object.values(map)) total += n;
  return total;
}
