// The user channel and its inbox (issue 8): who may open /ws/me, the welcome, notifications
// committed once per source key, the server-owned unread count pushed to every device, marks by
// ids / watermark / read-all (idempotent, acknowledged), REST pages, resume, and bad input.
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type {
  NotificationNewEvent,
  NotificationsReadEvent,
  UserWelcome,
} from '../../worker/protocol/user';
import { api, connect, register, upgrade } from './helpers';
import { inbox, markRead, notify, unreadCount, unreadInD1Settled, userRoom } from './user-fixtures';

describe('who may open /ws/me', () => {
  it('refuses a socket without a token with 401 before any object is reached', async () => {
    const res = await upgrade('/ws/me');
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('auth_required');
  });

  it('refuses a bad token with 401', async () => {
    const res = await upgrade('/ws/me', { token: 'not-a-token' });
    expect(res.status).toBe(401);
  });

  it("connects a user to their own channel only; the object refuses anyone else's identity", async () => {
    const [a, b] = await Promise.all([register(), register()]);
    const socket = await connect('/ws/me', { token: a.token });
    const welcome = await socket.next<UserWelcome>('welcome');
    expect(welcome).toMatchObject({ channel: `user:${a.id}`, kind: 'user', seq: 0 });
    expect(welcome.snapshot).toMatchObject({
      userId: a.id,
      unread: 0,
      notifications: [],
      balance: null,
      devices: 1,
    });
    // Nothing routes b to a's object; even a request naming it directly is refused by the object.
    const { forwardToChannel } = await import('../../worker/channel/identity');
    const req = forwardToChannel(
      new Request(`https://wavecast.test/ws/me`, { headers: { upgrade: 'websocket' } }),
      { id: b.id, name: b.name, role: b.role },
    );
    const res = await userRoom(a.id).fetch(req);
    expect(res.status).toBe(403);
    socket.close();
  });
});

describe('notifications', () => {
  it('pushes notification.new with the unread count to every device, sequenced', async () => {
    const user = await register();
    const [d1, d2] = [
      await connect('/ws/me', { token: user.token }),
      await connect('/ws/me', { token: user.token }),
    ];
    await d1.next('welcome');
    await d2.next('welcome');
    const sent = await notify(user.id, {
      kind: 'test.note',
      title: 'Hello',
      body: 'there',
      link: '/x',
      data: { a: 1 },
    });
    expect(sent).toMatchObject({ created: true, unread: 1 });
    for (const device of [d1, d2]) {
      const frame = await device.next<NotificationNewEvent>('notification.new');
      expect(frame).toMatchObject({ seq: 1, unread: 1 });
      expect(frame.notification).toMatchObject({
        id: sent.notification.id,
        kind: 'test.note',
        title: 'Hello',
        body: 'there',
        link: '/x',
        data: { a: 1 },
        readAt: null,
      });
    }
    d1.close();
    d2.close();
  });

  it('creates a notification once per source key, however often the source retries', async () => {
    const user = await register();
    const first = await notify(user.id, { key: 'booking.confirmed:b1', title: 'Booked' });
    const again = await notify(user.id, { key: 'booking.confirmed:b1', title: 'Booked' });
    const third = await Promise.all(
      [1, 2, 3].map(() => notify(user.id, { key: 'booking.confirmed:b1' })),
    );
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, unread: 1 });
    expect(again.notification.id).toBe(first.notification.id);
    expect(third.every((r) => !r.created)).toBe(true);
    expect((await inbox(user)).notifications).toHaveLength(1);
    expect(await unreadInD1Settled(user.id)).toBe(1);
  });

  it('welcomes with the unread count, the newest page (newest first) and a cursor past it', async () => {
    const user = await register();
    for (let i = 0; i < 25; i++) await notify(user.id, { title: `n${i}` });
    const socket = await connect('/ws/me', { token: user.token });
    const welcome = await socket.next<UserWelcome>('welcome');
    expect(welcome.snapshot.unread).toBe(25);
    expect(welcome.snapshot.notifications).toHaveLength(20);
    expect(welcome.snapshot.notifications[0]?.title).toBe('n24');
    expect(welcome.snapshot.nextCursor).not.toBeNull();
    const rest = await inbox(user, `?before=${welcome.snapshot.nextCursor}`);
    expect(rest.notifications.map((x) => x.title)).toEqual(['n4', 'n3', 'n2', 'n1', 'n0']);
    expect(rest.nextCursor).toBeNull();
    socket.close();
  });

  it('pages the inbox over REST with cursors and the unread filter', async () => {
    const user = await register();
    const made = [];
    for (let i = 0; i < 7; i++) made.push((await notify(user.id, { title: `p${i}` })).notification);
    await markRead(user, { ids: [made[6]?.id, made[5]?.id] });
    const first = await inbox(user, '?limit=3');
    expect(first.notifications.map((x) => x.title)).toEqual(['p6', 'p5', 'p4']);
    expect(first.unread).toBe(5);
    const second = await inbox(user, `?limit=3&before=${first.nextCursor}`);
    expect(second.notifications.map((x) => x.title)).toEqual(['p3', 'p2', 'p1']);
    const unread = await inbox(user, '?unread=true&limit=100');
    expect(unread.notifications.map((x) => x.title)).toEqual(['p4', 'p3', 'p2', 'p1', 'p0']);
    expect(unread.notifications.every((x) => x.readAt === null)).toBe(true);
    expect(await unreadCount(user)).toBe(5);
  });
});

describe('marking read', () => {
  it('a read on one device clears the badge on the others, acked by request id', async () => {
    const user = await register();
    const a = (await notify(user.id)).notification;
    const b = (await notify(user.id)).notification;
    const phone = await connect('/ws/me', { token: user.token });
    const tab = await connect('/ws/me', { token: user.token });
    await phone.next('welcome');
    await tab.next('welcome');
    tab.send({ type: 'notifications.read', id: 'r1', ids: [a.id] });
    const ack = await tab.next<AckFrame<{ marked: number; unread: number; ids: string[] }>>('ack');
    expect(ack).toMatchObject({ id: 'r1', seq: 3, result: { marked: 1, unread: 1, ids: [a.id] } });
    const seen = await phone.next<NotificationsReadEvent>('notifications.read');
    expect(seen).toMatchObject({ ids: [a.id], marked: 1, unread: 1, seq: 3 });
    expect(seen.readAt).toBeGreaterThan(0);
    await tab.next('notifications.read');
    // The same id again: acknowledged again (duplicate), nothing new sent.
    tab.send({ type: 'notifications.read', id: 'r1', ids: [a.id] });
    expect(await tab.next<AckFrame>('ack')).toMatchObject({ id: 'r1', duplicate: true });
    // A new request marking the same read notification: acked, marks nothing, sends nothing.
    tab.send({ type: 'notifications.read', id: 'r2', ids: [a.id] });
    expect(await tab.next<AckFrame>('ack')).toMatchObject({
      id: 'r2',
      result: { marked: 0, unread: 1 },
    });
    phone.send({ type: 'notifications.read-all', id: 'all' });
    expect(await phone.next<AckFrame>('ack')).toMatchObject({
      id: 'all',
      result: { marked: 1, unread: 0 },
    });
    expect(await tab.next<NotificationsReadEvent>('notifications.read')).toMatchObject({
      all: true,
      marked: 1,
      unread: 0,
    });
    expect(phone.all('notifications.read')).toHaveLength(2);
    expect(tab.all('notifications.read')).toHaveLength(2);
    expect(await unreadCount(user)).toBe(0);
    expect((await inbox(user)).notifications.find((x) => x.id === b.id)?.readAt).not.toBeNull();
    expect(await unreadInD1Settled(user.id)).toBe(0);
    phone.close();
    tab.close();
  });

  it('marks over REST by ids, by watermark and all; twice changes nothing and sends nothing', async () => {
    const user = await register();
    const socket = await connect('/ws/me', { token: user.token });
    await socket.next('welcome');
    const olds = [];
    for (let i = 0; i < 3; i++) olds.push((await notify(user.id)).notification);
    const watermark = olds[2]?.createdAt ?? 0;
    await new Promise((r) => setTimeout(r, 5));
    const newer = (await notify(user.id)).notification;
    expect(newer.createdAt).toBeGreaterThan(watermark);

    const upTo = await markRead(user, { upTo: watermark });
    expect(upTo.status).toBe(200);
    expect(await upTo.json()).toMatchObject({ marked: 3, unread: 1 });
    expect(await socket.next<NotificationsReadEvent>('notifications.read')).toMatchObject({
      upTo: watermark,
      marked: 3,
      unread: 1,
    });

    const again = await markRead(user, { upTo: watermark });
    expect(await again.json()).toMatchObject({ marked: 0, unread: 1 });

    const all = await api('/api/me/notifications/read-all', { method: 'POST', token: user.token });
    expect(await all.json()).toMatchObject({ marked: 1, unread: 0 });
    const allAgain = await api('/api/me/notifications/read-all', {
      method: 'POST',
      token: user.token,
    });
    expect(await allAgain.json()).toMatchObject({ marked: 0, unread: 0 });
    await socket.next('notifications.read');
    // Exactly two reads were sent: the repeats sent nothing.
    await notify(user.id, { title: 'fence' });
    await socket.next('notification.new');
    expect(socket.all('notifications.read')).toHaveLength(2);
    expect(await unreadCount(user)).toBe(1);
    socket.close();
  });

  it("refuses someone else's notification, unknown ids and bad ids; changes nothing", async () => {
    const [me, other] = await Promise.all([register(), register()]);
    const mine = (await notify(me.id)).notification;
    const theirs = (await notify(other.id)).notification;
    const socket = await connect('/ws/me', { token: me.token });
    await socket.next('welcome');

    const foreign = await markRead(me, { ids: [mine.id, theirs.id] });
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe(
      'notification_not_found',
    );
    const unknown = await markRead(me, { ids: ['nope'] });
    expect(unknown.status).toBe(404);

    for (const body of [
      {},
      { ids: [] },
      { ids: 'x' },
      { ids: [42] },
      { ids: ['bad id!'] },
      { ids: Array.from({ length: 101 }, (_, i) => `id${i}`) },
      { ids: [mine.id], upTo: 1 },
      { upTo: -1 },
      { upTo: 1.5 },
      { upTo: '123' },
      { extra: true },
    ]) {
      const res = await markRead(me, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
    }
    const future = await markRead(me, { upTo: Date.now() + 60_000 });
    expect(future.status).toBe(400);
    expect(((await future.json()) as { error: { code: string } }).error.code).toBe(
      'watermark_in_future',
    );

    socket.send({ type: 'notifications.read', id: 'f', ids: [theirs.id] });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'f',
      code: 'notification_not_found',
    });
    socket.send({ type: 'notifications.read', id: 'g', upTo: Date.now() + 60_000 });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'g',
      code: 'watermark_in_future',
    });
    socket.send({ type: 'notifications.read', id: 'h', ids: 'x' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'h',
      code: 'invalid_frame',
    });
    socket.send({ type: 'notifications.nope', id: 'i' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ code: 'unknown_type' });

    expect(await unreadCount(me)).toBe(1);
    expect(await unreadCount(other)).toBe(1);
    expect(socket.all('notifications.read')).toHaveLength(0);
    socket.close();
  });

  it('refuses bad page queries and anonymous callers', async () => {
    const user = await register();
    for (const q of ['?limit=0', '?limit=101', '?before=abc', '?unread=yes', '?other=1']) {
      const res = await api(`/api/me/notifications${q}`, { token: user.token });
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_query');
    }
    for (const [method, path] of [
      ['GET', '/api/me/notifications'],
      ['GET', '/api/me/notifications/unread-count'],
      ['POST', '/api/me/notifications/read-all'],
      ['POST', '/api/me/logout-all'],
    ] as const) {
      const res = await api(path, { method });
      expect(res.status, path).toBe(401);
    }
  });

  it('refuses a bad notification from a trusted caller with invalid_body and stores nothing', async () => {
    const user = await register();
    const room = (await import('../../worker/rooms/user/kind')).userChannel.room;
    const { env } = await import('./helpers');
    for (const input of [
      { kind: 'Bad Kind', title: 'x' },
      { kind: 'ok', title: '' },
      { kind: 'ok', title: 'x'.repeat(201) },
      { kind: 'ok', title: 'x', link: 'javascript:alert(1)' },
      { kind: 'ok', title: 'x', data: { big: 'y'.repeat(5000) } },
      { kind: 'ok', title: 'x', surprise: 1 },
    ]) {
      await expect(room(env, user.id).notify(input as never)).rejects.toMatchObject({
        code: 'invalid_body',
        status: 400,
      });
    }
    expect(await unreadCount(user)).toBe(0);
  });
});

describe('resume and hibernation', () => {
  it('replays exactly the missed notifications and reads after a reconnect, also after eviction', async () => {
    const user = await register();
    const socket = await connect('/ws/me', { token: user.token });
    const welcome = await socket.next<UserWelcome>('welcome');
    const first = await notify(user.id, { title: 'one' });
    await socket.next('notification.new');
    socket.close();
    await notify(user.id, { title: 'two' });
    await markRead(user, { ids: [first.notification.id] });
    await evictDurableObject(userRoom(user.id));
    const back = await connect('/ws/me', {
      token: user.token,
      query: { since: 1, epoch: welcome.epoch },
    });
    const resumed = await back.next<UserWelcome>('welcome');
    expect(resumed.recovery).toEqual({ requested: true, recovered: true, missed: 2 });
    expect(resumed.snapshot.unread).toBe(1);
    expect((await back.next<NotificationNewEvent>('notification.new')).notification.title).toBe(
      'two',
    );
    expect(await back.next<NotificationsReadEvent>('notifications.read')).toMatchObject({
      seq: 3,
      unread: 1,
    });
    back.close();
  });
});
