// The user channel end to end (issue 8), against its own `wrangler dev` (its D1 seeded before it
// starts with a station that 1,999 users favourited, and a few admins): one user on three devices
// (two `ws` sockets and the SDK) and a second user. Bookings, a transfer, a go-live of the
// favourited station (2,000 favourites, fanned out through the queue) and an event update produce
// exactly the expected notifications on every device; a read on one device clears the badge on
// the others; after 200 concurrent creates and reads the unread count equals D1's unread rows;
// log out everywhere closes all three devices with 4401 and the old token gets 401 on REST and
// sockets.
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type MeChannel, WavecastClient } from '../../client/sdk';
import type {
  Notification,
  NotificationNewEvent,
  NotificationsReadEvent,
} from '../../worker/protocol/user';
import type { Frame, FrameQueue } from '../support/frames';
import { api, connect, type E2EUser, register } from './helpers';
import { E2E_SECRET, e2eServer } from './server';

const SEEDED_FANS = 1999; // + the user under test = 2,000 favourites
const ADMINS = 4;

const server = e2eServer('user-channel');
const repoRoot = join(import.meta.dirname, '../..');
const wrangler = join(repoRoot, 'node_modules/wrangler/bin/wrangler.js');

function d1(args: string[]): string {
  // Another process reads the server's SQLite file while the server writes to it: a read can
  // meet SQLITE_BUSY under load, which says "try again", not "wrong".
  for (let attempt = 1; ; attempt++) {
    try {
      return execFileSync(
        process.execPath,
        [
          wrangler,
          'd1',
          'execute',
          'DB',
          '--local',
          '--persist-to',
          server.state,
          '--yes',
          ...args,
        ],
        { cwd: repoRoot, stdio: 'pipe', env: { ...process.env, CI: 'true' } },
      ).toString();
    } catch (err) {
      const out = `${(err as { stdout?: Buffer }).stdout ?? ''}${(err as { stderr?: Buffer }).stderr ?? ''}`;
      if (attempt >= 10 || !out.includes('SQLITE_BUSY')) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250 * attempt);
    }
  }
}

/** One number from the server's local D1 (read while it runs, from another process). */
function d1Number(sql: string): number {
  const out = JSON.parse(d1(['--command', sql, '--json'])) as {
    results: Record<string, number>[];
  }[];
  return Number(Object.values(out[0]?.results[0] ?? {})[0] ?? Number.NaN);
}

function sign(user: { id: string; name: string; role: string }): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: user.id, name: user.name, role: user.role, iat: now, exp: now + 3600 })}`;
  return `${head}.${createHmac('sha256', E2E_SECRET).update(head).digest('base64url')}`;
}

const owner = { id: randomUUID(), name: 'Seed Owner', role: 'station_owner' };
const stationId = randomUUID();
const admins = Array.from({ length: ADMINS }, (_, i) => ({
  id: randomUUID(),
  name: `Admin ${i}`,
  role: 'admin',
}));

beforeAll(async () => {
  server.prepare();
  const now = Date.now();
  const fans = Array.from({ length: SEEDED_FANS }, () => randomUUID());
  const users = [owner, ...admins].map(
    (u) => `('${u.id}', '${u.id}@seed.test', 'x', '${u.name}', '${u.role}', ${now})`,
  );
  users.push(...fans.map((id) => `('${id}', '${id}@seed.test', 'x', 'Fan', 'listener', ${now})`));
  const statements: string[] = [];
  for (let i = 0; i < users.length; i += 500) {
    statements.push(
      `INSERT INTO users (id, email, password_hash, display_name, role, created_at) VALUES ${users.slice(i, i + 500).join(',')};`,
    );
  }
  statements.push(
    `INSERT INTO stations (id, owner_id, name, description, genre, is_live, created_at, updated_at) VALUES ('${stationId}', '${owner.id}', 'Seed FM', '', 'jazz', 0, ${now}, ${now});`,
  );
  for (let i = 0; i < fans.length; i += 500) {
    const rows = fans.slice(i, i + 500).map((id) => `('${id}', '${stationId}', ${now})`);
    statements.push(
      `INSERT INTO station_favourites (user_id, station_id, created_at) VALUES ${rows.join(',')};`,
    );
  }
  const file = join(server.state, 'seed.sql');
  writeFileSync(file, statements.join('\n'));
  d1(['--file', file]);
  await server.start();
}, 180_000);

afterAll(async () => {
  await server.stop();
  await server.dispose();
});

const base = () => server.baseUrl;

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const news = (q: FrameQueue) => q.all<NotificationNewEvent>('notification.new');
const kindsOf = (frames: { notification: Notification }[]) =>
  frames.map((f) => f.notification.kind);

describe('the user channel end to end', () => {
  let user: E2EUser;
  let second: E2EUser;
  let organiser: E2EUser;
  let ws1: FrameQueue & { raw: WebSocket };
  let ws2: FrameQueue & { raw: WebSocket };
  let secondWs: FrameQueue & { raw: WebSocket };
  let sdk: WavecastClient;
  let me: MeChannel;
  const sdkFrames: Frame[] = [];

  it('connects one user on three devices and a second user', async () => {
    [user, second, organiser] = await Promise.all([
      register('listener', 'Ursula', base()),
      register('listener', 'Victor', base()),
      register('organiser', 'Olga', base()),
    ]);
    ws1 = await connect('/ws/me', { token: user.token, base: base() });
    ws2 = await connect('/ws/me', { token: user.token, base: base() });
    secondWs = await connect('/ws/me', { token: second.token, base: base() });
    for (const s of [ws1, ws2, secondWs]) expect((await s.next('welcome')).type).toBe('welcome');
    sdk = new WavecastClient({ baseUrl: base(), token: user.token, WebSocket });
    me = sdk.me();
    me.on('*', (f) => sdkFrames.push(f as Frame));
    await until(() => me.channel.snapshot !== null, 'SDK welcome');
    expect(me.unread.get()).toBe(0);
    expect(me.channel.snapshot?.devices).toBe(3);
  });

  it('bookings, a transfer, a go-live to 2,000 favourites and an event update notify exactly who they concern', async () => {
    const fav = await api(`/api/stations/${stationId}/favourite`, {
      method: 'PUT',
      token: user.token,
      base: base(),
    });
    expect(fav.status).toBe(200);
    const created = await api<{ event: { id: string } }>('/api/events', {
      method: 'POST',
      token: organiser.token,
      base: base(),
      json: {
        title: 'Night at the Hall',
        venue: 'The Hall',
        startsAt: Date.now() + 86_400_000,
        capacity: 50,
      },
    });
    const eventId = created.body.event.id;
    const mine = await api<{ booking: { id: string } }>('/api/bookings', {
      method: 'POST',
      token: user.token,
      base: base(),
      json: { eventId, quantity: 2 },
      headers: { 'idempotency-key': 'ursula-1' },
    });
    expect(mine.status).toBe(201);
    // The booking retried with its key: answered again, notified once.
    const retried = await api('/api/bookings', {
      method: 'POST',
      token: user.token,
      base: base(),
      json: { eventId, quantity: 2 },
      headers: { 'idempotency-key': 'ursula-1' },
    });
    expect(retried.status).toBe(201);
    const theirs = await api<{ booking: { tickets: { id: string }[] } }>('/api/bookings', {
      method: 'POST',
      token: second.token,
      base: base(),
      json: { eventId, quantity: 2 },
    });
    const ticketId = theirs.body.booking.tickets[0]?.id;
    const moved = await api(`/api/tickets/${ticketId}/transfer`, {
      method: 'POST',
      token: second.token,
      base: base(),
      json: { toUserId: user.id },
    });
    expect(moved.status).toBe(200);
    await ws1.next(
      (f) =>
        f.type === 'notification.new' &&
        (f as unknown as NotificationNewEvent).notification.kind === 'ticket.received',
      15_000,
    );

    const live = await api<{ session: { id: string } }>(`/api/stations/${stationId}/live`, {
      method: 'POST',
      token: sign(owner),
      base: base(),
      json: { showTitle: 'Seed Show', hostName: 'DJ Seed' },
    });
    expect(live.status).toBe(201);
    await ws1.next(
      (f) =>
        f.type === 'notification.new' &&
        (f as unknown as NotificationNewEvent).notification.kind === 'station.live',
      60_000,
    );

    const edit = await api(`/api/events/${eventId}`, {
      method: 'PATCH',
      token: organiser.token,
      base: base(),
      json: { venue: 'The Bigger Hall' },
    });
    expect(edit.status).toBe(200);
    await ws1.next(
      (f) =>
        f.type === 'notification.new' &&
        (f as unknown as NotificationNewEvent).notification.kind === 'event.updated',
      30_000,
    );
    await secondWs.next(
      (f) =>
        f.type === 'notification.new' &&
        (f as unknown as NotificationNewEvent).notification.kind === 'event.updated',
      30_000,
    );

    const expected = ['booking.confirmed', 'ticket.received', 'station.live', 'event.updated'];
    await until(
      () =>
        sdkFrames.filter((f) => f.type === 'notification.new').length === 4 &&
        news(ws2).length === 4,
      'all devices',
    );
    const sdkNews = sdkFrames.filter(
      (f) => f.type === 'notification.new',
    ) as unknown as NotificationNewEvent[];
    for (const device of [news(ws1), news(ws2), sdkNews]) {
      expect(kindsOf(device)).toEqual(expected);
      expect(device.map((f) => f.notification.id)).toEqual(news(ws1).map((f) => f.notification.id));
      expect(device.map((f) => f.unread)).toEqual([1, 2, 3, 4]);
    }
    expect(me.unread.get()).toBe(4);
    expect(kindsOf(news(secondWs))).toEqual(['booking.confirmed', 'ticket.sent', 'event.updated']);
    const liveNote = news(ws1).find((f) => f.notification.kind === 'station.live')?.notification;
    expect(liveNote?.data).toEqual({ stationId, sessionId: live.body.session.id });

    // Every one of the 2,000 favouriters has exactly one notification of this go-live, in D1.
    const count = () =>
      d1Number(
        `SELECT COUNT(*) AS n FROM notifications WHERE kind = 'station.live' AND source_key = 'station.live:${live.body.session.id}'`,
      );
    await until(() => count() === SEEDED_FANS + 1, '2,000 go-live notifications in D1', 120_000);
    expect(
      d1Number(
        `SELECT COUNT(DISTINCT user_id) AS n FROM notifications WHERE source_key = 'station.live:${live.body.session.id}'`,
      ),
    ).toBe(SEEDED_FANS + 1);
    // A seeded fan sees it over REST too.
  }, 240_000);

  it('a read on one device clears the badge on the others', async () => {
    const [first] = news(ws1);
    ws1.send({ type: 'notifications.read', id: 'read-1', ids: [first?.notification.id] });
    expect((await ws1.next('ack')).id).toBe('read-1');
    const atWs2 = await ws2.next<NotificationsReadEvent>('notifications.read');
    expect(atWs2).toMatchObject({ ids: [first?.notification.id], unread: 3 });
    await until(() => me.unread.get() === 3, 'SDK badge at 3', 5_000);
    const all = await me.markAllRead();
    expect(all).toMatchObject({ marked: 3, unread: 0 });
    expect(
      await ws1.next<NotificationsReadEvent>(
        (f) => f.type === 'notifications.read' && f.all === true,
      ),
    ).toMatchObject({ unread: 0 });
    expect(
      await ws2.next<NotificationsReadEvent>(
        (f) => f.type === 'notifications.read' && f.all === true,
      ),
    ).toMatchObject({ unread: 0 });
    const count = await api<{ unread: number }>('/api/me/notifications/unread-count', {
      token: user.token,
      base: base(),
    });
    expect(count.body.unread).toBe(0);
  });

  it('after 200 concurrent creates and reads from several devices the count equals D1', async () => {
    const adminTokens = admins.map(sign);
    const creates = Array.from({ length: 200 }, (_, i) =>
      api(`/api/admin/users/${user.id}/notifications`, {
        method: 'POST',
        token: adminTokens[i % ADMINS],
        base: base(),
        json: { kind: 'shop.offer', title: `Offer ${i}`, key: `offer-${i}` },
      }),
    );
    // Reads from both sockets and the SDK while the creates land: by ids as they arrive, by watermark, all.
    const readers = [ws1, ws2].map(async (socket, d) => {
      let n = 0;
      for (let round = 0; round < 15; round++) {
        await new Promise((r) => setTimeout(r, 150));
        const arrived = news(socket)
          .slice(-3)
          .map((f) => f.notification.id);
        if (arrived.length === 0) continue;
        const id = `c${d}-${round}`;
        socket.send(
          round % 5 === 4
            ? { type: 'notifications.read-all', id }
            : round % 3 === 2
              ? { type: 'notifications.read', id, upTo: Date.now() - 50 }
              : { type: 'notifications.read', id, ids: arrived },
        );
        await socket.next((f) => (f.type === 'ack' || f.type === 'error') && f.id === id, 10_000);
        n += 1;
      }
      return n;
    });
    const sdkReads = (async () => {
      for (let round = 0; round < 10; round++) {
        await new Promise((r) => setTimeout(r, 200));
        await me.markRead({ upTo: Date.now() - 100 });
      }
    })();
    const results = await Promise.all(creates);
    expect(results.map((r) => r.status).every((s) => s === 201)).toBe(true);
    await Promise.all([...readers, sdkReads]);

    const server_ = async () =>
      (
        await api<{ unread: number }>('/api/me/notifications/unread-count', {
          token: user.token,
          base: base(),
        })
      ).body.unread;
    const unreadD1 = () =>
      d1Number(
        `SELECT COUNT(*) AS n FROM notifications WHERE user_id = '${user.id}' AND read_at IS NULL`,
      );
    const total = () =>
      d1Number(`SELECT COUNT(*) AS n FROM notifications WHERE user_id = '${user.id}'`);
    await until(() => total() === 204, 'D1 has every notification', 60_000);
    const expectedUnread = await server_();
    await until(() => unreadD1() === expectedUnread, 'D1 unread equals the server count', 60_000);
    expect(unreadD1()).toBe(await server_());
    // Every device's badge follows the server.
    await until(() => me.unread.get() === expectedUnread, 'SDK badge', 10_000);
    for (const socket of [ws1, ws2]) {
      const last = socket.received
        .filter((f) => f.type === 'notification.new' || f.type === 'notifications.read')
        .at(-1);
      expect(last?.unread).toBe(expectedUnread);
    }
    // Nothing was created twice, and the count can still go to zero.
    await api('/api/me/notifications/read-all', {
      method: 'POST',
      token: user.token,
      base: base(),
    });
    await until(() => me.unread.get() === 0, 'SDK badge at 0', 10_000);
    await until(() => unreadD1() === 0, 'D1 at 0', 30_000);
  }, 180_000);

  it('log out everywhere closes all three devices with 4401; the old token then gets 401', async () => {
    const oldToken = user.token;
    const result = await sdk.logoutAll();
    expect(result.closed).toBeGreaterThanOrEqual(3);
    for (const socket of [ws1, ws2]) {
      expect((await socket.next('session.revoked')).type).toBe('session.revoked');
      expect((await socket.closed(10_000)).code).toBe(4401);
    }
    await until(() => me.channel.terminal !== null, 'SDK closed', 10_000);
    expect(me.channel.terminal?.code).toBe(4401);
    expect(me.revoked).not.toBeNull();
    // The second user is untouched.
    expect(secondWs.closeEvent).toBeNull();

    const rest = await api<{ error: { code: string } }>('/api/me/notifications', {
      token: oldToken,
      base: base(),
    });
    expect(rest.status).toBe(401);
    expect(rest.body.error.code).toBe('token_revoked');
    await expect(connect('/ws/me', { token: oldToken, base: base() })).rejects.toThrow('401');
    await expect(
      connect(`/ws/stations/${stationId}`, { token: oldToken, base: base() }),
    ).rejects.toThrow('401');
    secondWs.close();
  });
});
