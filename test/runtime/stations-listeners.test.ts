// Listener counts (DESIGN invariant 3, seed 001 "Viewer Count"): connections and distinct
// listeners, two tabs are one listener, coalesced frames, a peak that never drops and is saved
// on the session, distinct listeners over a session, and counts that stay right after
// hibernation, eviction and sockets that vanish.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { StreamRoom } from '../../worker/rooms/stream/StreamRoom';
import type { FrameQueue } from '../support/frames';
import { register, type TestUser } from './helpers';
import {
  closeAll,
  createStation,
  goLive,
  listen,
  listenersWhere,
  lobbyCountWhere,
  openLobby,
  sessionRows,
  stopLive,
  streamRoom,
} from './station-fixtures';

async function liveStation() {
  const owner = await register('station_owner');
  const station = await createStation(owner);
  const live = await goLive(owner, station.id);
  return { owner, station, session: live.session };
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('what is counted', () => {
  it('counts two tabs of one user as one listener and two connections', async () => {
    const { station } = await liveStation();
    const user = await register();
    const watcher = await listen(station.id);
    const tab1 = await listen(station.id, user.token);
    const tab2 = await listen(station.id, user.token);
    expect(tab2.welcome.snapshot.listeners).toMatchObject({
      listeners: 2,
      connections: 3,
      users: 1,
      anonymous: 1,
    });
    const both = await listenersWhere(watcher.socket, (f) => f.connections === 3);
    expect(both).toMatchObject({ listeners: 2, users: 1, anonymous: 1, stationId: station.id });
    tab1.socket.close();
    const one = await listenersWhere(watcher.socket, (f) => f.connections === 2);
    expect(one.listeners).toBe(2); // the user is still here in the other tab
    tab2.socket.close();
    expect((await listenersWhere(watcher.socket, (f) => f.connections === 1)).listeners).toBe(1);
    watcher.socket.close();
  });

  it('never stores counts in the sequence log', async () => {
    const { station } = await liveStation();
    const first = await listen(station.id);
    const others = [await listen(station.id), await listen(station.id)];
    await listenersWhere(first.socket, (f) => f.connections === 3);
    const later = await listen(station.id, undefined, {
      since: first.welcome.seq,
      epoch: first.welcome.epoch,
    });
    expect(later.welcome.seq).toBe(first.welcome.seq);
    expect(later.welcome.recovery).toMatchObject({ recovered: true, missed: 0 });
    await closeAll([first.socket, later.socket, ...others.map((o) => o.socket)]);
  });
});

describe('coalescing', () => {
  it('sends a join right away after a quiet spell, and holds the next one back for a second', async () => {
    const { station } = await liveStation();
    const watcher = await listen(station.id);
    await listenersWhere(watcher.socket, (f) => f.connections === 1);
    const leadingAt = Date.now();
    const second = await listen(station.id);
    const task = await runInDurableObject(streamRoom(station.id), (_room, state) => {
      const row = state.storage.sql
        .exec<{ at: number }>("SELECT at FROM channel_tasks WHERE name = 'listeners'")
        .toArray()[0];
      return { at: row?.at, now: Date.now() };
    });
    // Held back: due about a second after the leading frame, not now.
    expect(task.at).toBeGreaterThan(task.now);
    await listenersWhere(watcher.socket, (f) => f.connections === 2);
    expect(Date.now() - leadingAt).toBeGreaterThanOrEqual(300);
    await closeAll([watcher.socket, second.socket]);
  });

  it('turns a run of joins into a handful of frames that end on the exact count', async () => {
    const { station } = await liveStation();
    const dashboard = await openLobby();
    const watcher = await listen(station.id);
    await listenersWhere(watcher.socket, (f) => f.connections === 1);
    const started = Date.now();
    const joined: FrameQueue[] = [];
    const joins = 25;
    // Spaced out, so a room that did not coalesce would have time to send a frame per join.
    for (let i = 0; i < joins; i++) {
      joined.push((await listen(station.id)).socket);
      await new Promise((r) => setTimeout(r, 40));
    }
    await listenersWhere(watcher.socket, (f) => f.connections === joins + 1);
    const elapsed = Date.now() - started;
    const frames = watcher.socket.all('listeners').length;
    // One leading frame per quiet spell plus at most one a second: never one per join.
    expect(frames).toBeLessThanOrEqual(Math.ceil(elapsed / 1000) + 2);
    const atLobby = await lobbyCountWhere(
      dashboard.socket,
      station.id,
      (c) => c.connections === joins + 1,
    );
    expect(atLobby.listeners).toBe(joins + 1);
    const lobbyFrames = dashboard.socket
      .all<{ stations: { stationId: string }[] }>('listeners')
      .filter((f) => f.stations.some((s) => s.stationId === station.id)).length;
    expect(lobbyFrames).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 1000) + 2);
    await closeAll([...joined, watcher.socket, dashboard.socket]);
  });
});

describe('the peak', () => {
  it('never drops when listeners leave and reaches the session row without a stop', async () => {
    const { owner, station, session } = await liveStation();
    const watcher = await listen(station.id);
    const others = [];
    for (let i = 0; i < 4; i++) others.push(await listen(station.id));
    await listenersWhere(watcher.socket, (f) => f.listeners === 5 && f.peak === 5);
    await closeAll(others.map((o) => o.socket));
    const after = await listenersWhere(watcher.socket, (f) => f.listeners === 1);
    expect(after.peak).toBe(5);
    const rows = await until(
      () => sessionRows(station.id),
      (r) => r[0]?.peak_listeners === 5,
    );
    expect(rows[0]).toMatchObject({ id: session.id, peak_listeners: 5 });
    const stop = await stopLive(owner, station.id);
    expect(((await stop.json()) as { session: { peakListeners: number } }).session).toMatchObject({
      peakListeners: 5,
    });
    expect((await sessionRows(station.id))[0]?.peak_listeners).toBe(5);
    watcher.socket.close();
  });

  it('starts a new session’s peak from whoever is listening when it goes live', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const early = [await listen(station.id), await listen(station.id)];
    const live = await goLive(owner, station.id);
    const [row] = await sessionRows(station.id);
    expect(row).toMatchObject({ id: live.session.id, peak_listeners: 2, distinct_listeners: 2 });
    const late = await listen(station.id);
    expect(late.welcome.snapshot.listeners).toMatchObject({ listeners: 3, peak: 3 });
    await closeAll([...early, late].map((l) => l.socket));
  });
});

describe('distinct listeners over a session', () => {
  it('counts each signed-in user once however often they come back, and each anonymous connection', async () => {
    const { owner, station } = await liveStation();
    const [a, b] = await Promise.all([register(), register()]);
    const visit = async (user?: TestUser) => {
      const l = await listen(station.id, user?.token);
      l.socket.close();
      await l.socket.closed();
    };
    await visit(a);
    await visit(a);
    await visit(b);
    const tabs = [await listen(station.id, a.token), await listen(station.id, a.token)];
    await visit();
    await visit();
    const counts = tabs[1]?.welcome.snapshot.listeners;
    expect(counts?.distinct).toBe(2);
    const res = await stopLive(owner, station.id);
    const { session } = (await res.json()) as { session: { distinctListeners: number } };
    // a, b and two anonymous connections.
    expect(session.distinctListeners).toBe(4);
    expect((await sessionRows(station.id))[0]?.distinct_listeners).toBe(4);
    await closeAll(tabs.map((t) => t.socket));
  });
});

describe('counts that survive', () => {
  it('stay right after the room hibernates and wakes from the sockets it still holds', async () => {
    const { station } = await liveStation();
    const user = await register();
    const held = [
      await listen(station.id, user.token),
      await listen(station.id, user.token),
      await listen(station.id),
    ];
    await listenersWhere(held[0]!.socket, (f) => f.connections === 3);
    await evictDurableObject(streamRoom(station.id));
    const fresh = await listen(station.id);
    expect(fresh.welcome.snapshot.listeners).toMatchObject({
      listeners: 3,
      connections: 4,
      users: 1,
      anonymous: 2,
      peak: 3,
    });
    // A socket accepted before the eviction still counts down when it closes.
    held[2]!.socket.close();
    const down = await listenersWhere(fresh.socket, (f) => f.connections === 3);
    expect(down).toMatchObject({ listeners: 2, anonymous: 1, peak: 3 });
    await closeAll([...held.slice(0, 2).map((h) => h.socket), fresh.socket]);
  });

  it('drop to zero when an eviction closes every socket, and keep the peak', async () => {
    const { station } = await liveStation();
    const sockets = [await listen(station.id), await listen(station.id)];
    await listenersWhere(sockets[0]!.socket, (f) => f.connections === 2);
    await evictDurableObject(streamRoom(station.id), { webSockets: 'close' });
    const after = await listen(station.id);
    expect(after.welcome.snapshot.listeners).toMatchObject({
      listeners: 1,
      connections: 1,
      peak: 2,
    });
    after.socket.close();
  });

  it('drop sockets that went silent without a close once the ghost sweep runs', async () => {
    const { station } = await liveStation();
    const dashboard = await openLobby();
    const ghosts = [await listen(station.id), await listen(station.id), await listen(station.id)];
    await lobbyCountWhere(dashboard.socket, station.id, (c) => c.connections === 3);
    const swept = await runInDurableObject(streamRoom(station.id), (room: StreamRoom) =>
      room.sweep(Date.now() + 10 * 60 * 1000),
    );
    expect(swept.closed).toBe(3);
    for (const g of ghosts) expect((await g.socket.closed()).code).toBe(4408);
    const zero = await lobbyCountWhere(dashboard.socket, station.id, (c) => c.connections === 0);
    expect(zero).toMatchObject({ listeners: 0, peak: 3 });
    dashboard.socket.close();
  });
});
