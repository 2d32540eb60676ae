// The server API's calls for one user (docs/server-api.md): a notification and a balance reach
// every device on the user's channel, "disconnect" logs the user out everywhere; and platform
// presence fed by that channel (docs/presence.md): online while a device is connected, two tabs
// one user, offline at the last close and when the sweep closes a vanished device.
import { describe, expect, it } from 'vitest';
import type { PresenceStatuses } from '../../worker/protocol/presence';
import { shardOf, shardStub } from '../../worker/rooms/presence/kind';
import { userChannel } from '../../worker/rooms/user/kind';
import { api, connect, env, register, unique } from './helpers';
import { server } from './server-fixtures';
import { userRoom } from './user-fixtures';

async function onlineNow(id: string): Promise<boolean> {
  const statuses: PresenceStatuses = await shardStub(env, shardOf(env, id)).statuses([id]);
  return statuses[id]?.online === true;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('send to one user', () => {
  it('delivers a notification to every device, once per Idempotency-Key', async () => {
    const user = await register();
    const devices = await Promise.all([1, 2].map(() => connect('/ws/me', { token: user.token })));
    for (const d of devices) await d.next('welcome');
    const json = {
      kind: 'payment.received',
      title: 'You got paid',
      body: '12.50 EUR',
      data: { amount: '12.50' },
    };
    const headers = { 'idempotency-key': unique('pay') };
    const res = await server(`/users/${user.id}/notifications`, { json, headers });
    expect(res.status).toBe(201);
    const text = await res.text();
    for (const d of devices) {
      const frame = await d.next<{ notification: { title: string }; unread: number }>(
        'notification.new',
      );
      expect(frame.notification.title).toBe('You got paid');
      expect(frame.unread).toBe(1);
    }
    const again = await server(`/users/${user.id}/notifications`, { json, headers });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(text);
    const other = await server(`/users/${user.id}/notifications`, {
      json: { ...json, title: 'x' },
      headers,
    });
    expect(other.status).toBe(422);
    expect((await userChannel.room(env, user.id).unreadCount()).unread).toBe(1);
    for (const d of devices) d.close();
  });

  it('carries a balance; an older version is 409 stale_version', async () => {
    const user = await register();
    const device = await connect('/ws/me', { token: user.token });
    await device.next('welcome');
    const res = await server(`/users/${user.id}/balance`, {
      json: { amount: '10.00', currency: 'EUR', version: 2 },
    });
    expect(res.status).toBe(200);
    expect(
      (await device.next<{ balance: { amount: string } }>('balance.updated')).balance.amount,
    ).toBe('10.00');
    const stale = await server(`/users/${user.id}/balance`, {
      json: { amount: '9.00', currency: 'EUR', version: 1 },
    });
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('stale_version');
    device.close();
  });

  it('refuses unknown users (404 user_not_found), bad bodies (400) and a wrong key (401)', async () => {
    const ghost = unique('ghost');
    const res = await server(`/users/${ghost}/notifications`, {
      json: { kind: 'x.y', title: 't' },
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('user_not_found');
    const user = await register();
    expect(
      (await server(`/users/${user.id}/notifications`, { json: { kind: 'Bad Kind', title: 't' } }))
        .status,
    ).toBe(400);
    expect(
      (
        await server(`/users/${user.id}/balance`, {
          json: { amount: 'lots', currency: 'EUR', version: 1 },
        })
      ).status,
    ).toBe(400);
    for (const [path, json] of [
      [`/users/${user.id}/notifications`, { kind: 'x.y', title: 't' }],
      [`/users/${user.id}/balance`, { amount: '1', currency: 'EUR', version: 1 }],
      [`/users/${user.id}/disconnect`, {}],
    ] as const) {
      const wrong = await server(path, { json, key: 'k'.repeat(40) });
      expect(wrong.status).toBe(401);
    }
    expect((await userChannel.room(env, user.id).unreadCount()).unread).toBe(0);
    expect((await userChannel.room(env, user.id).balance()).balance).toBeNull();
  });
});

describe('publish to a user channel', () => {
  it('an app event reaches every device of the user, sequenced; their own names are refused', async () => {
    const user = await register();
    const device = await connect('/ws/me', { token: user.token });
    const welcome = await device.next<{ seq: number }>('welcome');
    const res = await server('/publish', {
      json: { channel: `user:${user.id}`, type: 'order.shipped', data: { orderId: 'o-9' } },
    });
    expect(res.status).toBe(201);
    expect(await device.next('order.shipped')).toEqual({
      type: 'order.shipped',
      data: { orderId: 'o-9' },
      seq: welcome.seq + 1,
    });
    for (const type of ['notification.new', 'balance.updated', 'session.revoked']) {
      const refused = await server('/publish', {
        json: { channel: `user:${user.id}`, type, data: {} },
      });
      expect(refused.status, type).toBe(422);
    }
    const ghost = await server('/publish', {
      json: { channel: `user:${unique('ghost')}`, type: 'a.b' },
    });
    expect(ghost.status).toBe(404);
    expect(((await ghost.json()) as { error: { code: string } }).error.code).toBe(
      'unknown_channel',
    );
    device.close();
  });
});

describe('disconnect a user', () => {
  it('logs the user out everywhere: session.revoked, 4401, the old token refused', async () => {
    const user = await register();
    const device = await connect('/ws/me', { token: user.token });
    await device.next('welcome');
    const res = await server(`/users/${user.id}/disconnect`, { json: { reason: 'fraud check' } });
    expect(res.status).toBe(200);
    expect(await device.next<{ reason: string }>('session.revoked')).toMatchObject({
      reason: 'fraud check',
    });
    expect((await device.closed()).code).toBe(4401);
    expect((await api('/api/me', { token: user.token })).status).toBe(401);
  });
});

describe('presence from the user channel', () => {
  it('online with the first device, still online with two tabs, offline after the last', async () => {
    const user = await register();
    const watcher = await register();
    const relay = await connect('/ws/broadcast', { token: watcher.token, query: { relay: 0 } });
    await relay.next('welcome');
    relay.send({ type: 'presence.watch', id: 'w', ids: [user.id] });
    await relay.next('ack');
    const a = await connect('/ws/me', { token: user.token });
    await a.next('welcome');
    await relay.next((f) => f.type === 'user.online' && f.userId === user.id);
    const b = await connect('/ws/me', { token: user.token });
    await b.next('welcome');
    a.close();
    await until('a closed', async () => (await userRoom(user.id).stats()).connections === 1);
    expect(await onlineNow(user.id)).toBe(true);
    b.close();
    await relay.next((f) => f.type === 'user.offline' && f.userId === user.id);
    expect(await onlineNow(user.id)).toBe(false);
    const frames = relay.received.filter((f) => f.userId === user.id).map((f) => f.type);
    expect(frames).toEqual(['user.online', 'user.offline']);
    relay.close();
  });

  it('a device that vanishes goes offline through the heartbeat sweep', async () => {
    const user = await register();
    const device = await connect('/ws/me', { token: user.token });
    await device.next('welcome');
    await until('online', () => onlineNow(user.id));
    // The sweep, run as if the timeout had passed without a heartbeat.
    const swept = await userRoom(user.id).sweep(Date.now() + 10 * 60 * 1000);
    expect(swept.closed).toBe(1);
    await until('offline', async () => !(await onlineNow(user.id)));
  });

  it('log out everywhere makes the user offline', async () => {
    const user = await register();
    const device = await connect('/ws/me', { token: user.token });
    await device.next('welcome');
    await until('online', () => onlineNow(user.id));
    await server(`/users/${user.id}/disconnect`, { json: {} });
    await until('offline', async () => !(await onlineNow(user.id)));
  });
});
