// Reading the platform's numbers: `GET /metrics` (Prometheus text, for the server key or an
// admin) and `GET /api/admin/metrics` (the same as JSON with per-kind occupancy and the busiest
// channels, for the admin dashboard). Both read the metrics hub. docs/operations.md.
import { Hono } from 'hono';
import { FLUSH_WINDOW_MS, type Histogram, metricsHub, quantile } from '../channel/metrics';
import type { HubSnapshot } from '../channel/metrics-hub';
import type { AppEnv } from '../http/app-env';
import { requireRole } from '../http/auth';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../http/prometheus';
import { flushRequests } from '../http/request-metrics';
import { serverKeyOrAdmin } from '../http/server-key';

/** How many channels the admin view lists as the busiest, by connections and by traffic. */
export const BUSIEST_LIMIT = 10;

async function snapshot(env: Env): Promise<HubSnapshot> {
  // This isolate's own requests first, so a scrape sees everything up to itself.
  await flushRequests(env);
  return metricsHub(env).snapshot();
}

export const metricsRoutes = new Hono<AppEnv>().get('/metrics', serverKeyOrAdmin, async (c) => {
  const text = renderPrometheus(await snapshot(c.env));
  return c.body(text, 200, {
    'content-type': PROMETHEUS_CONTENT_TYPE,
    'cache-control': 'no-store',
  });
});

export const adminMetricsRoutes = new Hono<AppEnv>().get('/admin/metrics', async (c) => {
  requireRole(c, 'admin');
  return c.json(adminView(await snapshot(c.env)), 200, { 'cache-control': 'no-store' });
});

function latency(h: Histogram | undefined) {
  if (!h) return { count: 0, p50: null, p95: null, p99: null };
  return { count: h.count, p50: quantile(h, 0.5), p95: quantile(h, 0.95), p99: quantile(h, 0.99) };
}

/** The snapshot reshaped for a dashboard: per kind, per route group, busiest channels. */
function adminView(s: HubSnapshot) {
  const counter = (name: string, where: Record<string, string>) =>
    s.counters
      .filter((c) => c.name === name && Object.entries(where).every(([k, v]) => c.labels[k] === v))
      .reduce((sum, c) => sum + c.value, 0);
  const byLabel = (name: string, where: Record<string, string>, label: string) => {
    const out: Record<string, number> = {};
    for (const c of s.counters) {
      if (c.name !== name || !Object.entries(where).every(([k, v]) => c.labels[k] === v)) continue;
      const key = c.labels[label] ?? '';
      out[key] = (out[key] ?? 0) + c.value;
    }
    return out;
  };
  const histogram = (name: string, where: Record<string, string>) =>
    s.histograms.find(
      (h) => h.name === name && Object.entries(where).every(([k, v]) => h.labels[k] === v),
    )?.histogram;

  const kindNames = new Set(Object.keys(s.kinds));
  for (const c of s.counters) if (c.labels.channel_kind) kindNames.add(c.labels.channel_kind);
  const kinds = Object.fromEntries(
    [...kindNames].sort().map((kind) => {
      const k = { channel_kind: kind };
      const gauge = s.kinds[kind] ?? { occupied: 0, connections: 0, users: 0, peak: 0 };
      return [
        kind,
        {
          ...gauge,
          opened: counter('channel_connections_opened_total', k),
          closed: byLabel('channel_connections_closed_total', k, 'code'),
          framesReceived: counter('channel_frames_received_total', k),
          framesSent: counter('channel_frames_sent_total', k),
          batchesSent: counter('channel_batches_sent_total', k),
          bytesSent: counter('channel_sent_bytes_total', k),
          eventsPublished: counter('channel_events_published_total', k),
          errors: byLabel('channel_errors_total', k, 'code'),
          refusals: byLabel('channel_refusals_total', k, 'reason'),
          resumes: byLabel('channel_resumes_total', k, 'result'),
          latencyMs: {
            frame: latency(histogram('channel_frame_duration_seconds', k)),
            publishToLastWrite: latency(histogram('channel_publish_to_last_write_seconds', k)),
            heartbeatRtt: latency(histogram('client_heartbeat_rtt_seconds', k)),
          },
        },
      ];
    }),
  );
  const routeNames = new Set<string>();
  for (const c of s.counters)
    if (c.name === 'http_requests_total') routeNames.add(c.labels.route ?? '');
  const routes = Object.fromEntries(
    [...routeNames].sort().map((route) => {
      const statuses = byLabel('http_requests_total', { route }, 'status');
      const requests = Object.values(statuses).reduce((a, b) => a + b, 0);
      return [
        route,
        {
          requests,
          statuses,
          latencyMs: latency(histogram('http_request_duration_seconds', { route })),
        },
      ];
    }),
  );
  const busiest = (by: 'connections' | 'activity') =>
    s.channels
      .filter((c) => c[by] > 0)
      .sort((a, b) => b[by] - a[by])
      .slice(0, BUSIEST_LIMIT)
      .map((c) => ({
        channel: c.channel,
        kind: c.kind,
        connections: c.connections,
        users: c.users,
        activity: Math.round(c.activity * 10) / 10,
        reportedAt: c.reportedAt,
      }));
  const { handled, failures, minutes } = s.window;
  return {
    at: s.at,
    platform: s.platform,
    kinds,
    routes,
    busiest: { byConnections: busiest('connections'), byActivity: busiest('activity') },
    window: { minutes, handled, failures, failureRatio: handled > 0 ? failures / handled : 0 },
    reports: byLabel('metrics_reports_total', {}, 'source'),
    freshness: { flushWindowMs: FLUSH_WINDOW_MS },
  };
}
