// Watching an event over its socket (EventRoom): the welcome snapshot, every change with its
// seat numbers and seq, private events, resume and eviction, and seed 002's console test.
import { evictDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import type { ErrorFrame } from '../../worker/protocol/core';
import type {
  BookingCancelledEvent,
  BookingCreatedEvent,
  EventUpdatedEvent,
  EventWelcome,
  SeatsUpdatedEvent,
  TicketTransferredEvent,
} from '../../worker/protocol/events';
import { event as eventKind } from '../../worker/rooms/event/kind';
import { booked, createEvent, errorOf } from './event-fixtures';
import { api, BASE, connect, env, register, type TestUser, upgrade } from './helpers';

let organiser: TestUser;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;

beforeAll(async () => {
  [organiser, alice, bob, admin] = await Promise.all([
    register('organiser'),
    register('listener', 'Alice'),
    register('listener', 'Bob'),
    register('admin'),
  ]);
});

const room = (eventId: string) =>
  env.EVENT_ROOM.get(env.EVENT_ROOM.idFromName(eventKind.channelOf(eventId)));

describe('watching an event', () => {
  it('welcomes with the event, its capacity and the seats available right now', async () => {
    const event = await createEvent(organiser, { capacity: 8 });
    await booked(alice, event.id, 3);
    const socket = await connect(`/ws/events/${event.id}`, { token: bob.token });
    const welcome = await socket.next<EventWelcome>('welcome');
    expect(welcome).toMatchObject({
      kind: 'event',
      channel: `event:${event.id}`,
      seq: 1,
      user: { id: bob.id },
    });
    expect(welcome.snapshot).toMatchObject({
      capacity: 8,
      bookedSeats: 3,
      availableSeats: 5,
      event: { id: event.id, title: event.title, availableSeats: 5 },
      watchers: { users: 1, connections: 1 },
    });
    // Events can draw large audiences: watchers are counted, never listed.
    expect(welcome.snapshot.watchers.members).toBeUndefined();
    socket.close();
  });

  it('lets anonymous clients watch a public event and see bookings with the new seat count', async () => {
    const event = await createEvent(organiser, { capacity: 4 });
    const socket = await connect(`/ws/events/${event.id}`);
    expect((await socket.next<EventWelcome>('welcome')).user).toBeNull();
    const booking = await booked(alice, event.id, 2);
    const created = await socket.next<BookingCreatedEvent>('booking.created');
    expect(created).toMatchObject({
      seq: 1,
      eventId: event.id,
      bookingId: booking.id,
      quantity: 2,
      capacity: 4,
      bookedSeats: 2,
      availableSeats: 2,
    });
    // Watchers are not told who booked.
    expect(JSON.stringify(created)).not.toContain(alice.id);
    socket.close();
  });

  it('sends booking.cancelled with the seats returned to the pool', async () => {
    const event = await createEvent(organiser, { capacity: 3 });
    const socket = await connect(`/ws/events/${event.id}`);
    await socket.next('welcome');
    const booking = await booked(alice, event.id, 3);
    expect((await socket.next<BookingCreatedEvent>('booking.created')).availableSeats).toBe(0);
    await api(`/api/bookings/${booking.id}`, { method: 'DELETE', token: alice.token });
    const cancelled = await socket.next<BookingCancelledEvent>('booking.cancelled');
    expect(cancelled).toMatchObject({
      seq: 2,
      bookingId: booking.id,
      quantity: 3,
      bookedSeats: 0,
      availableSeats: 3,
    });
    socket.close();
  });

  it('sends event.updated with the new event, and seats.updated when the capacity moves', async () => {
    const event = await createEvent(organiser, { capacity: 10 });
    await booked(alice, event.id, 4);
    const socket = await connect(`/ws/events/${event.id}`, { token: alice.token });
    await socket.next('welcome');
    await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { venue: 'The Big Room', capacity: 20 },
    });
    const updated = await socket.next<EventUpdatedEvent>('event.updated');
    expect(updated.seq).toBe(2);
    expect(updated.changed.sort()).toEqual(['capacity', 'venue']);
    expect(updated.event).toMatchObject({
      venue: 'The Big Room',
      capacity: 20,
      availableSeats: 16,
    });
    const seats = await socket.next<SeatsUpdatedEvent>('seats.updated');
    expect(seats).toMatchObject({
      seq: 3,
      reason: 'capacity_changed',
      capacity: 20,
      bookedSeats: 4,
      availableSeats: 16,
    });
    await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { title: 'Renamed' },
    });
    expect((await socket.next<EventUpdatedEvent>('event.updated')).changed).toEqual(['title']);
    // A title change moves no seats, so no seats.updated follows it.
    await new Promise((r) => setTimeout(r, 50));
    expect(socket.all('seats.updated')).toHaveLength(1);
    socket.close();
  });

  it('sends ticket.transferred without naming either holder', async () => {
    const event = await createEvent(organiser);
    const booking = await booked(alice, event.id, 1);
    const socket = await connect(`/ws/events/${event.id}`);
    await socket.next('welcome');
    const ticketId = booking.tickets[0]?.id;
    const res = await api(`/api/tickets/${ticketId}/transfer`, {
      method: 'POST',
      token: alice.token,
      json: { toUserId: bob.id },
    });
    expect(res.status).toBe(200);
    const moved = await socket.next<TicketTransferredEvent>('ticket.transferred');
    expect(moved).toMatchObject({ seq: 2, ticketId, bookingId: booking.id, eventId: event.id });
    expect(JSON.stringify(moved)).not.toContain(bob.id);
    socket.close();
  });

  it('refuses a socket for an event that does not exist', async () => {
    const res = await upgrade('/ws/events/no-such-event');
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('event_not_found');
  });

  it('answers a socket frame it does not know with unknown_type and stays open', async () => {
    const event = await createEvent(organiser);
    const socket = await connect(`/ws/events/${event.id}`, { token: alice.token });
    await socket.next('welcome');
    // Seed 002's subscribe frame: here the URL picks the event, so there is nothing to subscribe.
    socket.send({ type: 'subscribe_event', eventId: 1 });
    expect((await socket.next<ErrorFrame>('error')).code).toBe('unknown_type');
    socket.send({ type: 'ping', id: 'p1' });
    expect(await socket.next((f) => f.type === 'pong' && f.id === 'p1')).toBeTruthy();
    socket.close();
  });
});

describe('private events', () => {
  it('refuses anonymous (401) and unlisted (403) sockets at the room, which keeps the access list', async () => {
    const event = await createEvent(organiser, {
      visibility: 'private',
      accessUserIds: [alice.id],
    });
    const anonymous = await upgrade(`/ws/events/${event.id}`);
    expect(anonymous.status).toBe(401);
    expect((await errorOf(anonymous)).code).toBe('auth_required');
    const stranger = await upgrade(`/ws/events/${event.id}`, { token: bob.token });
    expect(stranger.status).toBe(403);
    expect((await errorOf(stranger)).code).toBe('event_access_denied');
    for (const user of [alice, organiser, admin]) {
      const socket = await connect(`/ws/events/${event.id}`, { token: user.token });
      expect((await socket.next<EventWelcome>('welcome')).snapshot.event.visibility).toBe(
        'private',
      );
      socket.close();
    }
  });

  it('is checked by the room itself for a request that skipped the worker', async () => {
    const event = await createEvent(organiser, { visibility: 'private' });
    const request = new Request(`${BASE}/ws/events/${event.id}`, {
      headers: { upgrade: 'websocket' },
    });
    const user = { id: bob.id, name: bob.name, role: bob.role };
    const res = await room(event.id).fetch(forwardToChannel(request, user));
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('event_access_denied');
  });

  it('closes anonymous and unlisted watchers with 4403 when an event turns private', async () => {
    const event = await createEvent(organiser, { accessUserIds: [alice.id] });
    const anonymous = await connect(`/ws/events/${event.id}`);
    const stranger = await connect(`/ws/events/${event.id}`, { token: bob.token });
    const listed = await connect(`/ws/events/${event.id}`, { token: alice.token });
    const owner = await connect(`/ws/events/${event.id}`, { token: organiser.token });
    for (const s of [anonymous, stranger, listed, owner]) await s.next('welcome');
    await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { visibility: 'private' },
    });
    expect((await anonymous.closed()).code).toBe(4403);
    expect((await stranger.closed()).code).toBe(4403);
    expect((await listed.next<EventUpdatedEvent>('event.updated')).event.visibility).toBe(
      'private',
    );
    await owner.next('event.updated');
    expect(listed.closeEvent).toBeNull();
    expect(owner.closeEvent).toBeNull();
    listed.close();
    owner.close();
  });

  it('closes a watcher with 4403 when their access is revoked', async () => {
    const event = await createEvent(organiser, {
      visibility: 'private',
      accessUserIds: [alice.id],
    });
    const socket = await connect(`/ws/events/${event.id}`, { token: alice.token });
    await socket.next('welcome');
    const res = await api(`/api/events/${event.id}/access/${alice.id}`, {
      method: 'DELETE',
      token: organiser.token,
    });
    expect(res.status).toBe(200);
    expect((await socket.closed()).code).toBe(4403);
    expect((await upgrade(`/ws/events/${event.id}`, { token: alice.token })).status).toBe(403);
  });
});

describe('resume and eviction', () => {
  it('replays exactly the missed seat changes, in order, to a client that resumes', async () => {
    const event = await createEvent(organiser, { capacity: 10 });
    const first = await connect(`/ws/events/${event.id}`);
    const welcome = await first.next<EventWelcome>('welcome');
    first.close();
    await booked(alice, event.id, 2);
    await booked(bob, event.id, 3);
    const again = await connect(`/ws/events/${event.id}`, {
      query: { since: welcome.seq, epoch: welcome.epoch },
    });
    const resumed = await again.next<EventWelcome>('welcome');
    expect(resumed.recovery).toEqual({ requested: true, recovered: true, missed: 2 });
    const replay = [
      await again.next<BookingCreatedEvent>('booking.created'),
      await again.next<BookingCreatedEvent>('booking.created'),
    ];
    expect(replay.map((e) => [e.seq, e.availableSeats])).toEqual([
      [1, 8],
      [2, 5],
    ]);
    again.close();
  });

  it('keeps its seats in its own storage across an eviction and keeps counting from there', async () => {
    const event = await createEvent(organiser, { capacity: 6 });
    const socket = await connect(`/ws/events/${event.id}`);
    const welcome = await socket.next<EventWelcome>('welcome');
    await booked(alice, event.id, 2);
    await socket.next('booking.created');
    await evictDurableObject(room(event.id));
    await booked(bob, event.id, 1);
    const after = await socket.next<BookingCreatedEvent>('booking.created');
    expect(after).toMatchObject({ seq: 2, bookedSeats: 3, availableSeats: 3 });
    const fresh = await connect(`/ws/events/${event.id}`);
    const w = await fresh.next<EventWelcome>('welcome');
    expect(w.epoch).toBe(welcome.epoch);
    expect(w.snapshot).toMatchObject({ availableSeats: 3, watchers: { connections: 2 } });
    socket.close();
    fresh.close();
  });
});

describe("seed 002's console test", () => {
  it('pongs a ping on a plain socket with a token in the query, then shows a booking from another client', async () => {
    const event = await createEvent(organiser, { capacity: 50 });
    // const ws = new WebSocket(`ws://localhost:3000/ws/events/1?token=${token}`)
    const res = await upgrade(`/ws/events/${event.id}`, { query: { token: alice.token } });
    expect(res.status).toBe(101);
    const ws = res.webSocket;
    if (!ws) throw new Error('no socket');
    ws.accept();
    const received: { type: string; availableSeats?: number }[] = [];
    const arrived = new Map<string, () => void>();
    ws.addEventListener('message', (e) => {
      const frame = JSON.parse(String(e.data)) as { type: string; availableSeats?: number };
      received.push(frame);
      arrived.get(frame.type)?.();
    });
    const waitFor = (type: string) =>
      received.some((f) => f.type === type)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no ${type}`)), 5000);
            arrived.set(type, () => {
              clearTimeout(timer);
              resolve();
            });
          });
    await waitFor('welcome');
    // ws.send(JSON.stringify({ type: 'ping' }))
    ws.send(JSON.stringify({ type: 'ping' }));
    await waitFor('pong');
    expect(received.find((f) => f.type === 'pong')).toEqual({ type: 'pong' });
    // POST /api/bookings { "eventId": 1 } from another tab, with that user's bearer token.
    const booking = await api('/api/bookings', {
      method: 'POST',
      token: bob.token,
      json: { eventId: event.id },
    });
    expect(booking.status).toBe(201);
    await waitFor('booking.created');
    expect(received.find((f) => f.type === 'booking.created')?.availableSeats).toBe(49);
    ws.close(1000, 'done');
  });
});
