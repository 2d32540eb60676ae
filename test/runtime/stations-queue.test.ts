// The track queue (issue 11): the owner adds, removes, reorders and clears upcoming tracks;
// listeners get the queue in the welcome and every change as a sequenced, resumable event;
// "next" makes the head now-playing in one `stream.metadata` event (listeners and the lobby);
// the queue survives eviction and is bounded at 200; bad input has stable codes.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type { StationMetadataEvent } from '../../worker/protocol/lobby';
import type {
  NowPlaying,
  QueueAddedEvent,
  QueueItem,
  StreamMetadataEvent,
  StreamWelcome,
} from '../../worker/protocol/stream';
import type { FrameQueue } from '../support/frames';
import { api, register } from './helpers';
import {
  closeAll,
  createStation,
  type ErrorBody,
  goLive,
  listen,
  openLobby,
  streamRoom,
} from './station-fixtures';

let ids = 0;
async function ask<T = unknown>(socket: FrameQueue, frame: object) {
  ids += 1;
  const id = `k${ids}`;
  socket.send({ ...frame, id });
  return socket.next<(AckFrame<T> | ErrorFrame) & { code?: string; result?: T }>(
    (f) => f.id === id && (f.type === 'ack' || f.type === 'error'),
  );
}

async function add(socket: FrameQueue, trackName: string, extra: object = {}): Promise<QueueItem> {
  const ack = await ask<{ item: QueueItem }>(socket, { type: 'queue.add', trackName, ...extra });
  if (ack.type !== 'ack' || !ack.result) throw new Error(`queue.add: ${JSON.stringify(ack)}`);
  return ack.result.item;
}

/** Applies queue events to a welcome's queue, the way a client keeps it. */
function follow(welcome: StreamWelcome, socket: FrameQueue) {
  let queue = [...welcome.snapshot.queue];
  let nowPlaying = welcome.snapshot.nowPlaying;
  for (const f of socket.received) {
    if (f.type === 'queue.added') {
      const e = f as unknown as QueueAddedEvent;
      queue.splice(e.position, 0, e.item);
    } else if (f.type === 'queue.removed') {
      queue = queue.filter((i) => i.id !== f.itemId);
    } else if (f.type === 'queue.moved') {
      const item = queue.find((i) => i.id === f.itemId);
      queue = queue.filter((i) => i.id !== f.itemId);
      if (item) queue.splice(f.position as number, 0, item);
    } else if (f.type === 'queue.cleared') {
      queue = [];
    } else if (f.type === 'stream.metadata') {
      const e = f as unknown as StreamMetadataEvent;
      nowPlaying = e.nowPlaying;
      if (e.queueItemId) queue = queue.filter((i) => i.id !== e.queueItemId);
    }
  }
  return { queue: queue.map((i) => i.trackName), nowPlaying };
}

async function restQueue(stationId: string) {
  const res = await api(`/api/stations/${stationId}/queue`);
  return (await res.json()) as { queue: QueueItem[]; nowPlaying: NowPlaying | null };
}

async function ownerDesk(live = true) {
  const owner = await register('station_owner');
  const station = await createStation(owner);
  if (live) await goLive(owner, station.id);
  const desk = await listen(station.id, owner.token);
  return { owner, station, desk: desk.socket };
}

describe('managing the queue', () => {
  it('add, move, remove and clear are sequenced events every listener follows', async () => {
    const { station, desk } = await ownerDesk();
    const watcher = await listen(station.id);
    const a = await add(desk, 'Alpha', { artistName: 'A', trackId: 't-a', durationSeconds: 200 });
    const b = await add(desk, 'Bravo');
    const c = await add(desk, 'Charlie', { position: 0 });
    expect(a).toMatchObject({
      trackName: 'Alpha',
      artistName: 'A',
      trackId: 't-a',
      durationSeconds: 200,
    });
    expect(b).toMatchObject({ artistName: null, trackId: null, durationSeconds: null });
    const moved = await ask(desk, { type: 'queue.move', itemId: a.id, position: 2 });
    expect(moved).toMatchObject({ type: 'ack', result: { itemId: a.id, position: 2 } });
    await ask(desk, { type: 'queue.remove', itemId: c.id });
    expect((await restQueue(station.id)).queue.map((i) => i.trackName)).toEqual(['Bravo', 'Alpha']);
    await watcher.socket.next((f) => f.type === 'queue.removed');
    expect(follow(watcher.welcome, watcher.socket).queue).toEqual(['Bravo', 'Alpha']);
    const late = await listen(station.id);
    expect(late.welcome.snapshot.queue.map((i) => i.trackName)).toEqual(['Bravo', 'Alpha']);
    const cleared = await ask<{ removed: number }>(desk, { type: 'queue.clear' });
    expect(cleared).toMatchObject({ type: 'ack', result: { removed: 2 } });
    await late.socket.next('queue.cleared');
    const seqs = watcher.socket
      .all<{ seq: number }>((f) => f.type.startsWith('queue.'))
      .map((f) => f.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs).toHaveLength(6);
    await closeAll([desk, watcher.socket, late.socket]);
  });

  it('can be prepared while offline; only the owner or an admin manages it', async () => {
    const { station, desk } = await ownerDesk(false);
    await add(desk, 'Warm-up');
    const listener = await register();
    const tab = await listen(station.id, listener.token);
    const anon = await listen(station.id);
    expect(await ask(tab.socket, { type: 'queue.add', trackName: 'Mine' })).toMatchObject({
      code: 'forbidden',
    });
    expect(await ask(tab.socket, { type: 'queue.clear' })).toMatchObject({ code: 'forbidden' });
    expect(await ask(anon.socket, { type: 'queue.add', trackName: 'Mine' })).toMatchObject({
      code: 'auth_required',
    });
    const rest = await api(`/api/stations/${station.id}/queue`, {
      method: 'POST',
      token: listener.token,
      json: { trackName: 'Mine' },
    });
    expect(rest.status).toBe(403);
    const admin = await register('admin');
    const byAdmin = await api(`/api/stations/${station.id}/queue`, {
      method: 'POST',
      token: admin.token,
      json: { trackName: 'Admin pick' },
    });
    expect(byAdmin.status).toBe(201);
    expect((await restQueue(station.id)).queue.map((i) => i.trackName)).toEqual([
      'Warm-up',
      'Admin pick',
    ]);
    await closeAll([desk, tab.socket, anon.socket]);
  });

  it('refuses bad input with stable codes and changes nothing', async () => {
    const { owner, station, desk } = await ownerDesk();
    const item = await add(desk, 'Only');
    const cases: [object, string][] = [
      [{ type: 'queue.add', trackName: '' }, 'invalid_frame'],
      [{ type: 'queue.add', trackName: 'x'.repeat(201) }, 'invalid_frame'],
      [{ type: 'queue.add', trackName: 'x', durationSeconds: 0 }, 'invalid_frame'],
      [{ type: 'queue.add', trackName: 'x', position: -1 }, 'invalid_frame'],
      [{ type: 'queue.add', trackName: 'x', position: 2 }, 'invalid_position'],
      [{ type: 'queue.add', trackName: 'x', colour: 'red' }, 'invalid_frame'],
      [{ type: 'queue.remove', itemId: 'nope' }, 'queue_item_not_found'],
      [{ type: 'queue.move', itemId: 'nope', position: 0 }, 'queue_item_not_found'],
      [{ type: 'queue.move', itemId: item.id, position: 1 }, 'invalid_position'],
      [{ type: 'queue.move', itemId: item.id }, 'invalid_frame'],
      [{ type: 'queue.clear', all: true }, 'invalid_frame'],
    ];
    for (const [frame, code] of cases) {
      expect(await ask(desk, frame), JSON.stringify(frame)).toMatchObject({ type: 'error', code });
    }
    expect((await restQueue(station.id)).queue.map((i) => i.trackName)).toEqual(['Only']);
    const restCases: [string, string, object | undefined, number, string][] = [
      ['POST', '/queue', { trackName: '' }, 400, 'invalid_body'],
      ['POST', `/queue/${item.id}/move`, { position: 5 }, 422, 'invalid_position'],
      ['POST', '/queue/nope/move', { position: 0 }, 404, 'queue_item_not_found'],
      ['DELETE', '/queue/nope', undefined, 404, 'queue_item_not_found'],
    ];
    for (const [method, path, json, status, code] of restCases) {
      const res = await api(`/api/stations/${station.id}${path}`, {
        method,
        token: owner.token,
        json,
      });
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as ErrorBody).error.code).toBe(code);
    }
    desk.close();
  });

  it('is bounded at 200 tracks: the 201st is queue_full', async () => {
    const { owner, station, desk } = await ownerDesk(false);
    // 199 tracks straight into the object's storage (200 frames would trip the socket's rate
    // limit), then a fresh instance reads them: the 200th fits, the 201st does not.
    await runInDurableObject(streamRoom(station.id), (_room, state) => {
      for (let i = 0; i < 199; i++) {
        const item = { id: `seed-${i}`, trackName: `T${i}`, artistName: null, trackId: null };
        state.storage.sql.exec(
          'INSERT INTO stream_queue (id, pos, item) VALUES (?, ?, ?)',
          item.id,
          i,
          JSON.stringify({ ...item, durationSeconds: null, addedBy: owner.id, addedAt: i }),
        );
      }
    });
    await evictDurableObject(streamRoom(station.id));
    expect(await ask(desk, { type: 'queue.add', trackName: 'T199' })).toMatchObject({
      type: 'ack',
      result: { position: 199 },
    });
    const last = await ask(desk, { type: 'queue.add', trackName: 'one too many' });
    expect(last).toMatchObject({ type: 'error', code: 'queue_full' });
    expect((await restQueue(station.id)).queue).toHaveLength(200);
    const rest = await api(`/api/stations/${station.id}/queue`, {
      method: 'POST',
      token: owner.token,
      json: { trackName: 'still too many' },
    });
    expect(rest.status).toBe(409);
    expect(((await rest.json()) as ErrorBody).error.code).toBe('queue_full');
    desk.close();
  });
});

describe('advancing', () => {
  it('makes the head now-playing in one stream.metadata event that listeners and the lobby get', async () => {
    const { owner, station, desk } = await ownerDesk();
    const lobby = await openLobby();
    const watcher = await listen(station.id);
    const first = await add(desk, 'First', { artistName: 'Ann', trackId: 'trk-9' });
    await add(desk, 'Second');
    const next = await ask<{ item: QueueItem; nowPlaying: NowPlaying; queue: number }>(desk, {
      type: 'queue.next',
    });
    expect(next).toMatchObject({
      type: 'ack',
      result: {
        item: { id: first.id },
        nowPlaying: { trackName: 'First', artistName: 'Ann', trackId: 'trk-9' },
        queue: 1,
      },
    });
    const event = await watcher.socket.next<StreamMetadataEvent>('stream.metadata');
    expect(event).toMatchObject({
      queueItemId: first.id,
      nowPlaying: {
        trackName: 'First',
        artistName: 'Ann',
        trackId: 'trk-9',
        showTitle: 'Morning Show',
      },
    });
    expect(event.changed).toEqual(['trackName', 'artistName', 'trackId']);
    expect((next as AckFrame).seq).toBe(event.seq);
    expect(follow(watcher.welcome, watcher.socket)).toMatchObject({
      queue: ['Second'],
      nowPlaying: { trackName: 'First' },
    });
    const inLobby = await lobby.socket.next<StationMetadataEvent>(
      (f) => f.type === 'station.metadata' && f.stationId === station.id,
    );
    expect(inLobby.nowPlaying.trackName).toBe('First');
    // A head without an artist clears the artist.
    const rest = await api(`/api/stations/${station.id}/queue/next`, {
      method: 'POST',
      token: owner.token,
    });
    expect(rest.status).toBe(200);
    expect(await rest.json()).toMatchObject({
      nowPlaying: { trackName: 'Second', artistName: null },
    });
    expect(await restQueue(station.id)).toMatchObject({
      queue: [],
      nowPlaying: { trackName: 'Second' },
    });
    expect(await ask(desk, { type: 'queue.next' })).toMatchObject({ code: 'queue_empty' });
    await closeAll([desk, lobby.socket, watcher.socket]);
  });

  it('needs a broadcast: not_live while offline, and the queue is untouched', async () => {
    const { station, desk } = await ownerDesk(false);
    await add(desk, 'Later');
    expect(await ask(desk, { type: 'queue.next' })).toMatchObject({ code: 'not_live' });
    expect((await restQueue(station.id)).queue).toHaveLength(1);
    desk.close();
  });
});

describe('durability', () => {
  it('survives eviction; a listener resuming across it replays exactly the changes it missed', async () => {
    const { station, desk } = await ownerDesk();
    const a = await add(desk, 'A');
    await add(desk, 'B');
    const listener = await listen(station.id);
    const { seq: since, epoch } = listener.welcome;
    listener.socket.close();
    await add(desk, 'C', { position: 0 });
    await ask(desk, { type: 'queue.remove', itemId: a.id });
    await evictDurableObject(streamRoom(station.id));
    expect((await restQueue(station.id)).queue.map((i) => i.trackName)).toEqual(['C', 'B']);
    const resumed = await listen(station.id, undefined, { since, epoch });
    expect(resumed.welcome.recovery).toMatchObject({ recovered: true, missed: 2 });
    await resumed.socket.next('queue.removed');
    const view = follow({ ...listener.welcome }, resumed.socket);
    expect(view.queue).toEqual(['C', 'B']);
    expect(resumed.welcome.snapshot.queue.map((i) => i.trackName)).toEqual(['C', 'B']);
    // The owner's socket also survived; advancing still works on the restored queue.
    const next = await ask<{ item: QueueItem }>(desk, { type: 'queue.next' });
    expect(next).toMatchObject({ type: 'ack', result: { item: { trackName: 'C' } } });
    await closeAll([desk, resumed.socket]);
  });
});
