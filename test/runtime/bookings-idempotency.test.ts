// Idempotency-Key on POST /api/bookings: a retry gets the first answer (status and body, byte
// for byte) and books nothing new; a key reused for another request is refused; answers are
// kept 24 hours and then pruned.
import { createScheduledController, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import worker from '../../worker/index';
import type { BookingCreatedEvent } from '../../worker/protocol/events';
import type { EventRoom } from '../../worker/rooms/event/EventRoom';
import { event as eventKind } from '../../worker/rooms/event/kind';
import {
  ageBookingKey,
  book,
  booked,
  createEvent,
  type ErrorBody,
  ledger,
  settled,
} from './event-fixtures';
import { api, connect, env, register, type TestUser, unique } from './helpers';

const HOUR = 60 * 60 * 1000;

let organiser: TestUser;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  [organiser, alice, bob] = await Promise.all([
    register('organiser'),
    register('listener'),
    register('listener'),
  ]);
});

async function storedKeys(userId: string, key: string) {
  return (
    await env.DB.prepare(
      'SELECT scope, request_hash, response_status, response_body, created_at FROM idempotency_keys WHERE user_id = ? AND key = ?',
    )
      .bind(userId, key)
      .all<{ scope: string; response_status: number; response_body: string; created_at: number }>()
  ).results;
}

const room = (eventId: string) =>
  env.EVENT_ROOM.get(env.EVENT_ROOM.idFromName(eventKind.channelOf(eventId)));

describe('retrying with the same Idempotency-Key', () => {
  it('returns the first answer byte for byte and books nothing new', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const watcher = await connect(`/ws/events/${event.id}`);
    await watcher.next('welcome');
    const key = unique('key');
    const first = await book(alice, { eventId: event.id, quantity: 2 }, key);
    expect(first.status).toBe(201);
    expect(first.replayed).toBe(false);
    for (let i = 0; i < 3; i++) {
      const retry = await book(alice, { eventId: event.id, quantity: 2 }, key);
      expect(retry).toEqual({ status: 201, text: first.text, replayed: true });
    }
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 2, validTickets: 2 });
    expect((await ledger(event.id)).bookings).toHaveLength(1);
    await watcher.next('booking.created');
    await new Promise((r) => setTimeout(r, 50));
    expect(watcher.all('booking.created')).toHaveLength(1);
    watcher.close();
  });

  it('copies the answer to D1 with the booking, under the user and the booking scope', async () => {
    const event = await createEvent(organiser);
    const key = unique('key');
    const first = await book(alice, { eventId: event.id, quantity: 1 }, key);
    await settled(event.id);
    const rows = await storedKeys(alice.id, key);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      scope: 'booking',
      response_status: 201,
      response_body: first.text,
    });
    expect((await ledger(event.id)).bookings[0]?.idempotency_key).toBe(key);
  });

  it('lets browser clients read the replay header', async () => {
    const event = await createEvent(organiser);
    const res = await api('/api/bookings', {
      method: 'POST',
      token: alice.token,
      headers: { origin: 'https://app.example.test', 'idempotency-key': unique('key') },
      json: { eventId: event.id },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('access-control-expose-headers')).toContain('Idempotent-Replayed');
  });

  it('treats a body that only spells out the default quantity as the same request', async () => {
    const event = await createEvent(organiser);
    const key = unique('key');
    const first = await book(alice, { eventId: event.id }, key);
    const retry = await book(alice, { quantity: 1, eventId: event.id }, key);
    expect(retry).toEqual({ status: 201, text: first.text, replayed: true });
  });

  it('gives every concurrent retry the first answer while the first is still in flight', async () => {
    const event = await createEvent(organiser, { capacity: 20 });
    const key = unique('key');
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => book(alice, { eventId: event.id, quantity: 3 }, key)),
    );
    expect(new Set(answers.map((a) => `${a.status} ${a.text}`)).size).toBe(1);
    expect(answers[0]?.status).toBe(201);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 3, validTickets: 3 });
  });

  it('replays a refusal too: a sold-out answer stays the answer after seats come back', async () => {
    const event = await createEvent(organiser, { capacity: 1 });
    const taken = await booked(bob, event.id, 1);
    const key = unique('key');
    const refused = await book(alice, { eventId: event.id, quantity: 1 }, key);
    expect(refused.status).toBe(409);
    expect((JSON.parse(refused.text) as ErrorBody).error.code).toBe('sold_out');
    await api(`/api/bookings/${taken.id}`, { method: 'DELETE', token: bob.token });
    const retry = await book(alice, { eventId: event.id, quantity: 1 }, key);
    expect(retry).toEqual({ status: 409, text: refused.text, replayed: true });
    expect((await ledger(event.id)).bookedSeats).toBe(0);
    // A new key is a new attempt.
    expect((await book(alice, { eventId: event.id, quantity: 1 }, unique('key'))).status).toBe(201);
  });

  it('books twice for two requests without a key', async () => {
    const event = await createEvent(organiser);
    await booked(alice, event.id, 1);
    await booked(alice, event.id, 1);
    expect((await ledger(event.id)).bookings).toHaveLength(2);
  });

  it('keeps keys per user: the same key from two users books twice', async () => {
    const event = await createEvent(organiser);
    const key = unique('shared');
    expect((await book(alice, { eventId: event.id }, key)).status).toBe(201);
    const other = await book(bob, { eventId: event.id }, key);
    expect(other.status).toBe(201);
    expect(other.replayed).toBe(false);
    expect((await ledger(event.id)).bookedSeats).toBe(2);
  });
});

describe('reusing a key for a different request', () => {
  it('refuses a different quantity with 422 idempotency_key_reused and books nothing', async () => {
    const event = await createEvent(organiser, { capacity: 10 });
    const key = unique('key');
    await book(alice, { eventId: event.id, quantity: 1 }, key);
    const reused = await book(alice, { eventId: event.id, quantity: 4 }, key);
    expect(reused.status).toBe(422);
    expect((JSON.parse(reused.text) as ErrorBody).error.code).toBe('idempotency_key_reused');
    expect((await ledger(event.id)).bookedSeats).toBe(1);
  });

  it('refuses the same key for another event, also when both are sent at once', async () => {
    const [first, second] = [await createEvent(organiser), await createEvent(organiser)];
    const key = unique('key');
    expect((await book(alice, { eventId: first.id }, key)).status).toBe(201);
    const reused = await book(alice, { eventId: second.id }, key);
    expect(reused.status).toBe(422);
    expect((await ledger(second.id)).bookings).toHaveLength(0);

    // Two rooms race for one key: exactly one request books, the other is refused.
    for (let round = 0; round < 5; round++) {
      const [a, b] = [await createEvent(organiser), await createEvent(organiser)];
      const raced = unique('race');
      const answers = await Promise.all([
        book(bob, { eventId: a.id }, raced),
        book(bob, { eventId: b.id }, raced),
      ]);
      expect(answers.map((x) => x.status).sort()).toEqual([201, 422]);
      const total = (await ledger(a.id)).bookedSeats + (await ledger(b.id)).bookedSeats;
      expect(total).toBe(1);
    }
  });

  it.each([
    ['empty', ''],
    ['with a space', 'my key'],
    ['longer than 255 characters', 'k'.repeat(256)],
  ])('refuses a key that is %s with invalid_idempotency_key', async (_, key) => {
    const event = await createEvent(organiser);
    const res = await book(alice, { eventId: event.id }, key);
    expect(res.status).toBe(400);
    expect((JSON.parse(res.text) as ErrorBody).error.code).toBe('invalid_idempotency_key');
    expect((await ledger(event.id)).bookings).toHaveLength(0);
  });

  it('stores nothing for a request refused at the door, so a corrected retry can book', async () => {
    const event = await createEvent(organiser, { visibility: 'private' });
    const key = unique('key');
    expect((await book(alice, { eventId: event.id, quantity: 0 }, key)).status).toBe(400);
    expect((await book(alice, { eventId: event.id, quantity: 1 }, key)).status).toBe(403);
    expect(await storedKeys(alice.id, key)).toHaveLength(0);
    await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: organiser.token,
      json: { userId: alice.id },
    });
    expect((await book(alice, { eventId: event.id, quantity: 1 }, key)).status).toBe(201);
  });
});

describe('how long keys are kept', () => {
  it('forgets an answer after 24 hours: a key that only ever got a refusal books again', async () => {
    const event = await createEvent(organiser, { capacity: 1 });
    const taken = await booked(bob, event.id, 1);
    const key = unique('key');
    expect((await book(alice, { eventId: event.id }, key)).status).toBe(409);
    await ageBookingKey(event.id, alice.id, key, 25 * HOUR);
    await api(`/api/bookings/${taken.id}`, { method: 'DELETE', token: bob.token });
    const again = await book(alice, { eventId: event.id }, key);
    expect(again.status).toBe(201);
    expect(again.replayed).toBe(false);
    await settled(event.id);
    const rows = await storedKeys(alice.id, key);
    expect(rows.map((r) => r.response_status)).toEqual([201]);
  });

  it('never lets a key book twice: once its answer expired, the booking still holds it (422)', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const key = unique('key');
    const first = await book(alice, { eventId: event.id }, key);
    const bookingId = (JSON.parse(first.text) as { booking: { id: string } }).booking.id;
    await ageBookingKey(event.id, alice.id, key, 25 * HOUR);
    const late = await book(alice, { eventId: event.id }, key);
    expect(late.status).toBe(422);
    const { error } = JSON.parse(late.text) as ErrorBody;
    expect(error.code).toBe('idempotency_key_reused');
    expect(error.message).toContain(bookingId);
    expect((await ledger(event.id)).bookedSeats).toBe(1);
  });

  it('prunes answers older than 24 hours by the hourly cron, not a room alarm, and keeps fresh ones', async () => {
    const event = await createEvent(organiser);
    const stale = unique('stale');
    await env.DB.prepare(
      `INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body, created_at)
       VALUES (?, 'booking', ?, 'h', 409, '{}', ?)`,
    )
      .bind(bob.id, stale, Date.now() - 25 * HOUR)
      .run();
    const fresh = unique('fresh');
    expect((await book(alice, { eventId: event.id }, fresh)).status).toBe(201);
    await settled(event.id);
    // Idle means asleep: the booking leaves the room no timer to wake it for pruning.
    const tasks = await runInDurableObject(room(event.id), (_: EventRoom, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM channel_tasks WHERE name LIKE '%prune%'")
        .toArray(),
    );
    expect(tasks).toEqual([]);
    await worker.scheduled(createScheduledController({ cron: '17 * * * *' }), env);
    expect(await storedKeys(bob.id, stale)).toHaveLength(0);
    expect(await storedKeys(alice.id, fresh)).toHaveLength(1);
  });
});

describe('watchers and retries', () => {
  it('publishes a booking once however often it is retried', async () => {
    const event = await createEvent(organiser, { capacity: 3 });
    const watcher = await connect(`/ws/events/${event.id}`);
    await watcher.next('welcome');
    const key = unique('key');
    await Promise.all([1, 2, 3].map(() => book(alice, { eventId: event.id }, key)));
    await booked(bob, event.id, 1);
    const seen = [
      await watcher.next<BookingCreatedEvent>('booking.created'),
      await watcher.next<BookingCreatedEvent>('booking.created'),
    ];
    expect(seen.map((e) => [e.seq, e.availableSeats])).toEqual([
      [1, 2],
      [2, 1],
    ]);
    watcher.close();
  });
});
