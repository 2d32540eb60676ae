// Bookings never oversell (DESIGN.md invariant 1): under parallel load through the worker, with
// cancellations racing bookings, and against the D1 guard directly — it refuses a stale or an
// oversized booking and rolls back a half-written one, whatever the room believes.
import { beforeAll, describe, expect, it } from 'vitest';
import { commitBooking } from '../../worker/db/bookings';
import type { EventWelcome, SeatsUpdatedEvent } from '../../worker/protocol/events';
import { book, booked, createEvent, type ErrorBody, ledger } from './event-fixtures';
import { api, connect, env, register, type TestUser } from './helpers';

let organiser: TestUser;
let users: TestUser[];

beforeAll(async () => {
  organiser = await register('organiser');
  users = await Promise.all(Array.from({ length: 20 }, () => register('listener')));
});

const userAt = (i: number) => users[i % users.length] as TestUser;

/** Follows a socket and remembers the last seat count it was told. */
async function watch(eventId: string) {
  const socket = await connect(`/ws/events/${eventId}`);
  const welcome = await socket.next<EventWelcome>('welcome');
  return {
    socket,
    lastAvailable(): number {
      const withSeats = socket.received.filter(
        (f): f is typeof f & { seq: number; availableSeats: number } =>
          typeof f.availableSeats === 'number' && typeof f.seq === 'number',
      );
      return withSeats.at(-1)?.availableSeats ?? welcome.snapshot.availableSeats;
    },
  };
}

describe('parallel bookings', () => {
  it('confirms exactly 10 of 60 parallel one-seat bookings for 10 seats, checked in D1', async () => {
    const event = await createEvent(organiser, { capacity: 10 });
    const watchers = await Promise.all([1, 2, 3].map(() => watch(event.id)));
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => book(userAt(i), { eventId: event.id, quantity: 1 })),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(10);
    const refused = answers.filter((a) => a.status !== 201);
    expect(refused).toHaveLength(50);
    for (const r of refused) {
      expect(r.status).toBe(409);
      expect((JSON.parse(r.text) as ErrorBody).error.code).toBe('sold_out');
    }
    const d1 = await ledger(event.id);
    expect(d1).toMatchObject({ bookedSeats: 10, confirmedSeats: 10, validTickets: 10 });
    expect(d1.bookings).toHaveLength(10);

    for (const w of watchers) {
      const created = [];
      for (let i = 0; i < 10; i++) created.push(await w.socket.next('booking.created'));
      expect(created.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(created.map((e) => e.availableSeats)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect(w.lastAvailable()).toBe(0);
      w.socket.close();
    }
  });

  it('never exceeds capacity with mixed quantities, and refuses only what did not fit', async () => {
    const event = await createEvent(organiser, { capacity: 25 });
    const asks = Array.from({ length: 40 }, (_, i) => 1 + (i % 4));
    const answers = await Promise.all(
      asks.map((quantity, i) => book(userAt(i), { eventId: event.id, quantity })),
    );
    const confirmed = asks.filter((_, i) => answers[i]?.status === 201);
    const sum = confirmed.reduce((n, q) => n + q, 0);
    const d1 = await ledger(event.id);
    expect(sum).toBeLessThanOrEqual(25);
    expect(d1).toMatchObject({ bookedSeats: sum, confirmedSeats: sum, validTickets: sum });
    const left = 25 - sum;
    // Seats only ever went down, so every refused request asked for more than is left now.
    asks.forEach((quantity, i) => {
      if (answers[i]?.status !== 201) {
        expect(answers[i]?.status).toBe(409);
        expect(quantity).toBeGreaterThan(left);
      }
    });
  });

  it('keeps the count exact when cancellations race new bookings', async () => {
    const event = await createEvent(organiser, { capacity: 10 });
    const existing = [];
    for (let i = 0; i < 10; i++) existing.push(await booked(userAt(i), event.id, 1));
    const watcher = await watch(event.id);
    const cancels = existing
      .slice(0, 5)
      .map((b, i) => api(`/api/bookings/${b.id}`, { method: 'DELETE', token: userAt(i).token }));
    const attempts = Array.from({ length: 20 }, (_, i) =>
      book(userAt(i + 5), { eventId: event.id, quantity: 1 }),
    );
    const [cancelled, bookedNow] = await Promise.all([Promise.all(cancels), Promise.all(attempts)]);
    expect(cancelled.every((r) => r.status === 200)).toBe(true);
    const wins = bookedNow.filter((a) => a.status === 201).length;
    expect(wins).toBeLessThanOrEqual(5);
    const d1 = await ledger(event.id);
    expect(d1.bookedSeats).toBe(5 + wins);
    expect(d1.confirmedSeats).toBe(d1.bookedSeats);
    expect(d1.validTickets).toBe(d1.bookedSeats);
    // The watcher ends on the committed number, whatever order the changes came in.
    const changes = 5 + wins;
    for (let i = 0; i < changes; i++) {
      await watcher.socket.next(
        (f) => f.type === 'booking.created' || f.type === 'booking.cancelled',
      );
    }
    expect(watcher.lastAvailable()).toBe(10 - d1.bookedSeats);
    watcher.socket.close();
  });
});

describe('the guard in D1', () => {
  const base = (eventId: string, userId: string) => ({
    eventId,
    bookingId: crypto.randomUUID(),
    ticketIds: [crypto.randomUUID()],
    userId,
    quantity: 1,
    now: Date.now(),
  });

  it('writes nothing when the count it was given is stale (a second writer could not oversell)', async () => {
    const event = await createEvent(organiser, { capacity: 2 });
    const user = userAt(0).id;
    expect(await commitBooking(env.DB, { ...base(event.id, user), expectedBooked: 0 })).toBe(1);
    // Another writer that still believes nothing is booked.
    expect(await commitBooking(env.DB, { ...base(event.id, user), expectedBooked: 0 })).toBeNull();
    expect(await ledger(event.id)).toMatchObject({
      bookedSeats: 1,
      confirmedSeats: 1,
      validTickets: 1,
    });
  });

  it('writes nothing when the seats do not fit, even with the right count', async () => {
    const event = await createEvent(organiser, { capacity: 2 });
    const user = userAt(0).id;
    const tooMany = {
      ...base(event.id, user),
      quantity: 3,
      ticketIds: [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()],
      expectedBooked: 0,
    };
    expect(await commitBooking(env.DB, tooMany)).toBeNull();
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 0, bookings: [], tickets: [] });
  });

  it('rolls the whole booking back when a later statement fails (the key was taken)', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const user = userAt(1).id;
    const idempotency = { key: crypto.randomUUID(), requestHash: 'h', status: 201, body: '{}' };
    await env.DB.prepare(
      `INSERT INTO idempotency_keys (user_id, scope, key, request_hash, response_status, response_body, created_at)
       VALUES (?, 'booking', ?, 'other', 201, '{}', ?)`,
    )
      .bind(user, idempotency.key, Date.now())
      .run();
    await expect(
      commitBooking(env.DB, { ...base(event.id, user), expectedBooked: 0, idempotency }),
    ).rejects.toThrow(/constraint/i);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 0, bookings: [], tickets: [] });
  });

  it('resynchronises the room from D1, tells watchers, and still refuses what does not fit', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    await booked(userAt(0), event.id, 1);
    const watcher = await watch(event.id);
    // Someone writes to D1 behind the room's back: the room still believes 4 seats are left.
    await env.DB.prepare('UPDATE events SET booked_seats = booked_seats + 3 WHERE id = ?')
      .bind(event.id)
      .run();
    const refused = await book(userAt(1), { eventId: event.id, quantity: 2 });
    expect(refused.status).toBe(409);
    expect((JSON.parse(refused.text) as ErrorBody).error.code).toBe('insufficient_seats');
    const resync = await watcher.socket.next<SeatsUpdatedEvent>('seats.updated');
    expect(resync).toMatchObject({ reason: 'resync', bookedSeats: 4, availableSeats: 1 });
    expect((await book(userAt(1), { eventId: event.id, quantity: 1 })).status).toBe(201);
    expect((await ledger(event.id)).bookedSeats).toBe(5);
    await watcher.socket.next('booking.created');
    expect(watcher.lastAvailable()).toBe(0);
    watcher.socket.close();
  });
});
