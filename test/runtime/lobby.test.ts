// The lobby (everyone's dashboard) and admin monitoring (seed 000 "For Admins"): the live
// directory in the welcome, live/offline as resumable events, stale reports ignored, the
// directory surviving eviction, and the admin view over the socket and REST.
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type {
  AdminStreamsFrame,
  AdminView,
  StationLiveEvent,
  StationOfflineEvent,
  StationReport,
} from '../../worker/protocol/lobby';
import { api, register, type TestUser } from './helpers';
import {
  closeAll,
  createStation,
  type ErrorBody,
  goLive,
  listen,
  lobbyCountWhere,
  lobbyRoom,
  openLobby,
  stopLive,
} from './station-fixtures';

// One admin per test file (helpers.ts); every test that needs one shares it.
let admin: TestUser | undefined;
async function theAdmin(): Promise<TestUser> {
  admin ??= await register('admin');
  return admin;
}

describe('the lobby directory', () => {
  it('welcomes anonymous and signed-in dashboards with live stations, counts and totals', async () => {
    const [owner, user] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner, { name: 'Directory FM', genre: 'ambient' });
    await goLive(owner, station.id, { showTitle: 'Drift', hostName: 'Io', trackName: 'Hum' });
    const listener = await listen(station.id);
    for (const token of [undefined, user.token]) {
      let dash = await openLobby(token);
      // The directory hears the new listener coalesced; wait for it once.
      if (dash.welcome.snapshot.live.find((s) => s.stationId === station.id)?.listeners !== 1) {
        await lobbyCountWhere(dash.socket, station.id, (c) => c.listeners === 1);
        dash.socket.close();
        dash = await openLobby(token);
      }
      const { snapshot } = dash.welcome;
      expect(dash.welcome.kind).toBe('lobby');
      expect(snapshot.admin).toBeNull();
      expect(snapshot.live.find((s) => s.stationId === station.id)).toMatchObject({
        name: 'Directory FM',
        genre: 'ambient',
        ownerId: owner.id,
        session: { showTitle: 'Drift', hostName: 'Io' },
        nowPlaying: { trackName: 'Hum' },
        listeners: 1,
        connections: 1,
      });
      expect(snapshot.totals.liveStations).toBe(snapshot.live.length);
      expect(snapshot.totals.listeners).toBe(snapshot.live.reduce((n, s) => n + s.listeners, 0));
      dash.socket.close();
    }
    listener.socket.close();
  });

  it('is read-only: anything but ping is an unknown frame type', async () => {
    const dash = await openLobby();
    dash.socket.send({ type: 'station.live', id: 'x' });
    expect(await dash.socket.next('error')).toMatchObject({ code: 'unknown_type', id: 'x' });
    dash.socket.send({ type: 'ping', id: 'p' });
    expect(await dash.socket.next('pong')).toMatchObject({ id: 'p' });
    dash.socket.close();
  });

  it('sequences live and offline so a dashboard that drops misses neither when it resumes', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const dash = await openLobby();
    const { seq, epoch } = dash.welcome;
    dash.socket.close();
    await dash.socket.closed();
    const live = await goLive(owner, station.id);
    await stopLive(owner, station.id);
    const { connect } = await import('./helpers');
    const back = await connect('/ws', { query: { since: seq, epoch } });
    const welcome = await back.next<{ recovery: { recovered: boolean } }>('welcome');
    expect(welcome.recovery.recovered).toBe(true);
    const started = await back.next<StationLiveEvent>(
      (f) =>
        f.type === 'station.live' &&
        (f as unknown as StationLiveEvent).station.stationId === station.id,
    );
    const stopped = await back.next<StationOfflineEvent>(
      (f) => f.type === 'station.offline' && f.stationId === station.id,
    );
    expect(started.station.session.id).toBe(live.session.id);
    expect(stopped.seq).toBeGreaterThan(started.seq);
    expect(stopped.sessionId).toBe(live.session.id);
    back.close();
  });

  it('ignores a report older than the one it already has', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const dash = await openLobby();
    const entry = dash.welcome.snapshot.live.find((s) => s.stationId === station.id);
    expect(entry).toBeDefined();
    // A late delivery of the station's first report (offline, version 1).
    const stale: StationReport = {
      version: 1,
      station: {
        id: station.id,
        ownerId: owner.id,
        name: station.name,
        description: '',
        genre: null,
      },
      live: false,
      session: null,
      nowPlaying: null,
      listeners: { listeners: 0, connections: 0, users: 0, anonymous: 0, peak: 0, distinct: 0 },
      chatMessages: 0,
      messagesPerMinute: 0,
      reactions: {},
      ended: null,
      at: Date.now() - 60_000,
    };
    const result = await lobbyRoom().report(stale);
    expect(result).toEqual({ ok: true, value: { applied: false } });
    await new Promise((r) => setTimeout(r, 50));
    expect(dash.socket.all('station.offline')).toEqual([]);
    const again = await openLobby();
    expect(again.welcome.snapshot.live.some((s) => s.stationId === station.id)).toBe(true);
    await closeAll([dash.socket, again.socket]);
  });

  it('keeps its directory and position across an eviction', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    await goLive(owner, station.id, { showTitle: 'Survivor' });
    const before = await openLobby();
    before.socket.close();
    await before.socket.closed();
    await evictDurableObject(lobbyRoom());
    const after = await openLobby();
    expect(after.welcome.epoch).toBe(before.welcome.epoch);
    expect(after.welcome.seq).toBe(before.welcome.seq);
    expect(after.welcome.snapshot.live.find((s) => s.stationId === station.id)).toMatchObject({
      session: { showTitle: 'Survivor' },
    });
    after.socket.close();
  });
});

describe('admin monitoring', () => {
  it('refuses the admin streams endpoint to anonymous callers and non-admins', async () => {
    const owner = await register('station_owner');
    expect((await api('/api/admin/streams')).status).toBe(401);
    const res = await api('/api/admin/streams', { token: owner.token });
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorBody).error.code).toBe('forbidden');
  });

  it('shows admins every active stream with listeners, peak, messages per minute, reactions and totals', async () => {
    const boss = await theAdmin();
    const [owner, fan] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const adminDash = await openLobby(boss.token);
    expect(adminDash.welcome.snapshot.admin).not.toBeNull();
    const plainDash = await openLobby(fan.token);
    const tab = await listen(station.id, fan.token);
    const anon = await listen(station.id);
    for (let i = 0; i < 3; i++) {
      tab.socket.send({ type: 'chat.send', id: `c${i}`, body: `hello ${i}` });
      await tab.socket.next((f) => f.type === 'ack' && f.id === `c${i}`);
    }
    tab.socket.send({ type: 'reaction', emoji: '🔥' });
    await tab.socket.next('reactions');
    const frame = await adminDash.socket.next<AdminStreamsFrame>((f) => {
      if (f.type !== 'admin.streams') return false;
      const s = (f as unknown as AdminStreamsFrame).streams.find((x) => x.stationId === station.id);
      return s?.messagesPerMinute === 3 && s.reactionTotal === 1 && s.listeners === 2;
    });
    const stream = frame.streams.find((s) => s.stationId === station.id);
    expect(stream).toMatchObject({
      listeners: 2,
      connections: 2,
      users: 1,
      anonymous: 1,
      peak: 2,
      chatMessages: 3,
      reactions: { '🔥': 1 },
    });
    expect(frame.totals.liveStations).toBe(frame.streams.length);
    expect(frame.totals.listeners).toBe(frame.streams.reduce((n, s) => n + s.listeners, 0));
    expect(frame.totals.messagesPerMinute).toBeGreaterThanOrEqual(3);

    const res = await api('/api/admin/streams', { token: boss.token });
    expect(res.status).toBe(200);
    const view = (await res.json()) as AdminView;
    expect(view.streams.find((s) => s.stationId === station.id)).toMatchObject({
      listeners: 2,
      peak: 2,
      messagesPerMinute: 3,
      reactionTotal: 1,
    });
    expect(view.totals.reactions).toBeGreaterThanOrEqual(1);
    // Only admins get the monitoring frames.
    expect(plainDash.socket.all('admin.streams')).toEqual([]);
    await closeAll([adminDash.socket, plainDash.socket, tab.socket, anon.socket]);
  });

  it('lets an admin run and moderate any station', async () => {
    const boss = await theAdmin();
    const [owner, troll] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    const live = await api(`/api/stations/${station.id}/live`, {
      method: 'POST',
      token: boss.token,
      json: { showTitle: 'Emergency broadcast' },
    });
    expect(live.status).toBe(201);
    const t = await listen(station.id, troll.token);
    const mute = await api(`/api/stations/${station.id}/moderation`, {
      method: 'POST',
      token: boss.token,
      json: { userId: troll.id, action: 'mute' },
    });
    expect(mute.status).toBe(201);
    await t.socket.next('moderation');
    const ownerCannotMuteAdmin = await api(`/api/stations/${station.id}/moderation`, {
      method: 'POST',
      token: owner.token,
      json: { userId: boss.id, action: 'ban' },
    });
    expect(ownerCannotMuteAdmin.status).toBe(403);
    expect((await stopLive(boss, station.id)).status).toBe(200);
    t.socket.close();
  });
});
