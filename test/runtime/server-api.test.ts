// The server publish API (docs/server-api.md): the server key at the door, app events published
// to any channel (sequenced, stored, resumable), reserved names, sizes, unknown channels,
// Idempotency-Key, presence and history reads.
import { listDurableObjectIds } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { MAX_APP_EVENT_BYTES } from '../../worker/channel/app-events';
import { createEvent } from './event-fixtures';
import { api, connect, env, register, unique } from './helpers';
import { SERVER_KEY, server } from './server-fixtures';

interface ErrorBody {
  error: { code: string; message: string };
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as ErrorBody).error.code;
}

describe('the server key', () => {
  const calls: [string, { method?: string; json?: unknown }][] = [
    ['/publish', { json: { channel: 'comments:k', type: 'order.shipped', data: {} } }],
    ['/channels/comments:k/presence', {}],
    ['/channels/comments:k/history', {}],
    ['/announcements', {}],
    ['/announcements', { json: { message: 'hello' } }],
    ['/announcements/some-id', { method: 'DELETE' }],
    ['/market', { json: { key: 'btc', value: 1, version: 1 } }],
    ['/presence?ids=a', {}],
  ];

  it('refuses every call with a missing, malformed or wrong key with 401 invalid_server_key', async () => {
    const user = await register();
    for (const [path, init] of calls) {
      for (const key of [null, 'nope', `${SERVER_KEY}x`, SERVER_KEY.slice(0, -1), user.token]) {
        const res = await server(path, { ...init, key });
        expect(res.status, `${path} with ${key}`).toBe(401);
        expect(await errorCode(res)).toBe('invalid_server_key');
      }
    }
    const basic = await api('/server/v1/presence?ids=a', {
      headers: { authorization: `Basic ${btoa(`x:${SERVER_KEY}`)}` },
    });
    expect(basic.status).toBe(401);
  });

  it('a refused call reaches no object and changes nothing', async () => {
    const item = unique('untouched');
    const channel = `comments:${item}`;
    const target = env.COMMENT_ROOM.idFromName(channel);
    const res = await server('/publish', {
      key: 'wrong-key-0123456789abcdef0123456789',
      json: { channel, type: 'order.shipped', data: { n: 1 } },
    });
    expect(res.status).toBe(401);
    const ids = await listDurableObjectIds(env.COMMENT_ROOM);
    expect(ids.some((id) => id.equals(target))).toBe(false);
    const market = await server('/market', {
      key: 'x'.repeat(40),
      json: { key: 'k1', value: 1, version: 1 },
    });
    expect(market.status).toBe(401);
    const mine = await server('/market', { json: { key: unique('k'), value: 1, version: 1 } });
    expect(mine.status).toBe(200);
  });
});

describe('publish an app event', () => {
  it('is sequenced, sent to every socket, stored in history and replayed on resume', async () => {
    const item = unique('item');
    const channel = `comments:${item}`;
    const reader = await connect(`/ws/comments/${item}`);
    const welcome = await reader.next<{ seq: number; epoch: string }>('welcome');
    const res = await server('/publish', {
      json: { channel, type: 'order.shipped', data: { orderId: 'o-1', items: [1, 2] } },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { seq: number; channel: string; type: string };
    expect(body).toEqual({ channel, type: 'order.shipped', seq: welcome.seq + 1 });
    const frame = await reader.next('order.shipped');
    expect(frame).toEqual({
      type: 'order.shipped',
      data: { orderId: 'o-1', items: [1, 2] },
      seq: body.seq,
    });

    const history = await server(`/channels/${channel}/history?limit=10`);
    expect(history.status).toBe(200);
    const h = (await history.json()) as {
      seq: number;
      epoch: string;
      events: { seq: number; type: string }[];
    };
    expect(h.seq).toBe(body.seq);
    expect(h.events.at(-1)).toEqual(frame);

    const resumed = await connect(`/ws/comments/${item}`, {
      query: { since: welcome.seq, epoch: welcome.epoch },
    });
    const w2 = await resumed.next<{ recovery: { recovered: boolean; missed: number } }>('welcome');
    expect(w2.recovery).toEqual({ requested: true, recovered: true, missed: 1 });
    expect(await resumed.next('order.shipped')).toEqual(frame);
    reader.close();
    resumed.close();
  });

  it('works for every kind of channel, and data may be omitted (null)', async () => {
    const organiser = await register('organiser');
    const ev = await createEvent(organiser);
    for (const channel of [`event:${ev.id}`, 'lobby', `comments:${unique('c')}`]) {
      const res = await server('/publish', { json: { channel, type: 'app.note' } });
      expect(res.status, channel).toBe(201);
    }
    const h = await server(`/channels/event:${ev.id}/history`);
    const events = ((await h.json()) as { events: { type: string; data: unknown }[] }).events;
    expect(events.at(-1)).toMatchObject({ type: 'app.note', data: null });
  });

  it('refuses unknown channels (no such kind, no such event or station) with 404 unknown_channel', async () => {
    for (const channel of [
      'nope:1',
      'comments:',
      'comments:bad id',
      `event:${unique('missing')}`,
      `station:${unique('s')}`,
      'broadcast:0',
    ]) {
      const res = await server('/publish', { json: { channel, type: 'app.note', data: 1 } });
      expect(res.status, channel).toBe(404);
      expect(await errorCode(res)).toBe('unknown_channel');
    }
    const res = await server('/channels/nope:1/presence');
    expect(res.status).toBe(404);
    const hist = await server(`/channels/event:${unique('missing')}/history`);
    expect(await errorCode(hist)).toBe('unknown_channel');
  });

  it('refuses names the channel owns (422 event_type_reserved) and malformed names (400)', async () => {
    const organiser = await register('organiser');
    const ev = await createEvent(organiser);
    const cases: [string, string, number, string][] = [
      [`event:${ev.id}`, 'booking.created', 422, 'event_type_reserved'],
      [`event:${ev.id}`, 'seats.updated', 422, 'event_type_reserved'],
      [`comments:${unique('c')}`, 'comment.created', 422, 'event_type_reserved'],
      [`comments:${unique('c')}`, 'presence.joined', 422, 'event_type_reserved'],
      [`comments:${unique('c')}`, 'welcome', 422, 'event_type_reserved'],
      ['lobby', 'station.live', 422, 'event_type_reserved'],
      [`comments:${unique('c')}`, 'Order Shipped', 400, 'invalid_event_type'],
      [`comments:${unique('c')}`, 'a.b.c.d.e', 400, 'invalid_event_type'],
    ];
    for (const [channel, type, status, code] of cases) {
      const res = await server('/publish', { json: { channel, type, data: {} } });
      expect(res.status, `${channel} ${type}`).toBe(status);
      expect(await errorCode(res)).toBe(code);
    }
    const h = await server(`/channels/event:${ev.id}/history`);
    const events = ((await h.json()) as { events: { type: string }[] }).events;
    expect(events.filter((e) => e.type === 'booking.created')).toEqual([]);
  });

  it('refuses data over the size limit with 413 payload_too_large', async () => {
    const channel = `comments:${unique('big')}`;
    const big = 'x'.repeat(MAX_APP_EVENT_BYTES);
    const res = await server('/publish', { json: { channel, type: 'app.big', data: big } });
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe('payload_too_large');
    const huge = await server('/publish', {
      json: { channel, type: 'app.big', data: big.repeat(4) },
    });
    expect(huge.status).toBe(413);
    const fits = await server('/publish', {
      json: { channel, type: 'app.big', data: 'x'.repeat(MAX_APP_EVENT_BYTES - 2) },
    });
    expect(fits.status).toBe(201);
    const h = (await (await server(`/channels/${channel}/history`)).json()) as { seq: number };
    expect(h.seq).toBe(1);
  });

  it('refuses malformed bodies with 400 naming the field', async () => {
    for (const json of [
      {},
      { channel: 'lobby' },
      { channel: 1, type: 'a' },
      { channel: 'lobby', type: 'a', extra: 1 },
    ]) {
      const res = await server('/publish', { json });
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('invalid_body');
    }
  });

  it('answers a repeated Idempotency-Key with the first answer and publishes once', async () => {
    const channel = `comments:${unique('idem')}`;
    const json = { channel, type: 'payment.settled', data: { amount: 5 } };
    const headers = { 'idempotency-key': 'pay-1' };
    const first = await server('/publish', { json, headers });
    const firstText = await first.text();
    expect(first.status).toBe(201);
    const again = await server('/publish', { json, headers });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(firstText);
    const other = await server('/publish', { json: { ...json, data: { amount: 6 } }, headers });
    expect(other.status).toBe(422);
    expect(await errorCode(other)).toBe('idempotency_key_reused');
    const bad = await server('/publish', { json, headers: { 'idempotency-key': ' ' } });
    expect(bad.status).toBe(400);
    const h = (await (await server(`/channels/${channel}/history`)).json()) as { seq: number };
    expect(h.seq).toBe(1);
  });

  it("keeps the server's keys apart from a user's keys on the same channel", async () => {
    const user = await register();
    const item = unique('apart');
    const byUser = await api(`/api/items/${item}/comments`, {
      method: 'POST',
      token: user.token,
      json: { body: 'hi' },
      headers: { 'idempotency-key': 'same-key' },
    });
    expect(byUser.status).toBe(201);
    const byServer = await server('/publish', {
      json: { channel: `comments:${item}`, type: 'app.note', data: 1 },
      headers: { 'idempotency-key': 'same-key' },
    });
    expect(byServer.status).toBe(201);
    expect(((await byServer.json()) as { seq: number }).seq).toBe(2);
  });
});

describe('reading a channel', () => {
  it('reads presence and counts, members for member kinds', async () => {
    const item = unique('room');
    const ann = await register('listener', 'Ann');
    const a = await connect(`/ws/comments/${item}`, { token: ann.token });
    const b = await connect(`/ws/comments/${item}`, { token: ann.token });
    const anon = await connect(`/ws/comments/${item}`);
    for (const s of [a, b, anon]) await s.next('welcome');
    const res = await server(`/channels/comments:${item}/presence`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      channel: string;
      kind: string;
      presence: {
        users: number;
        connections: number;
        members: { user: { id: string }; connections: number }[];
      };
    };
    expect(body.channel).toBe(`comments:${item}`);
    expect(body.kind).toBe('comments');
    expect(body.presence.users).toBe(1);
    expect(body.presence.connections).toBe(3);
    expect(body.presence.members.map((m) => [m.user.id, m.connections])).toEqual([[ann.id, 2]]);
    for (const s of [a, b, anon]) s.close();
  });

  it('pages history newest last with limit and before', async () => {
    const channel = `comments:${unique('hist')}`;
    for (let i = 1; i <= 5; i++) {
      await server('/publish', { json: { channel, type: 'app.tick', data: i } });
    }
    const page = (await (await server(`/channels/${channel}/history?limit=2`)).json()) as {
      events: { seq: number; data: number }[];
    };
    expect(page.events.map((e) => e.seq)).toEqual([4, 5]);
    const older = (await (
      await server(`/channels/${channel}/history?limit=2&before=4`)
    ).json()) as {
      events: { seq: number }[];
    };
    expect(older.events.map((e) => e.seq)).toEqual([2, 3]);
    const bad = await server(`/channels/${channel}/history?limit=0`);
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('invalid_query');
  });
});
