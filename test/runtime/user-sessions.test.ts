// Balance and log out everywhere on the user channel (issue 8): `balance.updated` to every device,
// the latest in the welcome, an older version never overwriting a newer one, bad balances refused;
// logout-all (the user's, an admin's): `session.revoked` + 4401 on the user channel, the user's
// sockets on other channels closed, tokens issued before refused at every door, new ones fine.
import { describe, expect, it } from 'vitest';
import { quotaOf } from '../../worker/channel/quota';
import type { ErrorFrame } from '../../worker/protocol/core';
import type {
  BalanceUpdatedEvent,
  SessionRevokedFrame,
  UserWelcome,
} from '../../worker/protocol/user';
import { userChannel } from '../../worker/rooms/user/kind';
import { createEvent } from './event-fixtures';
import { api, connect, env, register, type TestUser, unique, upgrade } from './helpers';
import { createStation } from './station-fixtures';
import { notify } from './user-fixtures';

let admin: TestUser | null = null;
async function anAdmin(): Promise<TestUser> {
  admin ??= await register('admin');
  return admin;
}

function setBalance(userId: string, json: unknown, token?: string) {
  return api(`/api/admin/users/${userId}/balance`, { method: 'POST', token, json });
}

async function login(user: TestUser): Promise<string> {
  const res = await api('/api/auth/login', {
    method: 'POST',
    json: { email: user.email, password: 'correct horse battery' },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

describe('balance', () => {
  it('sends balance.updated to every device and puts the latest in the welcome', async () => {
    const [user, boss] = [await register(), await anAdmin()];
    const a = await connect('/ws/me', { token: user.token });
    const b = await connect('/ws/me', { token: user.token });
    await a.next('welcome');
    await b.next('welcome');
    const res = await setBalance(
      user.id,
      { amount: '12.50', currency: 'EUR', version: 3 },
      boss.token,
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      applied: true,
      balance: { amount: '12.50', currency: 'EUR', version: 3 },
    });
    for (const s of [a, b]) {
      const frame = await s.next<BalanceUpdatedEvent>('balance.updated');
      expect(frame.balance).toMatchObject({ amount: '12.50', currency: 'EUR', version: 3 });
      expect(frame.seq).toBe(1);
    }
    const later = await connect('/ws/me', { token: user.token });
    expect((await later.next<UserWelcome>('welcome')).snapshot.balance).toMatchObject({
      amount: '12.50',
      version: 3,
    });
    const mine = await api('/api/me/balance', { token: user.token });
    expect(await mine.json()).toMatchObject({ balance: { amount: '12.50', version: 3 } });
    for (const s of [a, b, later]) s.close();
  });

  it('never lets an older version overwrite a newer one; a same-version retry is a no-op', async () => {
    const [user, boss] = [await register(), await anAdmin()];
    const socket = await connect('/ws/me', { token: user.token });
    await socket.next('welcome');
    expect(
      (await setBalance(user.id, { amount: 100, currency: 'USDC', version: 10 }, boss.token))
        .status,
    ).toBe(200);
    const stale = await setBalance(
      user.id,
      { amount: 5, currency: 'USDC', version: 9 },
      boss.token,
    );
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('stale_version');
    const sameOther = await setBalance(
      user.id,
      { amount: 6, currency: 'USDC', version: 10 },
      boss.token,
    );
    expect(sameOther.status).toBe(409);
    const retry = await setBalance(
      user.id,
      { amount: 100, currency: 'USDC', version: 10 },
      boss.token,
    );
    expect(await retry.json()).toMatchObject({
      applied: false,
      balance: { amount: '100', version: 10 },
    });
    expect(
      (await setBalance(user.id, { amount: '101.5', currency: 'USDC', version: 11 }, boss.token))
        .status,
    ).toBe(200);
    expect((await socket.next<BalanceUpdatedEvent>('balance.updated')).balance.version).toBe(10);
    expect((await socket.next<BalanceUpdatedEvent>('balance.updated')).balance.version).toBe(11);
    expect(socket.all('balance.updated')).toHaveLength(2);
    const now = await api('/api/me/balance', { token: user.token });
    expect(await now.json()).toMatchObject({ balance: { amount: '101.5', version: 11 } });
    socket.close();
  });

  it('refuses bad balances with a stable code and keeps the last good one', async () => {
    const [user, boss] = [await register(), await anAdmin()];
    await setBalance(user.id, { amount: '1', currency: 'EUR', version: 1 }, boss.token);
    for (const body of [
      { amount: 'ten', currency: 'EUR', version: 2 },
      { amount: '1e5', currency: 'EUR', version: 2 },
      { amount: '1.2.3', currency: 'EUR', version: 2 },
      { amount: null, currency: 'EUR', version: 2 },
      { amount: 1, currency: '', version: 2 },
      { amount: 1, currency: 'a b', version: 2 },
      { amount: 1, currency: 'EUR', version: -1 },
      { amount: 1, currency: 'EUR', version: 1.5 },
      { amount: 1, currency: 'EUR' },
      { amount: 1, currency: 'EUR', version: 2, extra: 1 },
    ]) {
      const res = await setBalance(user.id, body, boss.token);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
    }
    // Infinity cannot travel in JSON; the typed method refuses it too.
    await expect(
      userChannel
        .room(env, user.id)
        .setBalance({ amount: Number.POSITIVE_INFINITY, currency: 'EUR', version: 5 }),
    ).rejects.toMatchObject({ code: 'invalid_body' });
    const mine = await api('/api/me/balance', { token: user.token });
    expect(await mine.json()).toMatchObject({ balance: { amount: '1', version: 1 } });
  });

  it('is an admin-only route, for a user that exists', async () => {
    const [user, other, boss] = [await register(), await register(), await anAdmin()];
    const body = { amount: '1', currency: 'EUR', version: 1 };
    expect((await setBalance(user.id, body)).status).toBe(401);
    expect((await setBalance(user.id, body, other.token)).status).toBe(403);
    const missing = await setBalance('no-such-user', body, boss.token);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe(
      'user_not_found',
    );
  });
});

describe('log out everywhere', () => {
  it('sends session.revoked and closes every device with 4401; older tokens get 401 everywhere', async () => {
    const user = await register();
    const devices = [
      await connect('/ws/me', { token: user.token }),
      await connect('/ws/me', { token: user.token }),
    ];
    for (const d of devices) await d.next('welcome');
    // The same user on other channels: a comment room and a station.
    const station = await createStation(await register('station_owner'));
    const elsewhere = [
      await connect(`/ws/comments/${unique('item')}`, { token: user.token }),
      await connect(`/ws/stations/${station.id}`, { token: user.token }),
    ];
    for (const s of elsewhere) await s.next('welcome');
    const res = await api('/api/me/logout-all', { method: 'POST', token: user.token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { revokedAt: number; closed: number };
    expect(body.closed).toBe(4);
    for (const d of devices) {
      const frame = await d.next<SessionRevokedFrame>('session.revoked');
      expect(frame.revokedAt).toBe(body.revokedAt);
      expect((await d.closed()).code).toBe(4401);
    }
    for (const s of elsewhere) expect((await s.closed()).code).toBe(4401);

    // The old token, at every door.
    for (const [method, path] of [
      ['GET', '/api/me'],
      ['GET', '/api/me/notifications'],
      ['POST', '/api/me/notifications/read-all'],
      ['POST', '/api/me/logout-all'],
    ] as const) {
      const r = await api(path, { method, token: user.token });
      expect(r.status, path).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('token_revoked');
    }
    for (const path of ['/ws/me', `/ws/stations/${station.id}`, `/ws/comments/${unique('item')}`]) {
      expect((await upgrade(path, { token: user.token })).status, path).toBe(401);
    }
    // A token issued afterwards works.
    const fresh = await login(user);
    expect((await api('/api/me', { token: fresh })).status).toBe(200);
    const back = await connect('/ws/me', { token: fresh });
    expect((await back.next<UserWelcome>('welcome')).user?.id).toBe(user.id);
    back.close();
  });

  it('refuses an old token at the socket door even where the worker has not heard (the quota knows)', async () => {
    const user = await register();
    // This isolate reads (and keeps for a few seconds) that the user has no revocation.
    expect((await api('/api/me', { token: user.token })).status).toBe(200);
    await userChannel.room(env, user.id).revokeSessions();
    // The revocation went through the typed method, not a route of this isolate: the worker's
    // cache may not know, the user's quota refuses the socket anyway.
    const res = await upgrade(`/ws/comments/${unique('item')}`, { token: user.token });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('token_revoked');
    // The quota itself: a lease for a token issued before the revocation is refused, after it taken.
    const quota = quotaOf(env, user.id);
    const holder = { binding: 'COMMENT_ROOM', channel: 'comments:x' };
    expect(await quota.acquire('old', holder, 50, Date.now() - 60_000)).toBe('revoked');
    expect(await quota.acquire('new', holder, 50, Date.now() + 1000)).toBe(true);
  });

  it('lets an admin log a user out; others may not', async () => {
    const [user, other, boss] = [await register(), await register(), await anAdmin()];
    const socket = await connect('/ws/me', { token: user.token });
    await socket.next('welcome');
    expect(
      (await api(`/api/admin/users/${user.id}/logout`, { method: 'POST', token: other.token }))
        .status,
    ).toBe(403);
    expect((await api(`/api/admin/users/${user.id}/logout`, { method: 'POST' })).status).toBe(401);
    const missing = await api('/api/admin/users/no-such-user/logout', {
      method: 'POST',
      token: boss.token,
    });
    expect(missing.status).toBe(404);
    const res = await api(`/api/admin/users/${user.id}/logout`, {
      method: 'POST',
      token: boss.token,
    });
    expect(res.status).toBe(200);
    expect((await socket.next<SessionRevokedFrame>('session.revoked')).reason).toContain(
      'administrator',
    );
    expect((await socket.closed()).code).toBe(4401);
    expect((await api('/api/me', { token: user.token })).status).toBe(401);
    // The admin's own token is untouched, and the user's inbox outlives the logout.
    expect((await api('/api/me', { token: boss.token })).status).toBe(200);
    await notify(user.id, { title: 'still here' });
    const fresh = await login(user);
    const inbox = await api('/api/me/notifications/unread-count', { token: fresh });
    expect(await inbox.json()).toEqual({ unread: 1 });
  });

  it('keeps admins out of other users’ channels (they act through the API)', async () => {
    const [user, boss] = [await register(), await anAdmin()];
    const socket = await connect('/ws/me', { token: boss.token });
    const welcome = await socket.next<UserWelcome>('welcome');
    expect(welcome.channel).toBe(`user:${boss.id}`);
    expect(welcome.channel).not.toBe(`user:${user.id}`);
    socket.send({ type: 'notifications.read', id: 'x', ids: ['someone-elses'] });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      code: 'notification_not_found',
    });
    socket.close();
    // Events have nothing to do with it; a quick sanity check that the admin can still act there.
    expect((await createEvent(boss)).id).toBeTruthy();
  });
});
