// Operations end to end, on a `wrangler dev` of this file's own (fresh counters): 200 sockets over
// three kinds (comments, a station, an event), a burst of traffic with bad frames among it, then
// an idle minute. /metrics — parsed as Prometheus exposition — matches what the test did, frame
// for frame and byte for byte; the idle minute sends no report and wakes no room but for its
// sweeps; closing everything brings the gauges to zero. An SDK channel reports its heartbeat
// round trip.
import { getMetricsFromIterator, type PromMetrics } from 'prom2javascript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Channel } from '../../client/sdk';
import { FrameQueue, type SocketLike } from '../support/frames';
import { E2E_ADMIN, e2eServer } from './server';

const SERVER_KEY = 'e2e-server-key-0123456789abcdef0123456789';
const server = e2eServer('operations', { SERVER_API_KEY: SERVER_KEY });

const USERS = 30;
/** Sockets per kind: signed-in tabs (one per user, or per first users) and anonymous ones. */
const PLAN = {
  comments: { signedIn: 30, anonymous: 50 },
  stream: { signedIn: 30, anonymous: 40 },
  event: { signedIn: 20, anonymous: 30 },
} as const;
type KindName = keyof typeof PLAN;
const KINDS = Object.keys(PLAN) as KindName[];
const HEARTBEAT = '{"type":"ping"}';
const PONG = '{"type":"pong"}';
const SWEEP_INTERVAL_S = 30; // HEARTBEAT_TIMEOUT_SECONDS (75) / 2, at most 30

interface User {
  id: string;
  token: string;
}

interface Tab {
  kind: KindName;
  user: User | null;
  raw: WebSocket;
  queue: FrameQueue;
}

/** What each kind's sockets received, as the server would count it (heartbeat pongs are the
 * runtime's, not the object's, so they are left out). */
const wire: Record<KindName, { messages: number; bytes: number }> = {
  comments: { messages: 0, bytes: 0 },
  stream: { messages: 0, bytes: 0 },
  event: { messages: 0, bytes: 0 },
};

async function api<T = unknown>(
  path: string,
  init: { method?: string; token?: string; json?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.baseUrl}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Registers an account; `role` undefined for the admin (ADMIN_EMAILS decides). */
async function register(role: string | undefined, email: string): Promise<User> {
  const res = await api<{ user: { id: string }; token: string }>('/api/auth/register', {
    method: 'POST',
    json: { email, password: 'correct horse battery', displayName: email.split('@')[0], role },
  });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.user.id, token: res.body.token };
}

function open(kind: KindName, path: string, user: User | null): Promise<Tab> {
  const url = new URL(`${server.baseUrl.replace(/^http/, 'ws')}${path}`);
  if (user) url.searchParams.set('token', user.token);
  const raw = new WebSocket(url);
  // Counted from the first byte, before FrameQueue sees anything.
  raw.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary || data.toString() === PONG) return;
    wire[kind].messages += 1;
    wire[kind].bytes += data.length;
  });
  const queue = new FrameQueue(raw as unknown as SocketLike);
  return new Promise((ok, fail) => {
    raw.once('open', () => ok({ kind, user, raw, queue }));
    raw.once('unexpected-response', (_req, res) => fail(new Error(`refused: ${res.statusCode}`)));
    raw.once('error', fail);
  });
}

async function inBatches<T, R>(items: T[], width: number, make: (item: T) => Promise<R>) {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    out.push(...(await Promise.all(items.slice(i, i + width).map(make))));
  }
  return out;
}

async function scrape(): Promise<PromMetrics> {
  const res = await fetch(`${server.baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${SERVER_KEY}` },
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  return getMetricsFromIterator(text.split('\n')[Symbol.iterator]());
}

function sample(m: PromMetrics, name: string, labels: Record<string, string>): number {
  const data = (m[`wavecast_${name}`]?.data ?? []) as {
    labels: Record<string, string>;
    value: number;
  }[];
  const found = data.find(
    (d) =>
      Object.keys(d.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => d.labels[k] === v),
  );
  return found?.value ?? 0;
}

function histogramCount(m: PromMetrics, name: string, labels: Record<string, string>): number {
  const data = (m[`wavecast_${name}`]?.data ?? []) as {
    labels: Record<string, string>;
    count: number;
  }[];
  return data.find((d) => Object.entries(labels).every(([k, v]) => d.labels[k] === v))?.count ?? 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => server.start(), 120_000);
afterAll(() => server.dispose(), 60_000);

describe('operations against wrangler dev', () => {
  const tabs: Tab[] = [];
  let admin: User;
  const channelIds: Record<KindName, string> = { comments: '', stream: '', event: '' };
  /** What the test sent to each kind (frames that reach the object; heartbeats do not). */
  const sent: Record<KindName, number> = { comments: 0, stream: 0, event: 0 };
  let heartbeat: ReturnType<typeof setInterval> | undefined;

  afterAll(() => {
    clearInterval(heartbeat);
    for (const t of tabs) t.raw.terminate();
  });

  it('counts 200 sockets, a burst with bad frames and an idle minute exactly', async () => {
    admin = await register(undefined, E2E_ADMIN);
    const owner = await register('station_owner', `owner-${process.pid}@ops.e2e.test`);
    const organiser = await register('organiser', `organiser-${process.pid}@ops.e2e.test`);
    const users = await inBatches([...Array(USERS).keys()], 10, (i) =>
      register('listener', `user${i}-${process.pid}@ops.e2e.test`),
    );
    const station = await api<{ station: { id: string } }>('/api/stations', {
      method: 'POST',
      token: owner.token,
      json: { name: 'Ops FM' },
    });
    const event = await api<{ event: { id: string } }>('/api/events', {
      method: 'POST',
      token: organiser.token,
      json: {
        title: 'Ops night',
        venue: 'Loopback',
        startsAt: Date.now() + 86_400_000,
        capacity: 100,
      },
    });
    channelIds.comments = `ops-item-${process.pid}`;
    channelIds.stream = station.body.station.id;
    channelIds.event = event.body.event.id;
    const paths: Record<KindName, string> = {
      comments: `/ws/comments/${channelIds.comments}`,
      stream: `/ws/stations/${channelIds.stream}`,
      event: `/ws/events/${channelIds.event}`,
    };

    // 200 sockets: 80 on the comments, 70 on the station, 50 on the event.
    const plan = KINDS.flatMap((kind) => [
      ...users.slice(0, PLAN[kind].signedIn).map((u) => ({ kind, user: u as User | null })),
      ...Array.from({ length: PLAN[kind].anonymous }, () => ({ kind, user: null as User | null })),
    ]);
    expect(plan).toHaveLength(200);
    tabs.push(...(await inBatches(plan, 20, ({ kind, user }) => open(kind, paths[kind], user))));
    await Promise.all(tabs.map((t) => t.queue.next('welcome', 20_000)));
    expect(tabs.some((t) => t.raw.extensions.includes('permessage-deflate'))).toBe(true);
    // The SDK's heartbeat, as every client sends it: answered by the runtime, never counted.
    heartbeat = setInterval(() => {
      for (const t of tabs) if (t.raw.readyState === WebSocket.OPEN) t.raw.send(HEARTBEAT);
    }, 20_000);
    for (const t of tabs) t.raw.send(HEARTBEAT);

    // The burst.
    const of = (kind: KindName, signedIn: boolean) =>
      tabs.filter((t) => t.kind === kind && (t.user !== null) === signedIn);
    const send = (t: Tab, frame: object | string) => {
      t.raw.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      sent[t.kind] += 1;
    };
    for (const [i, t] of of('comments', true).entries()) {
      send(t, { type: 'comment.create', id: `a${i}`, body: `first from ${i}`, rtt: 20 + i });
      send(t, { type: 'comment.create', id: `b${i}`, body: `second from ${i}` });
    }
    for (const [i, t] of of('stream', true).entries()) {
      send(t, { type: 'chat.send', id: `c${i}`, body: `hello from ${i}` });
    }
    for (const [i, t] of of('event', true).entries()) send(t, { type: 'ping', id: `p${i}` });
    const anonComments = of('comments', false);
    for (const t of anonComments.slice(0, 10)) send(t, '{"type": "comment.create", ');
    for (const t of anonComments.slice(10, 15)) send(t, { type: 'comment.explode' });
    for (const t of of('comments', true).slice(0, 5))
      send(t, { type: 'comment.create', body: '  ' });
    for (const t of of('stream', false).slice(0, 5)) send(t, { type: 'chat.send', body: 'hi' });
    for (const t of of('event', false).slice(0, 5)) send(t, { type: 'booking.make' });
    const expectedErrors: Record<KindName, Record<string, number>> = {
      comments: { malformed_json: 10, unknown_type: 5, invalid_frame: 5 },
      stream: { auth_required: 5 },
      event: { unknown_type: 5 },
    };

    // Everyone has everything: 60 comments at every comment tab, 30 chat messages at every listener.
    await Promise.all(
      tabs.map(async (t) => {
        const want = t.kind === 'comments' ? 60 : t.kind === 'stream' ? 30 : 0;
        const type = t.kind === 'comments' ? 'comment.created' : 'chat.message';
        const deadline = Date.now() + 30_000;
        while (t.queue.all(type).length < want && Date.now() < deadline) {
          await t.queue.next((f) => f.type === type, deadline - Date.now()).catch(() => {});
        }
        expect(t.queue.all(type)).toHaveLength(want);
      }),
    );

    // The counts reach /metrics by themselves (flush window), and match the wire exactly.
    // Compared as the difference (server − wire), read together, until the last ack has landed.
    let m: PromMetrics = {};
    await expect
      .poll(
        async () => {
          m = await scrape();
          return KINDS.map((kind) => [
            sample(m, 'channel_frames_received_total', { channel_kind: kind }) - sent[kind],
            sample(m, 'channel_frames_sent_total', { channel_kind: kind }) - wire[kind].messages,
            sample(m, 'channel_sent_bytes_total', { channel_kind: kind }) - wire[kind].bytes,
          ]);
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toEqual(KINDS.map(() => [0, 0, 0]));
    for (const kind of KINDS) {
      const k = { channel_kind: kind };
      const sockets = PLAN[kind].signedIn + PLAN[kind].anonymous;
      expect(sample(m, 'channel_connections', k), kind).toBe(sockets);
      expect(sample(m, 'channel_connections_opened_total', k), kind).toBe(sockets);
      expect(sample(m, 'channels_occupied', k), kind).toBe(1);
      for (const [code, n] of Object.entries(expectedErrors[kind])) {
        expect(sample(m, 'channel_errors_total', { ...k, code }), `${kind} ${code}`).toBe(n);
      }
      expect(histogramCount(m, 'channel_frame_duration_seconds', k), kind).toBe(sent[kind]);
    }
    expect(sample(m, 'channel_events_published_total', { channel_kind: 'comments' })).toBe(60);
    expect(sample(m, 'channel_events_published_total', { channel_kind: 'stream' })).toBe(30);
    expect(histogramCount(m, 'client_heartbeat_rtt_seconds', { channel_kind: 'comments' })).toBe(
      30,
    );
    expect(sample(m, 'http_requests_total', { route: 'ws', status: '101' })).toBe(200);
    console.log(
      'after the burst:',
      JSON.stringify(
        Object.fromEntries(
          KINDS.map((kind) => [
            kind,
            { received: sent[kind], sent: wire[kind].messages, bytes: wire[kind].bytes },
          ]),
        ),
      ),
    );

    // The idle minute: heartbeats only. No report leaves a room, no room wakes but for its sweep.
    await sleep(6000); // past any trailing flush, coalesced count and outbox backstop of the burst
    const stats = async () =>
      Promise.all(
        KINDS.map(async (kind) => {
          const res = await api<{ since: number; wakes: Record<string, number> }>(
            `/api/admin/channels/${kind}/${channelIds[kind]}/stats`,
            { token: admin.token },
          );
          expect(res.status).toBe(200);
          return res.body;
        }),
      );
    const reports = (x: PromMetrics) => sample(x, 'metrics_reports_total', { source: 'channel' });
    const before = { metrics: await scrape(), stats: await stats() };
    await sleep(60_000);
    const after = { metrics: await scrape(), stats: await stats() };
    expect(reports(after.metrics) - reports(before.metrics)).toBe(0);
    for (const [i, kind] of KINDS.entries()) {
      const [b, a] = [before.stats[i], after.stats[i]];
      // A room may hibernate meanwhile (its sockets stay; a pending metrics timer would have
      // prevented that): then this read met a new instance, whose wakes all fall in the minute.
      const sameInstance = a?.since === b?.since;
      const woke = Object.fromEntries(
        Object.entries(a?.wakes ?? {}).map(([k, v]) => [
          k,
          v - (sameInstance ? (b?.wakes[k] ?? 0) : 0),
        ]),
      );
      console.log(
        `idle minute, ${kind}${sameInstance ? '' : ' (hibernated; a new instance since)'}:`,
        JSON.stringify(woke),
      );
      expect(woke, kind).toMatchObject({ fetches: 0, frames: 0, rpcs: 0, closes: 0 });
      expect(woke.alarms ?? 0, `${kind}: sweeps only`).toBeLessThanOrEqual(
        60 / SWEEP_INTERVAL_S + 1,
      );
      const k = { channel_kind: kind };
      expect(sample(after.metrics, 'channel_frames_received_total', k)).toBe(sent[kind]);
    }

    // Everyone leaves: closes are counted by code, and the gauges return to zero.
    clearInterval(heartbeat);
    for (const t of tabs) t.raw.close(1000, 'done');
    await expect
      .poll(
        async () => {
          const x = await scrape();
          return KINDS.map((kind) => [
            sample(x, 'channel_connections_closed_total', { channel_kind: kind, code: '1000' }),
            sample(x, 'channel_connections', { channel_kind: kind }),
          ]);
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toEqual(KINDS.map((kind) => [PLAN[kind].signedIn + PLAN[kind].anonymous, 0]));
    const peak = await scrape();
    for (const kind of KINDS) {
      expect(sample(peak, 'channel_connections_peak', { channel_kind: kind })).toBe(
        PLAN[kind].signedIn + PLAN[kind].anonymous,
      );
    }
  }, 300_000);

  it('takes the heartbeat round trip the SDK measured, riding on a frame it sends', async () => {
    const channel = new Channel({
      baseUrl: server.baseUrl,
      path: '/ws',
      WebSocket,
      heartbeatMs: 200,
    });
    try {
      await expect.poll(() => channel.rtt, { timeout: 10_000 }).not.toBeNull();
      // A ping with an id reaches the lobby's object (a heartbeat would not): the rtt rides on it.
      const pong = new Promise((resolve) => channel.on('pong', resolve));
      channel.send({ type: 'ping', id: 'rtt-1' });
      await pong;
      await expect
        .poll(
          async () =>
            histogramCount(await scrape(), 'client_heartbeat_rtt_seconds', {
              channel_kind: 'lobby',
            }),
          { timeout: 15_000, interval: 500 },
        )
        .toBe(1);
    } finally {
      channel.close();
    }
  }, 60_000);
});
