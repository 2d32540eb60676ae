// The hub's snapshot in the Prometheus text exposition format (version 0.0.4): one HELP and
// TYPE line per family, then its samples. Labels are only `channel_kind`, `route` and small
// fixed sets (status, code, reason, result, source) — never a user or a channel id.
import { LATENCY_BUCKETS_MS } from '../channel/metrics';
import type { HubSnapshot } from '../channel/metrics-hub';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const PREFIX = 'wavecast_';

type Type = 'counter' | 'gauge' | 'histogram';

/** Every family /metrics can show, in the order it shows them. */
const FAMILIES: Record<string, { type: Type; help: string }> = {
  channel_connections: { type: 'gauge', help: 'Open WebSocket connections.' },
  channel_users: {
    type: 'gauge',
    help: 'Signed-in users connected, counted once per channel object.',
  },
  channels_occupied: { type: 'gauge', help: 'Channel objects holding at least one connection.' },
  channel_connections_peak: {
    type: 'gauge',
    help: 'Most connections seen at once since the metrics hub was created.',
  },
  channel_connections_opened_total: { type: 'counter', help: 'Connections accepted.' },
  channel_connections_closed_total: { type: 'counter', help: 'Connections closed, by close code.' },
  channel_frames_received_total: {
    type: 'counter',
    help: 'Client frames that reached a channel object (heartbeats the runtime answers do not).',
  },
  channel_frames_sent_total: { type: 'counter', help: 'Frames written to sockets.' },
  channel_batches_sent_total: { type: 'counter', help: 'Batch frames written to sockets.' },
  channel_sent_bytes_total: {
    type: 'counter',
    help: 'UTF-8 bytes written to sockets, before permessage-deflate compression.',
  },
  channel_events_published_total: { type: 'counter', help: 'Sequenced events published.' },
  channel_errors_total: { type: 'counter', help: 'Error frames sent, by error code.' },
  channel_refusals_total: {
    type: 'counter',
    help: 'Frames and connections refused by a limit (rate, size, caps, access), by reason.',
  },
  channel_resumes_total: { type: 'counter', help: 'Reconnects that asked to resume, by result.' },
  channel_frame_duration_seconds: {
    type: 'histogram',
    help: 'Time a channel object spent on a client frame (awaited work only).',
  },
  channel_publish_to_last_write_seconds: {
    type: 'histogram',
    help: "From a publishing request's arrival in the object to the event's last socket write.",
  },
  client_heartbeat_rtt_seconds: {
    type: 'histogram',
    help: 'Heartbeat round trips measured by clients (sampled, at most one a minute per socket).',
  },
  http_requests_total: {
    type: 'counter',
    help: 'HTTP requests answered, by route group and status.',
  },
  http_request_duration_seconds: {
    type: 'histogram',
    help: 'HTTP request latency in the worker, by route group.',
  },
  metrics_reports_total: { type: 'counter', help: 'Reports the metrics hub received, by source.' },
};

interface Sample {
  labels: Record<string, string>;
  suffix?: string;
  value: number;
}

export function renderPrometheus(s: HubSnapshot): string {
  const families = new Map<string, Sample[]>();
  const add = (name: string, sample: Sample) => {
    const list = families.get(name) ?? [];
    list.push(sample);
    families.set(name, list);
  };
  for (const [kind, k] of Object.entries(s.kinds)) {
    const labels = { channel_kind: kind };
    add('channel_connections', { labels, value: k.connections });
    add('channel_users', { labels, value: k.users });
    add('channels_occupied', { labels, value: k.occupied });
    add('channel_connections_peak', { labels, value: k.peak });
  }
  for (const c of s.counters) add(c.name, { labels: c.labels, value: c.value });
  for (const h of s.histograms) {
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((bound, i) => {
      cumulative += h.histogram.buckets[i] ?? 0;
      const le = formatNumber(bound / 1000);
      add(h.name, { labels: { ...h.labels, le }, suffix: '_bucket', value: cumulative });
    });
    add(h.name, {
      labels: { ...h.labels, le: '+Inf' },
      suffix: '_bucket',
      value: h.histogram.count,
    });
    add(h.name, { labels: h.labels, suffix: '_sum', value: h.histogram.sum / 1000 });
    add(h.name, { labels: h.labels, suffix: '_count', value: h.histogram.count });
  }
  const lines: string[] = [];
  for (const [name, meta] of Object.entries(FAMILIES)) {
    const samples = families.get(name);
    if (!samples) continue;
    const full = `${PREFIX}${name}`;
    lines.push(`# HELP ${full} ${meta.help}`, `# TYPE ${full} ${meta.type}`);
    for (const sample of ordered(samples)) {
      lines.push(
        `${full}${sample.suffix ?? ''}${labelText(sample.labels)} ${formatNumber(sample.value)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Series grouped by their labels (without `le`), buckets in order, as Prometheus expects. */
function ordered(samples: Sample[]): Sample[] {
  const key = (s: Sample) =>
    JSON.stringify(
      Object.entries(s.labels)
        .filter(([k]) => k !== 'le')
        .sort(),
    );
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = key(s);
    groups.set(k, [...(groups.get(k) ?? []), s]);
  }
  return [...groups.keys()].sort().flatMap((k) => groups.get(k) ?? []);
}

function labelText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  const body = entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
  return `{${body}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}
