// The counts a channel object keeps move exactly with the traffic a test makes: connections,
// frames, events, errors by code, refusals, resumes and heartbeat round trips, through the
// test-only probe kind; the worker counts requests by route group and status. Counts reach the
// hub by themselves within the flush window, and an idle room's alarm reports nothing.
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import { FLUSH_WINDOW_MS } from '../../worker/channel/metrics';
import type { AckFrame, ErrorFrame, WelcomeFrame } from '../../worker/protocol/core';
import { probe } from '../kinds/probe/kind';
import type { ProbeRoom, ProbeSnapshot } from '../kinds/probe/ProbeRoom';
import { FrameQueue } from '../support/frames';
import { api, BASE, env, register, type TestUser, unique } from './helpers';
import { type Scrape, scrape, value } from './metrics-helpers';

const stub = (id: string) => probe.stub(env, id) as DurableObjectStub<ProbeRoom>;
const KIND = { channel_kind: 'probe' };

/** A socket to a probe channel, counting every message (a batch is one) and its UTF-8 bytes. */
async function join(id: string, user: TestUser | null = null, query: Record<string, string> = {}) {
  const url = new URL(`${BASE}/ws/probe/${id}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const who = user ? { id: user.id, name: user.name, role: user.role } : null;
  const res = await stub(id).fetch(
    forwardToChannel(new Request(url, { headers: { upgrade: 'websocket' } }), who),
  );
  if (res.status !== 101 || !res.webSocket) throw new Error(`refused: ${res.status}`);
  const ws = res.webSocket;
  const wire = { messages: 0, bytes: 0 };
  ws.addEventListener('message', (event) => {
    wire.messages += 1;
    wire.bytes += new TextEncoder().encode(String(event.data)).byteLength;
  });
  ws.accept();
  const socket = new FrameQueue(ws);
  const welcome = await socket.next<WelcomeFrame<ProbeSnapshot>>('welcome');
  return { socket, welcome, wire };
}

/** Counter deltas between two scrapes. */
function delta(before: Scrape, after: Scrape) {
  return (name: string, labels: Record<string, string> = {}) =>
    value(after, name, { ...KIND, ...labels }) - value(before, name, { ...KIND, ...labels });
}

async function adminView(token: string) {
  const res = await api('/api/admin/metrics', { token });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    kinds: Record<
      string,
      {
        connections: number;
        peak: number;
        latencyMs: Record<string, { count: number; p50: number | null }>;
      }
    >;
    busiest: { byConnections: { channel: string; connections: number }[] };
    routes: Record<string, { requests: number; statuses: Record<string, number> }>;
  };
}

const admin = register('admin');

beforeAll(async () => {
  // The probe's notes are mirrored to D1 (test/kinds/probe); the table is the tests' own.
  await env.DB.exec(
    'CREATE TABLE IF NOT EXISTS probe_notes (id TEXT PRIMARY KEY, room TEXT NOT NULL, user_id TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER, deleted_by TEXT)',
  );
});

describe('what a channel object counts', () => {
  it('counts connections opened and closed (by code), and holds the current number', async () => {
    const [ann, bob] = [await register(), await register()];
    const id = unique('metrics');
    const before = await scrape();
    const a = await join(id, ann);
    const b = await join(id, bob);
    const c = await join(id);
    c.socket.close(1000, 'bye');
    await expect
      .poll(async () => {
        await stub(id).flushMetrics();
        return delta(before, await scrape())('channel_connections_closed_total', { code: '1000' });
      })
      .toBe(1);
    const after = await scrape();
    const d = delta(before, after);
    expect(d('channel_connections_opened_total')).toBe(3);
    const view = await adminView((await admin).token);
    expect(view.busiest.byConnections).toContainEqual(
      expect.objectContaining({ channel: `probe:${id}`, connections: 2 }),
    );
    expect(view.kinds.probe?.peak).toBeGreaterThanOrEqual(3);
    a.socket.close();
    b.socket.close();
  });

  it('counts frames in and out, events published and error frames by code, exactly', async () => {
    const user = await register();
    const id = unique('metrics');
    const before = await scrape();
    const writer = await join(id, user);
    const reader = await join(id);
    for (const n of [1, 2, 3])
      writer.socket.send({ type: 'note.post', id: `n${n}`, body: `n${n}` });
    for (const n of [1, 2, 3]) await writer.socket.next<AckFrame>((f) => f.id === `n${n}`);
    writer.socket.send('{"type": "note.post", ');
    writer.socket.send('not json at all');
    writer.socket.send({ type: 'note.explode' });
    writer.socket.send({ type: 'note.post', body: '' });
    writer.socket.send({ type: 'refuse', id: 'r1' });
    writer.socket.send({ type: 'crash', id: 'c1' });
    reader.socket.send({ type: 'note.post', id: 'anon', body: 'hi' });
    await expect.poll(() => writer.socket.all('error').length).toBe(6);
    await reader.socket.next<ErrorFrame>('error');
    await reader.socket.next((f) => f.type === 'note.posted' && f.seq === 3);

    await stub(id).flushMetrics();
    const d = delta(before, await scrape());
    expect(d('channel_frames_received_total')).toBe(10);
    expect(d('channel_events_published_total')).toBe(3);
    const errors = Object.fromEntries(
      [
        'malformed_json',
        'unknown_type',
        'invalid_frame',
        'refused',
        'internal_error',
        'auth_required',
      ].map((code) => [code, d('channel_errors_total', { code })]),
    );
    expect(errors).toEqual({
      malformed_json: 2,
      unknown_type: 1,
      invalid_frame: 1,
      refused: 1,
      internal_error: 1,
      auth_required: 1,
    });
    // Every message the two sockets got (welcomes, presence, acks, events, errors), and its bytes.
    expect(d('channel_frames_sent_total')).toBe(writer.wire.messages + reader.wire.messages);
    expect(d('channel_sent_bytes_total')).toBe(writer.wire.bytes + reader.wire.bytes);
    writer.socket.close();
    reader.socket.close();
  });

  it('counts refusals: rate-limit warnings and the 4429 close, an oversize frame, a connection cap', async () => {
    const user = await register();
    const id = unique('metrics');
    const before = await scrape();
    const flooder = await join(id, user);
    for (let i = 0; i < 40; i++) flooder.socket.send({ type: 'ping', id: `f${i}` });
    expect((await flooder.socket.closed()).code).toBe(4429);
    const warnings = flooder.socket
      .all<ErrorFrame>('error')
      .filter((e) => e.code === 'rate_limited');

    const big = await join(id, user);
    big.socket.send({ type: 'note.post', body: 'x'.repeat(70 * 1024) });
    expect((await big.socket.closed()).code).toBe(1009);

    const tabs = [];
    for (let i = 0; i < 10; i++) tabs.push(await join(id, user));
    await expect(join(id, user)).rejects.toThrow('refused: 429');

    await stub(id).flushMetrics();
    const d = delta(before, await scrape());
    expect(d('channel_refusals_total', { reason: 'rate_limited' })).toBe(warnings.length);
    expect(d('channel_errors_total', { code: 'rate_limited' })).toBe(warnings.length);
    expect(d('channel_refusals_total', { reason: 'rate_limit_close' })).toBe(1);
    expect(d('channel_connections_closed_total', { code: '4429' })).toBe(1);
    expect(d('channel_refusals_total', { reason: 'frame_too_big' })).toBe(1);
    expect(d('channel_connections_closed_total', { code: '1009' })).toBe(1);
    expect(d('channel_refusals_total', { reason: 'too_many_connections' })).toBe(1);
    for (const tab of tabs) tab.socket.close();
  });

  it('counts resumes that recovered and resumes that could not', async () => {
    const user = await register();
    const id = unique('metrics');
    const first = await join(id, user);
    first.socket.send({ type: 'note.post', id: 'n1', body: 'one' });
    await first.socket.next('ack');
    const before = await scrape();
    const resumed = await join(id, user, { since: '0', epoch: first.welcome.epoch });
    expect(resumed.welcome.recovery).toMatchObject({ recovered: true, missed: 1 });
    const lost = await join(id, user, { since: '0', epoch: 'another-epoch' });
    expect(lost.welcome.recovery.recovered).toBe(false);
    await stub(id).flushMetrics();
    const d = delta(before, await scrape());
    expect(d('channel_resumes_total', { result: 'recovered' })).toBe(1);
    expect(d('channel_resumes_total', { result: 'not_recovered' })).toBe(1);
    for (const s of [first, resumed, lost]) s.socket.close();
  });

  it('samples heartbeat round trips clients report, once per connection per window', async () => {
    const user = await register();
    const id = unique('metrics');
    const token = (await admin).token;
    const rttCount = async () =>
      (await adminView(token)).kinds.probe?.latencyMs.heartbeatRtt?.count ?? 0;
    const before = await rttCount();
    const a = await join(id, user);
    a.socket.send({ type: 'ping', id: 'p1', rtt: 42 });
    await a.socket.next('pong');
    a.socket.send({ type: 'ping', id: 'p2', rtt: 99 }); // the same connection, too soon: not counted
    await a.socket.next('pong');
    a.socket.send({ type: 'ping', id: 'p3', rtt: -5 });
    expect(await a.socket.next<ErrorFrame>('error')).toMatchObject({
      code: 'invalid_frame',
      id: 'p3',
      issues: [{ path: 'rtt' }],
    });
    const b = await join(id, user, { rtt: '17' }); // carried by a reconnect
    await stub(id).flushMetrics();
    expect((await rttCount()) - before).toBe(2);
    a.socket.close();
    b.socket.close();
  });

  it('does not count heartbeats the runtime answers: they never reach the object', async () => {
    const id = unique('metrics');
    const quiet = await join(id);
    await stub(id).flushMetrics();
    const before = await scrape();
    quiet.socket.send('{"type":"ping"}');
    expect(await quiet.socket.next('pong')).toEqual({ type: 'pong' });
    await stub(id).flushMetrics();
    expect(delta(before, await scrape())('channel_frames_received_total')).toBe(0);
    quiet.socket.close();
  });
});

describe('what the worker counts', () => {
  it('counts requests by route group and status, with their latency', async () => {
    const before = await scrape();
    await api('/api/stations');
    await api('/api/stations');
    await api('/api/no-such-route');
    await api('/api/me');
    const after = await scrape();
    const d = (labels: Record<string, string>) =>
      value(after, 'http_requests_total', labels) - value(before, 'http_requests_total', labels);
    expect(d({ route: 'stations', status: '200' })).toBe(2);
    expect(d({ route: 'api_other', status: '404' })).toBe(1);
    expect(d({ route: 'me', status: '401' })).toBe(1);
    const view = await adminView((await admin).token);
    expect(view.routes.stations?.requests).toBeGreaterThanOrEqual(2);
  });
});

describe('how counts travel', () => {
  it('reaches the hub by itself within the flush window, without a flush being asked for', async () => {
    const user = await register();
    const id = unique('metrics');
    const before = await scrape();
    const s = await join(id, user);
    s.socket.send({ type: 'note.post', id: 'n1', body: 'on its own' });
    await s.socket.next('ack');
    await expect
      .poll(async () => delta(before, await scrape())('channel_events_published_total'), {
        timeout: FLUSH_WINDOW_MS + 3000,
        interval: 500,
      })
      .toBe(1);
    s.socket.close();
  });

  it('sends nothing from an idle room: its sweep alarm wakes it, but no report leaves', async () => {
    const id = unique('metrics');
    const s = await join(id);
    await stub(id).flushMetrics();
    const before = await scrape();
    const alarmsBefore = (await stub(id).stats()).wakes.alarms;
    await runInDurableObject(stub(id), (_room: ProbeRoom, state) => {
      state.storage.sql.exec("UPDATE channel_tasks SET at = 0 WHERE name = 'sweep'");
    });
    expect(await runDurableObjectAlarm(stub(id))).toBe(true);
    expect((await stub(id).stats()).wakes.alarms).toBe(alarmsBefore + 1);
    await stub(id).flushMetrics();
    const after = await scrape();
    const reports = (s: Scrape) => value(s, 'metrics_reports_total', { source: 'channel' });
    expect(reports(after) - reports(before)).toBe(0);
    s.socket.close();
  });
});
