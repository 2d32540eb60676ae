// Stations over REST (issue 3, "Station owner" and "Listeners"): records, go live / stop / now
// playing with owner-only access and clear errors that leave state unchanged, listings with
// live state and counts, sessions and favourites.
import { describe, expect, it } from 'vitest';
import type { BroadcastSession, NowPlaying, SessionSummary } from '../../worker/protocol/stream';
import { api, register } from './helpers';
import {
  createStation,
  type ErrorBody,
  goLive,
  listen,
  MORNING_SHOW,
  type StationView,
  sessionRows,
  stationRow,
  stopLive,
  streamRoom,
} from './station-fixtures';

describe('station records', () => {
  it('lets a station owner create a station and refuses listeners and anonymous callers', async () => {
    const [owner, listener] = await Promise.all([register('station_owner'), register()]);
    const res = await api('/api/stations', {
      method: 'POST',
      token: owner.token,
      json: { name: 'Jazz FM', description: 'all night', genre: 'jazz' },
    });
    expect(res.status).toBe(201);
    const { station } = (await res.json()) as { station: StationView };
    expect(station).toMatchObject({
      ownerId: owner.id,
      name: 'Jazz FM',
      description: 'all night',
      genre: 'jazz',
      isLive: false,
      nowPlaying: null,
      listeners: 0,
    });
    const byListener = await api('/api/stations', {
      method: 'POST',
      token: listener.token,
      json: { name: 'Nope' },
    });
    expect(byListener.status).toBe(403);
    const anonymous = await api('/api/stations', { method: 'POST', json: { name: 'Nope' } });
    expect(anonymous.status).toBe(401);
  });

  it('answers a malformed station body with 400 naming the field', async () => {
    const owner = await register('station_owner');
    const res = await api('/api/stations', {
      method: 'POST',
      token: owner.token,
      json: { name: '   ', extra: 1 },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('invalid_body');
    expect(body.error.fields?.map((f) => f.path)).toContain('name');
  });

  it('lets only the owner update a station, and the room sees the new name', async () => {
    const [owner, other] = await Promise.all([
      register('station_owner'),
      register('station_owner'),
    ]);
    const station = await createStation(owner);
    const denied = await api(`/api/stations/${station.id}`, {
      method: 'PATCH',
      token: other.token,
      json: { name: 'Stolen' },
    });
    expect(denied.status).toBe(403);
    const res = await api(`/api/stations/${station.id}`, {
      method: 'PATCH',
      token: owner.token,
      json: { name: 'Renamed', genre: null },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { station: StationView }).station).toMatchObject({
      name: 'Renamed',
      genre: null,
    });
    const { welcome, socket } = await listen(station.id);
    expect(welcome.snapshot.station.name).toBe('Renamed');
    socket.close();
    const empty = await api(`/api/stations/${station.id}`, {
      method: 'PATCH',
      token: owner.token,
      json: {},
    });
    expect(empty.status).toBe(400);
  });

  it('answers 404 for an unknown station, over REST and on the socket route', async () => {
    const res = await api('/api/stations/no-such-station');
    expect(res.status).toBe(404);
    expect(((await res.json()) as ErrorBody).error.code).toBe('not_found');
    const { upgrade } = await import('./helpers');
    const refused = await upgrade('/ws/stations/no-such-station');
    expect(refused.status).toBe(404);
  });
});

describe('going live over REST', () => {
  it('opens a broadcast session, mirrors the live state to D1 and shows it in the station', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const live = await goLive(owner, station.id, { ...MORNING_SHOW, trackName: 'So What' });
    expect(live.session).toMatchObject({
      stationId: station.id,
      showTitle: 'Morning Show',
      hostName: 'DJ Ada',
      showType: 'talk',
      hostUserId: owner.id,
    });
    expect(live.nowPlaying).toMatchObject({ showTitle: 'Morning Show', trackName: 'So What' });
    expect(live.seq).toBe(1);
    const row = await stationRow(station.id);
    expect(row).toMatchObject({ is_live: 1, current_session_id: live.session.id });
    expect(JSON.parse(row?.now_playing ?? 'null')).toMatchObject({ trackName: 'So What' });
    const sessions = await sessionRows(station.id);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ id: live.session.id, ended_at: null });

    const one = await api(`/api/stations/${station.id}`);
    const { station: view } = (await one.json()) as {
      station: StationView & { session: BroadcastSession };
    };
    expect(view).toMatchObject({ isLive: true, currentSessionId: live.session.id });
    expect(view.nowPlaying?.trackName).toBe('So What');
    expect(view.session.id).toBe(live.session.id);
  });

  it('refuses to go live twice with already_live and leaves the first session running', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const first = await goLive(owner, station.id);
    const again = await api(`/api/stations/${station.id}/live`, {
      method: 'POST',
      token: owner.token,
      json: { showTitle: 'Second show' },
    });
    expect(again.status).toBe(409);
    expect(((await again.json()) as ErrorBody).error.code).toBe('already_live');
    expect((await stationRow(station.id))?.current_session_id).toBe(first.session.id);
    expect(await sessionRows(station.id)).toHaveLength(1);
    const { welcome, socket } = await listen(station.id);
    expect(welcome.snapshot.session?.showTitle).toBe('Morning Show');
    socket.close();
  });

  it('refuses to stop an offline station or change what plays on it, with not_live', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const stop = await stopLive(owner, station.id);
    expect(stop.status).toBe(409);
    expect(((await stop.json()) as ErrorBody).error.code).toBe('not_live');
    const meta = await api(`/api/stations/${station.id}/now-playing`, {
      method: 'PUT',
      token: owner.token,
      json: { trackName: 'Ghost' },
    });
    expect(meta.status).toBe(409);
    expect(((await meta.json()) as ErrorBody).error.code).toBe('not_live');
    expect(await stationRow(station.id)).toMatchObject({ is_live: 0, now_playing: null });
    expect(await sessionRows(station.id)).toHaveLength(0);
  });

  it('changes only the named now-playing fields, clears one with null, and renames the show', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const live = await goLive(owner, station.id, { ...MORNING_SHOW, artistName: 'Miles' });
    const res = await api(`/api/stations/${station.id}/now-playing`, {
      method: 'PUT',
      token: owner.token,
      json: { trackName: 'Blue in Green', trackId: 'trk-2', artistName: null, showTitle: 'Brunch' },
    });
    expect(res.status).toBe(200);
    const { nowPlaying, seq } = (await res.json()) as { nowPlaying: NowPlaying; seq: number };
    expect(nowPlaying).toMatchObject({
      showTitle: 'Brunch',
      hostName: 'DJ Ada',
      trackName: 'Blue in Green',
      trackId: 'trk-2',
      artistName: null,
    });
    expect(seq).toBe(live.seq + 1);
    const [session] = await sessionRows(station.id);
    expect(session?.show_title).toBe('Brunch');
    const empty = await api(`/api/stations/${station.id}/now-playing`, {
      method: 'PUT',
      token: owner.token,
      json: {},
    });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as ErrorBody).error.code).toBe('invalid_body');
  });

  it('stops a live station, closing the session with its numbers', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const live = await goLive(owner, station.id);
    const res = await stopLive(owner, station.id);
    expect(res.status).toBe(200);
    const { session } = (await res.json()) as { session: SessionSummary };
    expect(session).toMatchObject({ id: live.session.id, peakListeners: 0, chatMessageCount: 0 });
    expect(session.endedAt).toBeGreaterThanOrEqual(live.session.startedAt);
    expect(await stationRow(station.id)).toMatchObject({
      is_live: 0,
      current_session_id: null,
      now_playing: null,
    });
    const [row] = await sessionRows(station.id);
    expect(row?.ended_at).toBe(session.endedAt);
    const sessions = await api(`/api/stations/${station.id}/sessions`);
    expect(((await sessions.json()) as { sessions: { id: string }[] }).sessions[0]?.id).toBe(
      live.session.id,
    );
    // A new show is a new session.
    const next = await goLive(owner, station.id, { showTitle: 'Evening' });
    expect(next.session.id).not.toBe(live.session.id);
    expect(await sessionRows(station.id)).toHaveLength(2);
  });

  it('refuses other users with 403 and anonymous callers with 401, changing nothing', async () => {
    const [owner, stranger] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    const paths = [
      { method: 'POST', path: 'live', json: MORNING_SHOW },
      { method: 'DELETE', path: 'live' },
      { method: 'PUT', path: 'now-playing', json: { trackName: 'x' } },
    ];
    for (const p of paths) {
      const res = await api(`/api/stations/${station.id}/${p.path}`, {
        method: p.method,
        token: stranger.token,
        json: p.json,
      });
      expect(res.status, `${p.method} ${p.path}`).toBe(403);
      const anon = await api(`/api/stations/${station.id}/${p.path}`, {
        method: p.method,
        json: p.json,
      });
      expect(anon.status, `${p.method} ${p.path} anonymous`).toBe(401);
    }
    expect((await stationRow(station.id))?.is_live).toBe(0);
  });

  it('has the room check ownership itself, not only the worker', async () => {
    const [owner, stranger] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    const result = await streamRoom(station.id).request(
      { id: stranger.id, name: stranger.name, role: stranger.role },
      { type: 'stream.start', ...MORNING_SHOW },
    );
    expect(result).toMatchObject({ ok: false, error: { code: 'forbidden', status: 403 } });
    expect((await stationRow(station.id))?.is_live).toBe(0);
  });
});

describe('station listings', () => {
  it('lists stations with live state, now playing and listener counts, filterable to live ones', async () => {
    const owner = await register('station_owner');
    const offline = await createStation(owner, { name: 'Quiet' });
    const onAir = await createStation(owner, { name: 'Loud' });
    await goLive(owner, onAir.id, { showTitle: 'Drive Time', trackName: 'Track A' });
    const a = await listen(onAir.id);
    const b = await listen(onAir.id);
    // The listing reads counts from the lobby directory, which hears from the room coalesced.
    let live: StationView | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      const res = await api('/api/stations?live=true');
      const { stations } = (await res.json()) as { stations: StationView[] };
      expect(stations.every((s) => s.isLive)).toBe(true);
      expect(stations.some((s) => s.id === offline.id)).toBe(false);
      live = stations.find((s) => s.id === onAir.id);
      if (live?.listeners === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(live).toMatchObject({ isLive: true, listeners: 2, connections: 2 });
    expect(live?.nowPlaying).toMatchObject({ showTitle: 'Drive Time', trackName: 'Track A' });
    const all = (await (await api('/api/stations')).json()) as { stations: StationView[] };
    expect(all.stations.find((s) => s.id === offline.id)).toMatchObject({
      isLive: false,
      listeners: 0,
    });
    a.socket.close();
    b.socket.close();
  });

  it('pages through stations with a cursor', async () => {
    const owner = await register('station_owner');
    for (let i = 0; i < 3; i++) await createStation(owner);
    const first = (await (await api('/api/stations?limit=2')).json()) as {
      stations: StationView[];
      nextCursor: string | null;
    };
    expect(first.stations).toHaveLength(2);
    expect(first.nextCursor).not.toBeNull();
    const second = (await (
      await api(`/api/stations?limit=2&before=${first.nextCursor}`)
    ).json()) as { stations: StationView[] };
    const ids = new Set(first.stations.map((s) => s.id));
    expect(second.stations.length).toBeGreaterThan(0);
    expect(second.stations.some((s) => ids.has(s.id))).toBe(false);
    expect((await api('/api/stations?limit=0')).status).toBe(400);
    expect((await api('/api/stations?before=garbage')).status).toBe(400);
  });

  it('gives one station its exact counts from the room', async () => {
    const [owner, user] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const tabs = [await listen(station.id, user.token), await listen(station.id, user.token)];
    const anon = await listen(station.id);
    const res = await api(`/api/stations/${station.id}`);
    const body = (await res.json()) as {
      station: StationView & { counts: { users: number; anonymous: number } };
    };
    expect(body.station).toMatchObject({ listeners: 2, connections: 3, peak: 2 });
    expect(body.station.counts).toMatchObject({ users: 1, anonymous: 1 });
    for (const s of [...tabs, anon]) s.socket.close();
  });
});

describe('favourites', () => {
  it('favourites and unfavourites a station idempotently and lists a user’s favourites', async () => {
    const [owner, fan, other] = await Promise.all([
      register('station_owner'),
      register(),
      register(),
    ]);
    const station = await createStation(owner);
    for (let i = 0; i < 2; i++) {
      const res = await api(`/api/stations/${station.id}/favourite`, {
        method: 'PUT',
        token: fan.token,
      });
      expect(await res.json()).toEqual({
        stationId: station.id,
        favourited: true,
        favourites: 1,
      });
    }
    await api(`/api/stations/${station.id}/favourite`, { method: 'PUT', token: other.token });
    const view = (await (
      await api(`/api/stations/${station.id}`, { token: fan.token })
    ).json()) as { station: { favourites: number; favourited: boolean } };
    expect(view.station).toMatchObject({ favourites: 2, favourited: true });
    const mine = (await (await api('/api/me/favourites', { token: fan.token })).json()) as {
      stations: StationView[];
    };
    expect(mine.stations.map((s) => s.id)).toEqual([station.id]);
    const removed = await api(`/api/stations/${station.id}/favourite`, {
      method: 'DELETE',
      token: fan.token,
    });
    expect(await removed.json()).toMatchObject({ favourited: false, favourites: 1 });
    expect((await api(`/api/stations/${station.id}/favourite`, { method: 'PUT' })).status).toBe(
      401,
    );
    expect(
      (await api('/api/stations/nope/favourite', { method: 'PUT', token: fan.token })).status,
    ).toBe(404);
  });
});
