// The platform broadcast (docs/protocol.md, "Broadcast"): announcements and market values from the
// root through the relays to every socket, in welcomes, withdrawn and expired; the relay caps;
// admin REST and its bad input.
import { describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import type { Announcement, BroadcastSnapshot, MarketValue } from '../../worker/protocol/broadcast';
import { broadcast, broadcastRoot } from '../../worker/rooms/broadcast/kind';
import { FrameQueue } from '../support/frames';
import { api, connect, env, register, unique, upgrade } from './helpers';
import { server } from './server-fixtures';

const admin = await register('admin');

async function open(relay?: number, token?: string) {
  const socket = await connect('/ws/broadcast', {
    ...(token ? { token } : {}),
    ...(relay === undefined ? {} : { query: { relay } }),
  });
  const welcome = await socket.next<{
    snapshot: BroadcastSnapshot;
    seq: number;
    epoch: string;
    kind: string;
    channel: string;
  }>('welcome');
  return { socket, welcome };
}

function post(json: unknown, headers: Record<string, string> = {}, token = admin.token) {
  return api('/api/admin/announcements', { method: 'POST', token, json, headers });
}

async function setMarket(key: string, value: unknown, version: number) {
  return api('/api/admin/market', {
    method: 'POST',
    token: admin.token,
    json: { key, value, version },
  });
}

async function withdrawAll() {
  const list = (await (await api('/api/announcements')).json()) as {
    announcements: Announcement[];
  };
  for (const a of list.announcements) {
    await api(`/api/admin/announcements/${a.id}`, { method: 'DELETE', token: admin.token });
  }
}

/**
 * The newest value of `key` a socket has: from its welcome, or from the `market.values` frame that
 * brings it (a value younger than one coalescing window reaches a new socket in the next frame).
 */
async function marketValue(
  opened: { socket: FrameQueue; welcome: { snapshot: BroadcastSnapshot } },
  key: string,
  version: number,
): Promise<MarketValue> {
  const inWelcome = opened.welcome.snapshot.market.find((m) => m.key === key);
  if (inWelcome && inWelcome.version >= version) return inWelcome;
  const frame = await opened.socket.next<{ values: MarketValue[] }>(
    (f) =>
      f.type === 'market.values' &&
      (f.values as MarketValue[]).some((m) => m.key === key && m.version >= version),
  );
  return frame.values.find((m) => m.key === key) as MarketValue;
}

function closeAll(sockets: FrameQueue[]) {
  for (const s of sockets) s.close();
}

describe('announcements', () => {
  it('reach every socket on every relay, are in the welcome while active, and go when withdrawn', async () => {
    await withdrawAll();
    const sockets = await Promise.all([0, 1, 2, 0, 1, 2].map((r) => open(r)));
    expect(sockets.map((s) => s.welcome.snapshot.relay)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(sockets[0]?.welcome.kind).toBe('broadcast');
    expect(sockets[0]?.welcome.channel).toBe('broadcast:0');
    const res = await post({ message: 'Maintenance at 22:00', level: 'warning' });
    expect(res.status).toBe(201);
    const { announcement, seq } = (await res.json()) as { announcement: Announcement; seq: number };
    expect(announcement).toMatchObject({
      message: 'Maintenance at 22:00',
      level: 'warning',
      expiresAt: null,
    });
    expect(seq).toBeGreaterThan(0);
    for (const { socket } of sockets) {
      const frame = await socket.next<{ announcement: Announcement; seq: number }>(
        'announcement.posted',
      );
      expect(frame.announcement).toEqual(announcement);
      expect(typeof frame.seq).toBe('number');
    }
    const late = await open();
    expect(late.welcome.snapshot.announcements).toEqual([announcement]);
    expect((await (await api('/api/announcements')).json()) as unknown).toEqual({
      announcements: [announcement],
    });

    const gone = await api(`/api/admin/announcements/${announcement.id}`, {
      method: 'DELETE',
      token: admin.token,
    });
    expect(gone.status).toBe(200);
    for (const { socket } of [...sockets, late]) {
      const frame = await socket.next<{ announcementId: string; reason: string }>(
        'announcement.withdrawn',
      );
      expect(frame).toMatchObject({ announcementId: announcement.id, reason: 'withdrawn' });
      expect(socket.all('announcement.posted').length).toBeLessThanOrEqual(1);
    }
    const after = await open();
    expect(after.welcome.snapshot.announcements).toEqual([]);
    const again = await api(`/api/admin/announcements/${announcement.id}`, {
      method: 'DELETE',
      token: admin.token,
    });
    expect(again.status).toBe(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe(
      'announcement_not_found',
    );
    closeAll([...sockets.map((s) => s.socket), late.socket, after.socket]);
  });

  it('expire by themselves: clients see them go and later welcomes leave them out', async () => {
    await withdrawAll();
    const { socket } = await open(1);
    const res = await server('/announcements', {
      json: { message: 'brief', level: 'info', expiresInSeconds: 1 },
    });
    expect(res.status).toBe(201);
    const { announcement } = (await res.json()) as { announcement: Announcement };
    expect(announcement.expiresAt).toBe(announcement.createdAt + 1000);
    await socket.next('announcement.posted');
    const frame = await socket.next<{ announcementId: string; reason: string }>(
      'announcement.withdrawn',
      8000,
    );
    expect(frame).toMatchObject({ announcementId: announcement.id, reason: 'expired' });
    const later = await open(1);
    expect(later.welcome.snapshot.announcements).toEqual([]);
    closeAll([socket, later.socket]);
  });

  it('resume on the same relay replays missed announcements; another relay starts from the snapshot', async () => {
    await withdrawAll();
    const first = await open(2);
    first.socket.close();
    const res = await post({ message: 'while you were away' });
    const { announcement } = (await res.json()) as { announcement: Announcement };
    const query = { relay: 2, since: first.welcome.seq, epoch: first.welcome.epoch };
    const back = await connect('/ws/broadcast', { query });
    const w = await back.next<{
      recovery: { recovered: boolean; missed: number };
      snapshot: BroadcastSnapshot;
    }>('welcome');
    expect(w.recovery).toMatchObject({ recovered: true, missed: 1 });
    expect(
      (await back.next<{ announcement: Announcement }>('announcement.posted')).announcement.id,
    ).toBe(announcement.id);
    const elsewhere = await connect('/ws/broadcast', { query: { ...query, relay: 0 } });
    const w2 = await elsewhere.next<{
      recovery: { recovered: boolean };
      snapshot: BroadcastSnapshot;
    }>('welcome');
    expect(w2.recovery.recovered).toBe(false);
    expect(w2.snapshot.announcements.map((a) => a.id)).toContain(announcement.id);
    closeAll([back, elsewhere]);
  });

  it('only admins post over REST; bad bodies are 400 and change nothing', async () => {
    await withdrawAll();
    const user = await register();
    expect((await post({ message: 'x' }, {}, user.token)).status).toBe(403);
    expect(
      (await api('/api/admin/announcements', { method: 'POST', json: { message: 'x' } })).status,
    ).toBe(401);
    for (const json of [
      {},
      { message: '' },
      { message: 'x', level: 'panic' },
      { message: 'x', expiresInSeconds: 0 },
      { message: 'x', expiresInSeconds: 1.5 },
      { message: 'x'.repeat(1001) },
      { message: 'x', extra: true },
    ]) {
      const res = await post(json);
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
    }
    expect(await broadcastRoot.room(env).announcements()).toEqual([]);
  });

  it('an Idempotency-Key posts once and replays the first answer', async () => {
    await withdrawAll();
    const headers = { 'idempotency-key': unique('ann') };
    const first = await post({ message: 'once' }, headers);
    const text = await first.text();
    const again = await post({ message: 'once' }, headers);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(text);
    expect((await post({ message: 'twice' }, headers)).status).toBe(422);
    expect((await broadcastRoot.room(env).announcements()).length).toBe(1);
  });

  it('at most 20 are active at once (409 too_many_announcements)', async () => {
    await withdrawAll();
    for (let i = 0; i < 20; i++) expect((await post({ message: `n${i}` })).status).toBe(201);
    const res = await post({ message: 'one too many' });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'too_many_announcements',
    );
    await withdrawAll();
  });
});

describe('market values', () => {
  it('reach every relay, newest per key in the welcome, never older after newer', async () => {
    const key = unique('btc');
    const sockets = await Promise.all([0, 1, 2].map((r) => open(r)));
    const accepted: number[] = [];
    for (let v = 1; v <= 15; v++) {
      const res = await setMarket(key, { price: 100 + v }, v * 10);
      expect(res.status).toBe(200);
      accepted.push(v * 10);
    }
    for (const { socket } of sockets) {
      await socket.next(
        (f) =>
          f.type === 'market.values' &&
          (f.values as MarketValue[]).some((m) => m.key === key && m.version === 150),
        5000,
      );
      const versions = socket
        .all<{ values: MarketValue[] }>('market.values')
        .flatMap((f) => f.values.filter((m) => m.key === key).map((m) => m.version));
      expect(versions.length).toBeGreaterThan(0);
      expect(versions.length).toBeLessThanOrEqual(accepted.length);
      for (let i = 1; i < versions.length; i++)
        expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);
      expect(versions.at(-1)).toBe(150);
    }
    const late = await open(2);
    expect(await marketValue(late, key, 150)).toMatchObject({
      key,
      value: { price: 115 },
      version: 150,
    });
    closeAll([...sockets.map((s) => s.socket), late.socket]);
  });

  it('refuses a value older than (or as old as) the current one with 409 stale_market_value', async () => {
    const key = unique('eth');
    expect((await setMarket(key, 1, 5)).status).toBe(200);
    for (const version of [5, 4, 0]) {
      const res = await setMarket(key, 2, version);
      expect(res.status).toBe(409);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'stale_market_value',
      );
    }
    const stale = await server('/market', { json: { key, value: 3, version: 1 } });
    expect(stale.status).toBe(409);
    const opened = await open(0);
    expect(await marketValue(opened, key, 5)).toMatchObject({ value: 1, version: 5 });
    opened.socket.close();
  });

  it('a burst reaching a relay at once goes out as one frame with the newest value per key', async () => {
    // A relay of its own (outside BROADCAST_RELAYS), since the test moves its root position.
    const request = new Request('https://wavecast.test/ws/broadcast', {
      headers: { upgrade: 'websocket' },
    });
    const res = await broadcast.stub(env, '77').fetch(forwardToChannel(request, null));
    res.webSocket?.accept();
    const socket = new FrameQueue(res.webSocket as WebSocket);
    await socket.next('welcome');
    const keys = [unique('burst-a'), unique('burst-b')];
    const events = keys.flatMap((key, k) =>
      Array.from({ length: 10 }, (_, v) => ({
        type: 'market.updated' as const,
        seq: 0,
        value: { key, value: v, version: v + 1, updatedAt: Date.now() },
      })).map((e, i) => ({ ...e, seq: k * 10 + i })),
    );
    // Straight to the relay, as one delivery from the root (white-box: the root's own order).
    const relay = broadcast.stub(env, '77');
    const state = await broadcast.room(env, '77').relayState();
    const numbered = events.map((e, i) => ({ ...e, seq: state.rootSeq + 1 + i }));
    await relay.deliver(numbered, state.rootSeq + numbered.length);
    const frame = await socket.next<{ values: MarketValue[] }>(
      (f) =>
        f.type === 'market.values' && (f.values as MarketValue[]).some((m) => keys.includes(m.key)),
    );
    expect(frame.values.filter((m) => keys.includes(m.key)).map((m) => [m.key, m.version])).toEqual(
      [
        [keys[0], 10],
        [keys[1], 10],
      ],
    );
    await new Promise((r) => setTimeout(r, 400));
    const all = socket
      .all<{ values: MarketValue[] }>('market.values')
      .filter((f) => f.values.some((m) => keys.includes(m.key)));
    expect(all).toHaveLength(1);
    socket.close();
  });

  it('refuses bad keys, values and versions with 400', async () => {
    for (const json of [
      { key: 'bad key', value: 1, version: 1 },
      { key: 'k', version: 1 },
      { key: 'k', value: 'x'.repeat(2000), version: 1 },
      { key: 'k', value: 1, version: -1 },
      { key: 'k', value: 1, version: 1.5 },
      { key: 'k', value: 1 },
    ]) {
      const res = await api('/api/admin/market', { method: 'POST', token: admin.token, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
    }
  });
});

describe('relays', () => {
  it('hold at most BROADCAST_RELAY_CAPACITY sockets; the worker passes the rest to the next relay', async () => {
    const sockets: { socket: FrameQueue; welcome: { snapshot: BroadcastSnapshot } }[] = [];
    // Other tests may have left sockets on relay 0; fill it from wherever it stands.
    const before = (await broadcast.room(env, '0').relayState()).connections;
    for (let i = before; i < 34; i++) sockets.push(await open(0));
    const relays = sockets.map((s) => s.welcome.snapshot.relay);
    expect(relays.filter((r) => r === 0).length).toBe(30 - before);
    expect(relays.filter((r) => r === 1).length).toBe(4);
    expect((await broadcast.room(env, '0').relayState()).connections).toBe(30);
    closeAll(sockets.map((s) => s.socket));
  });

  it('anonymous sockets read but may not watch; unknown frames get an error', async () => {
    const { socket } = await open(1);
    socket.send({ type: 'presence.watch', id: 'w1', ids: ['a'] });
    expect(await socket.next('error')).toMatchObject({ id: 'w1', code: 'auth_required' });
    socket.send({ type: 'announcement.post', id: 'w2', message: 'hi' });
    expect(await socket.next('error')).toMatchObject({ id: 'w2', code: 'unknown_type' });
    socket.close();
  });

  it('a relay attaches to the root with its first socket and detaches with its last', async () => {
    const { socket } = await open(2);
    expect(await broadcastRoot.room(env).relays()).toContain('broadcast:2');
    socket.close();
    const deadline = Date.now() + 5000;
    while ((await broadcastRoot.room(env).relays()).includes('broadcast:2')) {
      if (Date.now() > deadline) throw new Error('relay 2 never detached');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Detached relays still catch up: a new socket finds the newest values.
    const key = unique('sol');
    await setMarket(key, 'x', 1);
    const again = await open(2);
    expect(await marketValue(again, key, 1)).toMatchObject({ value: 'x', version: 1 });
    again.socket.close();
  });

  it('the root takes no sockets', async () => {
    const res = await broadcastRoot.stub(env).fetch(
      new Request('https://x/ws', {
        headers: { upgrade: 'websocket', 'x-wavecast-address': 'a' },
      }),
    );
    expect(res.status).toBe(403);
    expect(await upgrade('/ws/broadcast-root')).toHaveProperty('status', 404);
  });
});
