// Reading the numbers: /metrics is valid Prometheus exposition for the server key or an admin
// and refuses everyone else; it never names a channel or a user; /api/admin/metrics is the same
// as JSON with occupancy, latency percentiles and the busiest channels, for admins only.
import { describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import { isServerKey } from '../../worker/http/server-key';
import { probe } from '../kinds/probe/kind';
import type { ProbeRoom } from '../kinds/probe/ProbeRoom';
import { FrameQueue } from '../support/frames';
import { api, BASE, env, register, unique } from './helpers';
import { SERVER_KEY, scrape } from './metrics-helpers';

const admin = register('admin');
const stub = (id: string) => probe.stub(env, id) as DurableObjectStub<ProbeRoom>;

async function join(id: string, user: { id: string; name: string; role: string }) {
  const request = new Request(`${BASE}/ws/probe/${id}`, { headers: { upgrade: 'websocket' } });
  const res = await stub(id).fetch(forwardToChannel(request, user));
  if (!res.webSocket) throw new Error(`refused: ${res.status}`);
  res.webSocket.accept();
  const socket = new FrameQueue(res.webSocket);
  await socket.next('welcome');
  return socket;
}

describe('GET /metrics', () => {
  it.each([
    ['no credentials', undefined, 401, 'auth_required'],
    ['a malformed token', 'not-a-token', 401, 'invalid_token'],
    ['a wrong server key of the right length', `${SERVER_KEY.slice(0, -1)}X`, 401, 'invalid_token'],
  ])('refuses %s', async (_, token, status, code) => {
    const res = await api('/metrics', token ? { token } : {});
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: { code } });
  });

  it('refuses a signed-in user who is not an admin with 403', async () => {
    const user = await register();
    const res = await api('/metrics', { token: user.token });
    expect(res.status).toBe(403);
  });

  it('answers the server key and admins with Prometheus text a parser accepts', async () => {
    const byKey = await scrape(SERVER_KEY);
    const byAdmin = await scrape((await admin).token);
    expect(byKey.families.length).toBeGreaterThan(0);
    expect(byAdmin.families.map((f) => f.name)).toContain('wavecast_http_requests_total');
  });

  it('shows connections, counters and histograms by kind, and never a channel or user id', async () => {
    const user = await register();
    const id = unique('secret-channel');
    const socket = await join(id, user);
    socket.send({ type: 'note.post', id: 'n1', body: 'hello' });
    await socket.next('ack');
    await stub(id).flushMetrics();
    const { text, families } = await scrape();
    const types = Object.fromEntries(families.map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      wavecast_channel_connections: 'GAUGE',
      wavecast_channel_connections_opened_total: 'COUNTER',
      wavecast_channel_frames_received_total: 'COUNTER',
      wavecast_channel_frame_duration_seconds: 'HISTOGRAM',
      wavecast_channel_publish_to_last_write_seconds: 'HISTOGRAM',
      wavecast_http_request_duration_seconds: 'HISTOGRAM',
    });
    expect(text).toContain('channel_kind="probe"');
    expect(text).not.toContain(id);
    expect(text).not.toContain(user.id);
    // Histogram buckets are cumulative and end at the count.
    const buckets = text
      .split('\n')
      .filter((l) =>
        l.startsWith('wavecast_channel_frame_duration_seconds_bucket{channel_kind="probe"'),
      )
      .map((l) => Number(l.split(' ').pop()));
    expect(buckets.length).toBeGreaterThan(1);
    expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
    const count = text
      .split('\n')
      .find((l) =>
        l.startsWith('wavecast_channel_frame_duration_seconds_count{channel_kind="probe"}'),
      );
    expect(Number(count?.split(' ').pop())).toBe(buckets.at(-1));
    socket.close();
  });

  it('treats an unset or short server key as no key: only admins can read', async () => {
    const candidate = 'k'.repeat(40);
    expect(await isServerKey({ ...env, SERVER_API_KEY: '' }, candidate)).toBe(false);
    expect(await isServerKey({ ...env, SERVER_API_KEY: 'short' }, 'short')).toBe(false);
    expect(await isServerKey({ ...env, SERVER_API_KEY: candidate }, candidate)).toBe(true);
  });
});

describe('GET /api/admin/metrics', () => {
  it('is for admins only', async () => {
    expect((await api('/api/admin/metrics')).status).toBe(401);
    const user = await register();
    expect((await api('/api/admin/metrics', { token: user.token })).status).toBe(403);
    expect((await api('/api/admin/metrics', { token: SERVER_KEY })).status).toBe(401);
  });

  it('shows occupancy per kind, latency percentiles per route group and the busiest channels', async () => {
    const user = await register();
    const id = unique('busy');
    const sockets = [await join(id, user), await join(id, user)];
    sockets[0]?.send({ type: 'note.post', id: 'n1', body: 'busy' });
    await sockets[0]?.next('ack');
    await stub(id).flushMetrics();
    await api('/api/stations');
    const res = await api('/api/admin/metrics', { token: (await admin).token });
    expect(res.status).toBe(200);
    const view = (await res.json()) as {
      platform: { connections: number; occupied: number };
      kinds: Record<string, { occupied: number; connections: number; eventsPublished: number }>;
      routes: Record<string, { latencyMs: { p50: number; p95: number; p99: number } }>;
      busiest: { byConnections: { channel: string }[]; byActivity: { channel: string }[] };
      window: { minutes: number; handled: number; failures: number };
    };
    expect(view.kinds.probe?.occupied).toBeGreaterThanOrEqual(1);
    expect(view.kinds.probe?.connections).toBeGreaterThanOrEqual(2);
    expect(view.kinds.probe?.eventsPublished).toBeGreaterThanOrEqual(1);
    expect(view.platform.connections).toBeGreaterThanOrEqual(2);
    const stations = view.routes.stations?.latencyMs;
    expect(stations?.p50).toBeGreaterThanOrEqual(0);
    expect(stations?.p99).toBeGreaterThanOrEqual(stations?.p50 ?? 0);
    expect(view.busiest.byConnections.map((c) => c.channel)).toContain(`probe:${id}`);
    expect(view.busiest.byActivity.map((c) => c.channel)).toContain(`probe:${id}`);
    expect(view.window.minutes).toBe(5);
    for (const s of sockets) s?.close();
  });
});
