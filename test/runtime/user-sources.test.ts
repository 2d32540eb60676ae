// Notification sources (issue 8): each product flow tells the users it concerns, once, even when
// the source is retried — bookings confirmed and cancelled, tickets transferred (both sides), an
// event update reaching every holder and a go-live reaching every favouriter (through the queue),
// a mute or ban in a station's chat.
import { beforeAll, describe, expect, it } from 'vitest';
import type { NotificationNewEvent } from '../../worker/protocol/user';
import { book, booked, createEvent, settled } from './event-fixtures';
import { api, connect, drained, env, register, type TestUser, unique } from './helpers';
import { createStation, goLive, streamRoom } from './station-fixtures';
import { inbox, unreadCount, userRoom, waitForKind } from './user-fixtures';

let organiser: TestUser;
let owner: TestUser;

beforeAll(async () => {
  [organiser, owner] = await Promise.all([register('organiser'), register('station_owner')]);
});

describe('bookings', () => {
  it('tells the booker their booking is confirmed, once even when the booking is retried', async () => {
    const user = await register();
    const socket = await connect('/ws/me', { token: user.token });
    await socket.next('welcome');
    const event = await createEvent(organiser);
    const key = unique('key');
    const first = await book(user, { eventId: event.id, quantity: 2 }, key);
    const retry = await book(user, { eventId: event.id, quantity: 2 }, key);
    expect(first.status).toBe(201);
    expect(retry.replayed).toBe(true);
    const frame = await socket.next<NotificationNewEvent>('notification.new');
    const bookingId = (JSON.parse(first.text) as { booking: { id: string } }).booking.id;
    expect(frame.notification).toMatchObject({
      kind: 'booking.confirmed',
      link: `/events/${event.id}`,
      data: { eventId: event.id, bookingId, quantity: 2 },
    });
    expect(frame.notification.title).toContain(event.title);
    await settled(event.id);
    await drained(userRoom(user.id));
    expect(
      (await inbox(user)).notifications.filter((n) => n.kind === 'booking.confirmed'),
    ).toHaveLength(1);
    socket.close();
  });

  it('tells the booker when a booking is cancelled, by them or by the organiser', async () => {
    const user = await register();
    const event = await createEvent(organiser);
    const mine = await booked(user, event.id);
    const theirs = await booked(user, event.id);
    expect(
      (await api(`/api/bookings/${mine.id}`, { method: 'DELETE', token: user.token })).status,
    ).toBe(200);
    expect(
      (await api(`/api/bookings/${theirs.id}`, { method: 'DELETE', token: organiser.token }))
        .status,
    ).toBe(200);
    const cancelled = await waitForKind(user, 'booking.cancelled', 2);
    expect(cancelled.map((n) => n.data?.bookingId).sort()).toEqual([mine.id, theirs.id].sort());
    // Cancelling again is refused and tells nobody anything new.
    expect(
      (await api(`/api/bookings/${mine.id}`, { method: 'DELETE', token: user.token })).status,
    ).toBe(409);
    await settled(event.id);
    expect(await waitForKind(user, 'booking.cancelled', 2)).toHaveLength(2);
  });
});

describe('ticket transfers', () => {
  it('tells the recipient a ticket is theirs and the sender that it left', async () => {
    const [alice, bob] = await Promise.all([register(), register()]);
    const event = await createEvent(organiser);
    const booking = await booked(alice, event.id);
    const ticketId = booking.tickets[0]?.id ?? '';
    const bobSocket = await connect('/ws/me', { token: bob.token });
    await bobSocket.next('welcome');
    const res = await api(`/api/tickets/${ticketId}/transfer`, {
      method: 'POST',
      token: alice.token,
      json: { toUserId: bob.id },
    });
    expect(res.status).toBe(200);
    const received = await bobSocket.next<NotificationNewEvent>('notification.new');
    expect(received.notification).toMatchObject({
      kind: 'ticket.received',
      data: { eventId: event.id, ticketId, fromUserId: alice.id },
    });
    const sent = await waitForKind(alice, 'ticket.sent');
    expect(sent[0]?.data).toMatchObject({ ticketId, toUserId: bob.id });
    bobSocket.close();
  });
});

describe('event updates reach every holder through the queue', () => {
  it('tells every holder (and only holders) once per update', async () => {
    const holders = await Promise.all([register(), register(), register()]);
    const bystander = await register();
    const event = await createEvent(organiser, { capacity: 20 });
    for (const h of holders) await booked(h, event.id);
    const res = await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { venue: 'The Other Hall' },
    });
    expect(res.status).toBe(200);
    for (const h of holders) {
      const [n] = await waitForKind(h, 'event.updated');
      expect(n).toMatchObject({
        link: `/events/${event.id}`,
        data: { eventId: event.id, changed: ['venue'] },
      });
    }
    expect(await unreadCount(bystander)).toBe(0);
    // A second update is a second notification; the first is not repeated.
    await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { title: 'Renamed' },
    });
    for (const h of holders) expect(await waitForKind(h, 'event.updated', 2)).toHaveLength(2);
  });
});

describe('event cancellation reaches every holder through the queue', () => {
  it('calls the event off: watchers hear it, holders are told once, bookings and edits are refused', async () => {
    const [holder, other, bystander] = await Promise.all([register(), register(), register()]);
    const event = await createEvent(organiser, { capacity: 20 });
    await booked(holder, event.id, 2);
    await booked(other, event.id);
    const watcher = await connect(`/ws/events/${event.id}`, { token: bystander.token });
    await watcher.next('welcome');
    const cancel = (user: TestUser, json: object = {}) =>
      api(`/api/events/${event.id}/cancel`, { method: 'POST', token: user.token, json });
    expect((await cancel(holder)).status).toBe(403);
    expect((await cancel(organiser, { reason: '' })).status).toBe(400);
    const res = await cancel(organiser, { reason: 'The band is ill' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { event: { cancelledAt: number | null }; reason: string };
    expect(body.event.cancelledAt).toBeGreaterThan(0);
    expect(body.reason).toBe('The band is ill');
    const frame = await watcher.next<{ event: { cancelledAt: number }; reason: string }>(
      'event.cancelled',
    );
    expect(frame).toMatchObject({ reason: 'The band is ill', event: { id: event.id } });
    for (const user of [holder, other]) {
      const [n] = await waitForKind(user, 'event.cancelled');
      expect(n).toMatchObject({
        body: 'The band is ill',
        data: { eventId: event.id, reason: 'The band is ill' },
      });
    }
    expect(await unreadCount(bystander)).toBe(0);

    const again = await cancel(organiser);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe(
      'event_cancelled',
    );
    const late = await book(bystander, { eventId: event.id, quantity: 1 });
    expect(late.status).toBe(409);
    expect(JSON.parse(late.text).error.code).toBe('event_cancelled');
    const edit = await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { venue: 'x' },
    });
    expect(edit.status).toBe(409);
    const view = await api(`/api/events/${event.id}`, { token: bystander.token });
    expect(((await view.json()) as { event: { cancelledAt: number } }).event.cancelledAt).toBe(
      body.event.cancelledAt,
    );
    await settled(event.id);
    const row = await env.DB.prepare('SELECT cancelled_at AS at FROM events WHERE id = ?')
      .bind(event.id)
      .first<{ at: number }>();
    expect(row?.at).toBe(body.event.cancelledAt);
    // Told once: the holders have exactly one cancellation each.
    for (const user of [holder, other])
      expect(await waitForKind(user, 'event.cancelled')).toHaveLength(1);
    watcher.close();
  });
});

describe('the queue delivers once', () => {
  it('a deliver message that arrives twice creates each notification once', async () => {
    const users = await Promise.all([register(), register()]);
    const message = {
      type: 'deliver' as const,
      userIds: users.map((u) => u.id),
      template: { kind: 'test.twice', title: 'Twice', key: unique('twice') },
    };
    await env.NOTIFY_QUEUE.send(message, { contentType: 'json' });
    await env.NOTIFY_QUEUE.send(message, { contentType: 'json' });
    for (const u of users) await waitForKind(u, 'test.twice');
    // A fence after both: a second message of the same kind, then exactly one of the first.
    const fence = {
      ...message,
      template: { kind: 'test.fence', title: 'Fence', key: unique('fence') },
    };
    await env.NOTIFY_QUEUE.send(fence, { contentType: 'json' });
    for (const u of users) {
      await waitForKind(u, 'test.fence');
      expect(await waitForKind(u, 'test.twice')).toHaveLength(1);
    }
  });
});

describe('a favourited station going live', () => {
  it('tells every user who favourited it, through the queue, and nobody else', async () => {
    const station = await createStation(owner);
    const fans = await Promise.all(Array.from({ length: 4 }, () => register()));
    const other = await register();
    // More favouriters, written straight into D1 (registering each would only test PBKDF2).
    const extra = Array.from({ length: 60 }, () => crypto.randomUUID());
    const now = Date.now();
    await env.DB.batch(
      extra.flatMap((id) => [
        env.DB.prepare(
          "INSERT INTO users (id, email, password_hash, display_name, role, created_at) VALUES (?, ?, 'x', 'Fan', 'listener', ?)",
        ).bind(id, `${id}@example.test`, now),
        env.DB.prepare(
          'INSERT INTO station_favourites (user_id, station_id, created_at) VALUES (?, ?, ?)',
        ).bind(id, station.id, now),
      ]),
    );
    for (const fan of fans) {
      const res = await api(`/api/stations/${station.id}/favourite`, {
        method: 'PUT',
        token: fan.token,
      });
      expect(res.status).toBe(200);
    }
    const socket = await connect('/ws/me', { token: fans[0]?.token ?? '' });
    await socket.next('welcome');
    const live = await goLive(owner, station.id);
    const frame = await socket.next<NotificationNewEvent>('notification.new', 15_000);
    expect(frame.notification).toMatchObject({
      kind: 'station.live',
      link: `/stations/${station.id}`,
      data: { stationId: station.id, sessionId: live.session.id },
    });
    for (const fan of fans) expect(await waitForKind(fan, 'station.live')).toHaveLength(1);
    const deadline = Date.now() + 15_000;
    for (const id of extra) {
      for (;;) {
        const { unread } = await userChannelUnread(id);
        if (unread === 1) break;
        if (Date.now() > deadline) throw new Error(`favouriter ${id} was not told`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(await unreadCount(other)).toBe(0);
    expect(await unreadCount(owner)).toBe(0);
    await drained(streamRoom(station.id));
    socket.close();
  });
});

async function userChannelUnread(userId: string): Promise<{ unread: number }> {
  const result = await userRoom(userId).unreadCount();
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

describe('moderation', () => {
  it('tells a user they were muted or banned in a station chat; unmute tells nothing', async () => {
    const station = await createStation(owner);
    const user = await register();
    const moderate = (json: object) =>
      api(`/api/stations/${station.id}/moderation`, { method: 'POST', token: owner.token, json });
    expect(
      (await moderate({ userId: user.id, action: 'mute', durationSeconds: 600, reason: 'spam' }))
        .status,
    ).toBe(201);
    const [muted] = await waitForKind(user, 'chat.muted');
    expect(muted).toMatchObject({
      link: `/stations/${station.id}`,
      data: { stationId: station.id, reason: 'spam' },
    });
    expect(muted?.title).toContain(station.name);
    expect((await moderate({ userId: user.id, action: 'unmute' })).status).toBe(201);
    expect((await moderate({ userId: user.id, action: 'ban' })).status).toBe(201);
    const [banned] = await waitForKind(user, 'chat.banned');
    expect(banned?.data).toMatchObject({ stationId: station.id, until: null });
    await drained(streamRoom(station.id));
    expect((await inbox(user)).notifications.map((n) => n.kind)).toEqual([
      'chat.banned',
      'chat.muted',
    ]);
  });
});
