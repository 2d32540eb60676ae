// Bookings commit in the event's object (docs/bookings.md): a booking is answered from the
// object's own SQLite with D1 out of reach, reads of one event are current before D1 catches up,
// the access list is the object's, keys are claimed across events without D1, and an event
// booked before this release is copied from D1 once.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../worker/auth/tokens';
import type { BookingCreatedEvent, BookingCreatedResponse } from '../../worker/protocol/events';
import { bookingRequestHash } from '../../worker/rooms/event/answers';
import type { EventRoom } from '../../worker/rooms/event/EventRoom';
import {
  book,
  booked,
  claimsOf,
  createEvent,
  DAY_MS,
  type ErrorBody,
  eventOf,
  ledger,
  roomOf,
  settled,
} from './event-fixtures';
import { api, connect, drained, env, register, type TestUser, unique } from './helpers';

let organiser: TestUser;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  [organiser, alice, bob] = await Promise.all([
    register('organiser'),
    register('listener', 'Alice'),
    register('listener', 'Bob'),
  ]);
});

// Everything a booking could read or write in D1. Renamed away, D1 has none of it: any query of
// them fails, as it would while D1 is unreachable.
const BOOKING_TABLES = ['events', 'event_access', 'bookings', 'tickets', 'idempotency_keys'];

async function takeD1Away(): Promise<void> {
  await env.DB.batch(
    BOOKING_TABLES.map((t) => env.DB.prepare(`ALTER TABLE ${t} RENAME TO ${t}_away`)),
  );
}

async function bringD1Back(): Promise<void> {
  await env.DB.batch(
    BOOKING_TABLES.map((t) => env.DB.prepare(`ALTER TABLE ${t}_away RENAME TO ${t}`)),
  );
}

/** What the object holds, read inside it. */
function inObject(eventId: string) {
  return runInDurableObject(roomOf(eventId), (room: EventRoom, state) => {
    const one = (q: string) => state.storage.sql.exec<{ n: number }>(q).one().n;
    return {
      bookedSeats: one('SELECT booked_seats AS n FROM ev_event'),
      bookings: one('SELECT COUNT(*) AS n FROM ev_bookings'),
      outboxPending: room.stats().outboxPending,
    };
  });
}

describe('the commit point is the object', () => {
  it('answers bookings while D1 is out of reach, and D1 catches up from the outbox after', async () => {
    const event = await createEvent(organiser, { capacity: 10 });
    // The object meets the event (and alice's keys are read) while D1 is there.
    await booked(alice, event.id, 1);
    expect((await book(alice, { eventId: event.id }, unique('key'))).status).toBe(201);
    const watcher = await connect(`/ws/events/${event.id}`);
    await watcher.next('welcome');
    await settled(event.id);
    // Waking up reads no D1 either.
    await evictDurableObject(roomOf(event.id));
    await takeD1Away();
    try {
      const key = unique('key');
      const keyed = await book(alice, { eventId: event.id, quantity: 3 }, key);
      expect(keyed.status).toBe(201);
      expect(await book(alice, { eventId: event.id, quantity: 3 }, key)).toEqual({
        ...keyed,
        replayed: true,
      });
      const plain = await book(bob, { eventId: event.id, quantity: 2 });
      expect(plain.status).toBe(201);
      expect((JSON.parse(plain.text) as BookingCreatedResponse).availableSeats).toBe(3);
      // Reads of the event are the object's: current before D1 has any of it.
      expect(await eventOf(event.id)).toMatchObject({ bookedSeats: 7, availableSeats: 3 });
      const seen = [];
      for (let i = 0; i < 2; i++)
        seen.push(await watcher.next<BookingCreatedEvent>('booking.created'));
      expect(seen.map((f) => f.availableSeats)).toEqual([5, 3]);
      expect(await inObject(event.id)).toMatchObject({ bookedSeats: 7, bookings: 4 });
      expect((await inObject(event.id)).outboxPending).toBeGreaterThan(0);
      const stale = await env.DB.prepare('SELECT booked_seats AS n FROM events_away WHERE id = ?')
        .bind(event.id)
        .first<{ n: number }>();
      expect(stale?.n).toBe(2);
    } finally {
      await bringD1Back();
    }
    // The object's alarm retries the outbox (with backoff) until D1 takes it.
    await drained(roomOf(event.id), 15_000);
    expect(await ledger(event.id)).toMatchObject({
      bookedSeats: 7,
      confirmedSeats: 7,
      validTickets: 7,
    });
    watcher.close();
  });

  it('lets exactly one of two events take a key they race for, without D1', async () => {
    const [a, b] = [await createEvent(organiser), await createEvent(organiser)];
    // Both objects and bob's key claims have met D1 once.
    await Promise.all([eventOf(a.id), eventOf(b.id)]);
    expect((await book(bob, { eventId: a.id }, unique('key'))).status).toBe(201);
    await Promise.all([settled(a.id), settled(b.id)]);
    await takeD1Away();
    try {
      for (let round = 0; round < 5; round++) {
        const raced = unique('race');
        const answers = await Promise.all([
          book(bob, { eventId: a.id }, raced),
          book(bob, { eventId: b.id }, raced),
        ]);
        expect(answers.map((x) => x.status).sort()).toEqual([201, 422]);
        const loser = answers.find((x) => x.status === 422);
        expect((JSON.parse(loser?.text ?? '{}') as ErrorBody).error.code).toBe(
          'idempotency_key_reused',
        );
      }
    } finally {
      await bringD1Back();
    }
    await Promise.all([drained(roomOf(a.id), 15_000), drained(roomOf(b.id), 15_000)]);
    const total = (await ledger(a.id)).bookedSeats + (await ledger(b.id)).bookedSeats;
    expect(total).toBe(1 + 5);
  });

  it('refuses a key that booked for another event once its answer expired', async () => {
    const [a, b] = [await createEvent(organiser), await createEvent(organiser)];
    const key = unique('key');
    const first = await book(alice, { eventId: a.id }, key);
    const bookingId = (JSON.parse(first.text) as BookingCreatedResponse).booking.id;
    await settled(a.id);
    await runInDurableObject(claimsOf(alice.id), (_c, state) => {
      state.storage.sql.exec(
        'UPDATE key_claims SET at = at - ? WHERE user_id = ? AND key = ?',
        25 * 3600_000,
        alice.id,
        key,
      );
    });
    const late = await book(alice, { eventId: b.id }, key);
    expect(late.status).toBe(422);
    expect((JSON.parse(late.text) as ErrorBody).error.message).toContain(bookingId);
    expect((await ledger(b.id)).bookings).toHaveLength(0);
  });
});

describe("a private event's access list lives in its object", () => {
  it('decides every booking from the list it keeps, and a grant or revoke takes effect at once', async () => {
    const event = await createEvent(organiser, {
      visibility: 'private',
      accessUserIds: [alice.id],
    });
    expect((await book(alice, { eventId: event.id })).status).toBe(201);
    // D1 changed behind the object's back is not asked: the object is the only writer of grants.
    await env.DB.batch([
      env.DB.prepare('DELETE FROM event_access WHERE event_id = ? AND user_id = ?').bind(
        event.id,
        alice.id,
      ),
      env.DB.prepare(
        'INSERT INTO event_access (event_id, user_id, granted_at) VALUES (?, ?, ?)',
      ).bind(event.id, bob.id, Date.now()),
    ]);
    expect((await book(alice, { eventId: event.id })).status).toBe(201);
    expect((await book(bob, { eventId: event.id })).status).toBe(403);

    const revoke = await api(`/api/events/${event.id}/access/${alice.id}`, {
      method: 'DELETE',
      token: organiser.token,
    });
    expect(revoke.status).toBe(200);
    const refused = await book(alice, { eventId: event.id });
    expect(refused.status).toBe(403);
    expect((JSON.parse(refused.text) as ErrorBody).error.code).toBe('event_access_denied');
    const grant = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: organiser.token,
      json: { userId: bob.id },
    });
    expect(grant.status).toBe(201);
    expect((await book(bob, { eventId: event.id })).status).toBe(201);
    const list = await api(`/api/events/${event.id}/access`, { token: organiser.token });
    const { access } = (await list.json()) as { access: { userId: string }[] };
    expect(access.map((a) => a.userId)).toEqual([bob.id]);
    // D1 follows the object's list.
    await settled(event.id);
    const inD1 = await env.DB.prepare('SELECT user_id FROM event_access WHERE event_id = ?')
      .bind(event.id)
      .all<{ user_id: string }>();
    expect(inD1.results.map((r) => r.user_id)).toEqual([bob.id]);
  });
});

describe('an event booked before this release', () => {
  /**
   * A user of the release before, whose keys' shard has not been asked yet: it reads them from
   * D1 on its first claim.
   */
  async function legacyUser(): Promise<TestUser> {
    const used = await env.DB.prepare('SELECT DISTINCT substr(id, 1, 2) AS p FROM users').all<{
      p: string;
    }>();
    const taken = new Set(used.results.map((r) => r.p));
    const hex = '0123456789abcdef';
    const prefix = [...hex].flatMap((a) => [...hex].map((b) => a + b)).find((p) => !taken.has(p));
    const user = { id: `${prefix}${crypto.randomUUID().slice(2)}`, name: 'Old', role: 'listener' };
    await env.DB.prepare(
      `INSERT INTO users (id, email, password_hash, display_name, role, created_at)
       VALUES (?, ?, 'x', ?, 'listener', ?)`,
    )
      .bind(user.id, `${user.id}@example.test`, user.name, Date.now())
      .run();
    const { token } = await issueToken({ ...user, role: 'listener' }, env.JWT_SECRET);
    return { ...user, email: `${user.id}@example.test`, token };
  }

  /** Writes an event the way the release that committed bookings in D1 left it. */
  async function legacyEvent() {
    const alice = await legacyUser();
    const bob = await legacyUser();
    const id = crypto.randomUUID();
    const now = Date.now();
    const booking = { id: crypto.randomUUID(), ticket: crypto.randomUUID(), key: unique('old') };
    const answer = JSON.stringify({ booking: { id: booking.id, legacy: true }, availableSeats: 2 });
    const refusalKey = unique('refused');
    const refusal = JSON.stringify({
      error: { code: 'sold_out', message: 'x' },
      availableSeats: 0,
    });
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO events (id, organiser_id, title, description, venue, starts_at, capacity,
           booked_seats, visibility, created_at, updated_at)
         VALUES (?, ?, 'Old night', '', 'Hall', ?, 5, 3, 'private', ?, ?)`,
      ).bind(id, organiser.id, now + 7 * DAY_MS, now, now),
      env.DB.prepare(
        'INSERT INTO event_access (event_id, user_id, granted_at) VALUES (?, ?, ?), (?, ?, ?)',
      ).bind(id, alice.id, now, id, bob.id, now),
      env.DB.prepare(
        `INSERT INTO bookings (id, event_id, user_id, quantity, status, idempotency_key, created_at)
         VALUES (?, ?, ?, 1, 'confirmed', ?, ?), (?, ?, ?, 2, 'confirmed', NULL, ?)`,
      ).bind(booking.id, id, alice.id, booking.key, now, crypto.randomUUID(), id, bob.id, now),
      env.DB.prepare(
        `INSERT INTO tickets (id, booking_id, event_id, holder_id, status, created_at)
         VALUES (?, ?, ?, ?, 'valid', ?)`,
      ).bind(booking.ticket, booking.id, id, alice.id, now),
      env.DB.prepare(
        `INSERT INTO idempotency_keys
           (user_id, scope, key, request_hash, response_status, response_body, created_at)
         VALUES (?, 'booking', ?, ?, 201, ?, ?), (?, 'booking', ?, ?, 409, ?, ?)`,
      ).bind(
        alice.id,
        booking.key,
        await bookingRequestHash(id, 1),
        answer,
        now,
        bob.id,
        refusalKey,
        await bookingRequestHash(id, 1),
        refusal,
        now,
      ),
    ]);
    return { id, alice, bob, booking, answer, refusalKey, refusal };
  }

  it('is copied from D1 once: seats, access, answers to replay, bookings to cancel and transfer', async () => {
    const old = await legacyEvent();
    const { alice, bob } = old;
    expect(await eventOf(old.id, alice.token)).toMatchObject({ bookedSeats: 3, availableSeats: 2 });
    // From now on the object answers without D1, after a wake-up too.
    await evictDurableObject(roomOf(old.id));
    await takeD1Away();
    try {
      expect(await book(alice, { eventId: old.id }, old.booking.key)).toEqual({
        status: 201,
        text: old.answer,
        replayed: true,
      });
      expect(await book(bob, { eventId: old.id }, old.refusalKey)).toEqual({
        status: 409,
        text: old.refusal,
        replayed: true,
      });
      expect((await book(organiser, { eventId: old.id, quantity: 3 })).status).toBe(409);
    } finally {
      await bringD1Back();
    }
    const moved = await api(`/api/tickets/${old.booking.ticket}/transfer`, {
      method: 'POST',
      token: alice.token,
      json: { toUserId: bob.id },
    });
    expect(moved.status).toBe(200);
    const cancel = await api(`/api/bookings/${old.booking.id}`, {
      method: 'DELETE',
      token: organiser.token,
    });
    expect(cancel.status).toBe(200);
    expect(((await cancel.json()) as { availableSeats: number }).availableSeats).toBe(3);
    expect(await ledger(old.id)).toMatchObject({ bookedSeats: 2, confirmedSeats: 2 });
    const outsider = await register('listener');
    expect((await book(outsider, { eventId: old.id })).status).toBe(403);
  });

  it('refuses a key its user booked with before this release, for any other event', async () => {
    const old = await legacyEvent();
    const other = await createEvent(organiser);
    const reused = await book(old.alice, { eventId: other.id }, old.booking.key);
    expect(reused.status).toBe(422);
    expect((JSON.parse(reused.text) as ErrorBody).error.code).toBe('idempotency_key_reused');
    expect((await ledger(other.id)).bookings).toHaveLength(0);
  });
});
