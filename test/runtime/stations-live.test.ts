// Seed 000 over sockets: the owner's startStream / stopStream / updateMetadata as frames acked
// by request id; listeners and every lobby dashboard see live, metadata and offline at once
// (seed 000 Tests 1–3); listener counts rise and fall as tabs join and close (Test 4).
import { describe, expect, it } from 'vitest';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type {
  StationLiveEvent,
  StationMetadataEvent,
  StationOfflineEvent,
} from '../../worker/protocol/lobby';
import type {
  BroadcastSession,
  StreamMetadataEvent,
  StreamStartedEvent,
  StreamStoppedEvent,
} from '../../worker/protocol/stream';
import { register } from './helpers';
import {
  closeAll,
  createStation,
  goLive,
  listen,
  listenersWhere,
  lobbyCountWhere,
  openLobby,
  sessionRows,
  stationRow,
} from './station-fixtures';

const show = { showTitle: 'Late Jazz', hostName: 'Nina', showType: 'music', trackId: 't-1' };

describe('the owner over the socket', () => {
  it('goes live with stream.start, acked by request id with the event’s seq', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const { socket, welcome } = await listen(station.id, owner.token);
    expect(welcome.snapshot).toMatchObject({ live: false, session: null, nowPlaying: null });
    expect(welcome.snapshot.you.canManage).toBe(true);
    socket.send({ type: 'stream.start', id: 'go', ...show });
    const ack = await socket.next<AckFrame<{ session: BroadcastSession }>>('ack');
    expect(ack).toMatchObject({ id: 'go', seq: 1 });
    expect(ack.result?.session).toMatchObject({ showTitle: 'Late Jazz', hostUserId: owner.id });
    const started = await socket.next<StreamStartedEvent>('stream.started');
    expect(started.seq).toBe(1);
    expect((await stationRow(station.id))?.current_session_id).toBe(ack.result?.session.id);
    socket.close();
  });

  it('applies a retried stream.start id once and answers with the first ack', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const { socket } = await listen(station.id, owner.token);
    socket.send({ type: 'stream.start', id: 'once', ...show });
    socket.send({ type: 'stream.start', id: 'once', ...show });
    const first = await socket.next<AckFrame>('ack');
    const second = await socket.next<AckFrame>('ack');
    expect(second.result).toEqual(first.result);
    expect([first.duplicate, second.duplicate]).toContain(true);
    expect(await sessionRows(station.id)).toHaveLength(1);
    socket.close();
  });

  it('refuses a second start, and stop or metadata while offline, naming the request id', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const { socket } = await listen(station.id, owner.token);
    socket.send({ type: 'stream.stop', id: 's1' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ id: 's1', code: 'not_live' });
    socket.send({ type: 'stream.metadata', id: 'm1', trackName: 'x' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ id: 'm1', code: 'not_live' });
    socket.send({ type: 'stream.start', id: 'a', ...show });
    await socket.next((f) => f.type === 'ack' && f.id === 'a');
    socket.send({ type: 'stream.start', id: 'b', showTitle: 'Other' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'b',
      code: 'already_live',
    });
    expect(await sessionRows(station.id)).toHaveLength(1);
    socket.close();
  });

  it('refuses owner frames from other users (forbidden) and anonymous sockets (auth_required)', async () => {
    const [owner, stranger] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    const { socket, welcome } = await listen(station.id, stranger.token);
    expect(welcome.snapshot.you.canManage).toBe(false);
    socket.send({ type: 'stream.start', id: 'x', ...show });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ id: 'x', code: 'forbidden' });
    const anon = await listen(station.id);
    anon.socket.send({ type: 'stream.start', id: 'y', ...show });
    expect(await anon.socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'y',
      code: 'auth_required',
    });
    expect((await stationRow(station.id))?.is_live).toBe(0);
    socket.close();
    anon.socket.close();
  });

  it('answers malformed owner frames with invalid_frame and keeps the socket open', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const { socket } = await listen(station.id, owner.token);
    socket.send({ type: 'stream.start', id: 'no-title' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'no-title',
      code: 'invalid_frame',
    });
    socket.send({ type: 'stream.metadata', id: 'nothing' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'nothing',
      code: 'invalid_frame',
    });
    socket.send({ type: 'stream.start', id: 'long', showTitle: 'x'.repeat(121) });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ code: 'invalid_frame' });
    socket.send({ type: 'ping', id: 'alive' });
    expect(await socket.next('pong')).toMatchObject({ id: 'alive' });
    socket.close();
  });
});

describe('seed 000 Test 1 and 2: the owner goes live and every dashboard sees it', () => {
  it('sends every connected dashboard, anonymous or signed in, a now-live event with the show', async () => {
    const [owner, user] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner, { name: 'Night Owl' });
    const dashboards = [await openLobby(), await openLobby(user.token)];
    const listener = await listen(station.id, user.token);
    const ownerSocket = await listen(station.id, owner.token);
    ownerSocket.socket.send({ type: 'stream.start', id: 'go', ...show });
    for (const { socket } of dashboards) {
      const live = await socket.next<StationLiveEvent>(
        (f) =>
          f.type === 'station.live' &&
          (f as unknown as StationLiveEvent).station.stationId === station.id,
      );
      expect(live.seq).toBeGreaterThan(0);
      expect(live.station).toMatchObject({
        name: 'Night Owl',
        ownerId: owner.id,
        session: { showTitle: 'Late Jazz', hostName: 'Nina', showType: 'music' },
        nowPlaying: { showTitle: 'Late Jazz', trackId: 't-1' },
        listeners: 2,
        connections: 2,
      });
    }
    const started = await listener.socket.next<StreamStartedEvent>('stream.started');
    expect(started.session.showTitle).toBe('Late Jazz');
    // A dashboard that opens afterwards finds the station in its welcome.
    const late = await openLobby();
    expect(late.welcome.snapshot.live.find((s) => s.stationId === station.id)).toMatchObject({
      name: 'Night Owl',
      session: { showTitle: 'Late Jazz' },
    });
    await closeAll([...dashboards, late, listener, ownerSocket].map((d) => d.socket));
  });

  it('shows the listener count rising on the stream and in the lobby when a listener joins', async () => {
    const [owner, user] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const dashboard = await openLobby(user.token);
    const first = await listen(station.id);
    expect(first.welcome.snapshot.listeners).toMatchObject({ listeners: 1, connections: 1 });
    const second = await listen(station.id, user.token);
    expect(second.welcome.snapshot.listeners.listeners).toBe(2);
    await listenersWhere(first.socket, (f) => f.listeners === 2 && f.connections === 2);
    await lobbyCountWhere(dashboard.socket, station.id, (c) => c.listeners === 2);
    await closeAll([dashboard.socket, first.socket, second.socket]);
  });
});

describe('seed 000 Test 3: metadata updates', () => {
  it('reaches listeners and dashboards at once, without a refresh', async () => {
    const [owner, user] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const dashboard = await openLobby();
    const listener = await listen(station.id, user.token);
    const ownerSocket = await listen(station.id, owner.token);
    ownerSocket.socket.send({
      type: 'stream.metadata',
      id: 'track',
      trackName: 'Naima',
      artistName: 'Coltrane',
      trackId: 't-2',
    });
    const ack = await ownerSocket.socket.next<AckFrame>('ack');
    const update = await listener.socket.next<StreamMetadataEvent>('stream.metadata');
    expect(update.seq).toBe(ack.seq);
    expect(update.nowPlaying).toMatchObject({
      showTitle: 'Morning Show',
      trackName: 'Naima',
      artistName: 'Coltrane',
      trackId: 't-2',
    });
    expect(update.changed.sort()).toEqual(['artistName', 'trackId', 'trackName']);
    const inLobby = await dashboard.socket.next<StationMetadataEvent>(
      (f) => f.type === 'station.metadata' && f.stationId === station.id,
    );
    expect(inLobby.nowPlaying.trackName).toBe('Naima');
    // The show's host changes too (seed 000 updateCurrentShowInfo).
    ownerSocket.socket.send({ type: 'stream.metadata', showTitle: 'Jazz Hour', hostName: 'Max' });
    const renamed = await listener.socket.next<StreamMetadataEvent>('stream.metadata');
    expect(renamed.nowPlaying).toMatchObject({ showTitle: 'Jazz Hour', hostName: 'Max' });
    expect(renamed.nowPlaying.trackName).toBe('Naima');
    await closeAll([dashboard.socket, listener.socket, ownerSocket.socket]);
  });
});

describe('stopping', () => {
  it('sends stream.stopped to listeners and an offline event to dashboards with the final numbers', async () => {
    const [owner, user] = await Promise.all([register('station_owner'), register()]);
    const station = await createStation(owner);
    const live = await goLive(owner, station.id);
    const dashboard = await openLobby();
    const listener = await listen(station.id, user.token);
    const ownerSocket = await listen(station.id, owner.token);
    ownerSocket.socket.send({ type: 'stream.stop', id: 'stop' });
    const ack = await ownerSocket.socket.next<AckFrame>('ack');
    const stopped = await listener.socket.next<StreamStoppedEvent>('stream.stopped');
    expect(stopped.seq).toBe(ack.seq);
    expect(stopped.session).toMatchObject({ id: live.session.id, peakListeners: 2 });
    const offline = await dashboard.socket.next<StationOfflineEvent>(
      (f) => f.type === 'station.offline' && f.stationId === station.id,
    );
    expect(offline).toMatchObject({ sessionId: live.session.id, session: { peakListeners: 2 } });
    const after = await openLobby();
    expect(after.welcome.snapshot.live.some((s) => s.stationId === station.id)).toBe(false);
    await closeAll([dashboard.socket, listener.socket, ownerSocket.socket, after.socket]);
  });

  it('replays missed live events to a listener that resumes with since and epoch', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const first = await listen(station.id);
    const { seq, epoch } = first.welcome;
    first.socket.close();
    await first.socket.closed();
    await goLive(owner, station.id);
    const { api } = await import('./helpers');
    await api(`/api/stations/${station.id}/now-playing`, {
      method: 'PUT',
      token: owner.token,
      json: { trackName: 'Missed' },
    });
    const back = await listen(station.id, undefined, { since: seq, epoch });
    expect(back.welcome.recovery).toEqual({ requested: true, recovered: true, missed: 2 });
    const replayed = [
      await back.socket.next<StreamStartedEvent>('stream.started'),
      await back.socket.next<StreamMetadataEvent>('stream.metadata'),
    ];
    expect(replayed.map((e) => e.seq)).toEqual([seq + 1, seq + 2]);
    expect(back.welcome.snapshot.nowPlaying?.trackName).toBe('Missed');
    back.socket.close();
  });
});

describe('seed 000 Test 4: listener counts across tabs', () => {
  it('counts tabs of different users up as they join and down as they close', async () => {
    const owner = await register('station_owner');
    const users = await Promise.all([register(), register(), register()]);
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const watcher = await listen(station.id);
    const dashboard = await openLobby();
    const tabs = [];
    for (const u of users) tabs.push(await listen(station.id, u.token));
    await listenersWhere(watcher.socket, (f) => f.listeners === 4);
    await lobbyCountWhere(dashboard.socket, station.id, (c) => c.listeners === 4);
    await closeAll(tabs.map((t) => t.socket));
    const down = await listenersWhere(watcher.socket, (f) => f.listeners === 1);
    expect(down).toMatchObject({ connections: 1, users: 0, anonymous: 1, peak: 4 });
    await lobbyCountWhere(dashboard.socket, station.id, (c) => c.listeners === 1 && c.peak === 4);
    await closeAll([watcher.socket, dashboard.socket]);
  });
});
