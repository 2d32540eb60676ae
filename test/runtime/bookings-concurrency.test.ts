// Bookings never oversell (DESIGN.md invariant 1): under parallel load through the worker, with
// cancellations racing bookings, across an eviction mid-stream, and at the guard in the event's
// object itself — its table refuses an oversold count, a half-written booking rolls back whole,
// and D1 (a copy) cannot move the seats it sells.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import type {
  BookingCreatedEvent,
  BookingCreatedResponse,
  EventWelcome,
} from '../../worker/protocol/events';
import type { EventRoom } from '../../worker/rooms/event/EventRoom';
import {
  book,
  booked,
  createEvent,
  type ErrorBody,
  eventOf,
  ledger,
  roomOf,
  settled,
} from './event-fixtures';
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

describe('the guard in the object', () => {
  it('refuses, in the table itself, a seat count above capacity or below zero', async () => {
    const event = await createEvent(organiser, { capacity: 2 });
    await booked(userAt(0), event.id, 2);
    // A writer that skipped every check (there is none) still could not oversell or undersell.
    const attempts = await runInDurableObject(roomOf(event.id), (_room: EventRoom, state) =>
      ['capacity + 1', '-1'].map((value) => {
        try {
          state.storage.sql.exec(`UPDATE ev_event SET booked_seats = ${value}`);
          return 'written';
        } catch (err) {
          return String(err);
        }
      }),
    );
    for (const a of attempts) expect(a).toMatch(/constraint/i);
    expect((await eventOf(event.id)).bookedSeats).toBe(2);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 2, confirmedSeats: 2 });
  });

  it('rolls the whole booking back when a later write fails, and keeps nothing under its key', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const watcher = await watch(event.id);
    const user = userAt(1);
    // Every ticket insert fails: the seats were already taken and the booking written.
    await runInDurableObject(roomOf(event.id), (_room: EventRoom, state) => {
      state.storage.sql.exec(
        "CREATE TRIGGER refuse_tickets BEFORE INSERT ON ev_tickets BEGIN SELECT RAISE(ABORT, 'refused (test)'); END",
      );
    });
    const key = crypto.randomUUID();
    const failed = await book(user, { eventId: event.id, quantity: 2 }, key);
    expect(failed.status).toBe(500);
    const kept = await runInDurableObject(roomOf(event.id), (room: EventRoom, state) => {
      const one = (q: string) => state.storage.sql.exec<{ n: number }>(q).one().n;
      state.storage.sql.exec('DROP TRIGGER refuse_tickets');
      return {
        booked: one('SELECT booked_seats AS n FROM ev_event'),
        bookings: one('SELECT COUNT(*) AS n FROM ev_bookings'),
        answers: one('SELECT COUNT(*) AS n FROM ev_answers'),
        outbox: room.stats().outboxPending,
        seq: room.stats().seq,
      };
    });
    expect(kept).toEqual({ booked: 0, bookings: 0, answers: 0, outbox: 0, seq: 0 });
    // Nothing was stored under the key, so the retry books for real, and watchers see it once.
    const retry = await book(user, { eventId: event.id, quantity: 2 }, key);
    expect(retry).toMatchObject({ status: 201, replayed: false });
    expect(await watcher.socket.next<BookingCreatedEvent>('booking.created')).toMatchObject({
      seq: 1,
      bookedSeats: 2,
    });
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 2, validTickets: 2 });
    watcher.socket.close();
  });

  it('keeps its own count when D1 is changed behind its back, and D1 takes the count back', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    await booked(userAt(0), event.id, 1);
    const watcher = await watch(event.id);
    await settled(event.id);
    // D1 is a copy: someone writing to it does not move the seats the object sells.
    await env.DB.prepare('UPDATE events SET booked_seats = booked_seats + 3 WHERE id = ?')
      .bind(event.id)
      .run();
    expect((await book(userAt(1), { eventId: event.id, quantity: 4 })).status).toBe(201);
    const refused = await book(userAt(2), { eventId: event.id, quantity: 1 });
    expect((JSON.parse(refused.text) as ErrorBody).error.code).toBe('sold_out');
    expect(await watcher.socket.next<BookingCreatedEvent>('booking.created')).toMatchObject({
      bookedSeats: 5,
      availableSeats: 0,
    });
    // The next write from the outbox carries the absolute count.
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 5, confirmedSeats: 5 });
    watcher.socket.close();
  });

  it('confirms exactly the capacity when the object is evicted mid-stream; a retry with its key tells each attempt its outcome', async () => {
    const event = await createEvent(organiser, { capacity: 20 });
    const attempts = Array.from({ length: 60 }, (_, i) => ({
      user: userAt(i),
      key: crypto.randomUUID(),
    }));
    const attempt = (a: (typeof attempts)[number]) =>
      book(a.user, { eventId: event.id }, a.key).catch(() => null);
    // Twelve book, then the object is evicted while the next 48 arrive.
    const before = await Promise.all(attempts.slice(0, 12).map(attempt));
    const [, ...during] = await Promise.all([
      evictDurableObject(roomOf(event.id)),
      ...attempts.slice(12).map(attempt),
    ]);
    const firsts = [...before, ...during];
    // An attempt cut off by the eviction may or may not have committed: its key says which.
    const finals = await Promise.all(
      attempts.map((a, i) => {
        const first = firsts[i];
        return first && (first.status === 201 || first.status === 409)
          ? first
          : book(a.user, { eventId: event.id }, a.key);
      }),
    );
    for (const f of finals) expect([201, 409]).toContain(f.status);
    const wins = finals.filter((f) => f.status === 201);
    expect(wins).toHaveLength(20);
    const ids = new Set(wins.map((w) => (JSON.parse(w.text) as BookingCreatedResponse).booking.id));
    expect(ids.size).toBe(20);
    expect(await ledger(event.id)).toMatchObject({
      bookedSeats: 20,
      confirmedSeats: 20,
      validTickets: 20,
    });
    expect((await eventOf(event.id)).availableSeats).toBe(0);
  });
});
