// Issue 4 end to end against `wrangler dev`: 300 concurrent booking attempts from 100 users for
// 50 seats, a tenth of them retried under the same Idempotency-Key, watched over real sockets;
// then cancellations hand seats back and the watchers see them.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Frame } from '../support/frames';
import { api, baseUrl, connect, type E2EUser, register } from './helpers';

const USERS = 100;
const ATTEMPTS = 300;
const SEATS = 50;
const RETRIED = ATTEMPTS / 10;

interface Answer {
  status: number;
  text: string;
  replayed: boolean;
}

interface Attempt {
  user: E2EUser;
  key: string;
  first: Promise<Answer>;
  retry?: Promise<Answer>;
}

async function inBatches<T>(count: number, size: number, make: (i: number) => Promise<T>) {
  const out: T[] = [];
  for (let i = 0; i < count; i += size) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(size, count - i) }, (_, j) => make(i + j)),
      )),
    );
  }
  return out;
}

async function book(user: E2EUser, eventId: string, key: string): Promise<Answer> {
  const res = await fetch(`${baseUrl()}/api/bookings`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${user.token}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body: JSON.stringify({ eventId, quantity: 1 }),
  });
  return {
    status: res.status,
    text: await res.text(),
    replayed: res.headers.get('idempotent-replayed') === 'true',
  };
}

/** Waits (at most 10 s) until D1's event listing shows the event's committed seats. */
async function untilD1Has(eventId: string, bookedSeats: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    let cursor: string | null = null;
    let seen: number | undefined;
    do {
      const res: {
        body: { events: { id: string; bookedSeats: number }[]; nextCursor: string | null };
      } = await api(`/api/events?limit=100${cursor ? `&after=${cursor}` : ''}`);
      seen ??= res.body.events.find((e) => e.id === eventId)?.bookedSeats;
      cursor = res.body.nextCursor;
    } while (cursor && seen === undefined);
    if (seen === bookedSeats) return;
    if (Date.now() > deadline) throw new Error('D1 did not catch up with the event');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lastSeats = (frames: Frame[]) =>
  frames.filter((f) => typeof f.availableSeats === 'number').at(-1)?.availableSeats;

describe('booking an event with 50 seats under load', () => {
  let organiser: E2EUser;
  let users: E2EUser[];
  let eventId: string;
  let watchers: Awaited<ReturnType<typeof connect>>[] = [];

  beforeAll(async () => {
    organiser = await register('organiser');
    // PBKDF2 makes each registration deliberately slow; ten at a time keeps two cores busy.
    users = await inBatches(USERS, 10, () => register('listener'));
    const created = await api<{ event: { id: string } }>('/api/events', {
      method: 'POST',
      token: organiser.token,
      json: {
        title: 'Load test night',
        venue: 'Loopback Arena',
        startsAt: Date.now() + 86_400_000,
        capacity: SEATS,
      },
    });
    expect(created.status).toBe(201);
    eventId = created.body.event.id;
    watchers = await Promise.all([
      connect(`/ws/events/${eventId}`),
      connect(`/ws/events/${eventId}`),
      connect(`/ws/events/${eventId}`, { token: (users[0] as E2EUser).token }),
      connect(`/ws/events/${eventId}`, { token: organiser.token }),
    ]);
    for (const w of watchers) {
      expect(
        (await w.next<{ snapshot: { availableSeats: number } }>('welcome')).snapshot.availableSeats,
      ).toBe(SEATS);
    }
  });

  afterAll(() => {
    for (const w of watchers) w.raw.terminate();
  });

  it('confirms exactly 50 seats, never twice for one key, and every retry gets the first answer', async () => {
    // Each attempt has its own key; every tenth is sent twice. Half the retries race the
    // original, half follow it once it has answered.
    const attempts: Attempt[] = Array.from({ length: ATTEMPTS }, (_, i) => {
      const user = users[i % USERS] as E2EUser;
      const key = randomUUID();
      const first = book(user, eventId, key);
      const attempt: Attempt = { user, key, first };
      if (i % 10 === 0) {
        attempt.retry =
          (i / 10) % 2 === 0
            ? book(user, eventId, key)
            : first.then(() => book(user, eventId, key));
      }
      return attempt;
    });
    const firsts = await Promise.all(attempts.map((a) => a.first));
    const retried = attempts.filter((a) => a.retry);
    expect(retried).toHaveLength(RETRIED);
    const retries = await Promise.all(retried.map((a) => a.retry as Promise<Answer>));

    // Whichever of a pair the room took first, both carry the same status and the same bytes,
    // and exactly one of them is the original.
    retried.forEach((a, i) => {
      const first = firsts[attempts.indexOf(a)] as Answer;
      const retry = retries[i] as Answer;
      expect(retry.status).toBe(first.status);
      expect(retry.text).toBe(first.text);
      expect([first.replayed, retry.replayed].filter(Boolean)).toHaveLength(1);
    });

    for (const answer of [...firsts, ...retries]) expect([201, 409]).toContain(answer.status);
    const wins = firsts.filter((a) => a.status === 201);
    expect(wins).toHaveLength(SEATS);
    const bookingIds = new Set(
      wins.map((a) => (JSON.parse(a.text) as { booking: { id: string } }).booking.id),
    );
    expect(bookingIds.size).toBe(SEATS);
    for (const refused of firsts.filter((a) => a.status === 409)) {
      expect((JSON.parse(refused.text) as { error: { code: string } }).error.code).toBe('sold_out');
    }

    const event = await api<{ event: { availableSeats: number; bookedSeats: number } }>(
      `/api/events/${eventId}`,
    );
    expect(event.body.event).toMatchObject({ availableSeats: 0, bookedSeats: SEATS });

    // What the users hold agrees: 50 confirmed bookings in all, the same ones that were answered.
    // `/api/me/bookings` reads D1, which follows the event's object (docs/bookings.md).
    await untilD1Has(eventId, SEATS);
    const held = await inBatches(USERS, 20, (i) =>
      api<{ bookings: { id: string; eventId: string; status: string }[] }>('/api/me/bookings', {
        token: (users[i] as E2EUser).token,
      }),
    );
    const confirmed = held
      .flatMap((h) => h.body.bookings)
      .filter((b) => b.eventId === eventId && b.status === 'confirmed');
    expect(confirmed).toHaveLength(SEATS);
    expect(new Set(confirmed.map((b) => b.id))).toEqual(bookingIds);

    // Every watcher saw all 50 bookings in seq order and ends on 0 seats.
    for (const w of watchers) {
      const created = [];
      for (let i = 0; i < SEATS; i++)
        created.push(
          await w.next<{ seq: number; availableSeats: number }>('booking.created', 20_000),
        );
      expect(created.map((f) => f.seq)).toEqual(Array.from({ length: SEATS }, (_, i) => i + 1));
      expect(created.at(-1)?.availableSeats).toBe(0);
      expect(lastSeats(w.received)).toBe(0);
    }
  });

  it('returns seats on cancellation, refuses a second cancellation, and watchers see the seats come back', async () => {
    const mine = await inBatches(USERS, 20, (i) =>
      api<{ bookings: { id: string; eventId: string; status: string }[] }>('/api/me/bookings', {
        token: (users[i] as E2EUser).token,
      }).then((r) => ({ user: users[i] as E2EUser, bookings: r.body.bookings })),
    );
    const toCancel = mine
      .flatMap(({ user, bookings }) =>
        bookings
          .filter((b) => b.eventId === eventId && b.status === 'confirmed')
          .map((b) => ({ user, id: b.id })),
      )
      .slice(0, 10);
    expect(toCancel).toHaveLength(10);
    const answers = await Promise.all(
      toCancel.map((c) => api(`/api/bookings/${c.id}`, { method: 'DELETE', token: c.user.token })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    const again = await api<{ error: { code: string } }>(`/api/bookings/${toCancel[0]?.id}`, {
      method: 'DELETE',
      token: toCancel[0]?.user.token,
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_cancelled');

    const event = await api<{ event: { availableSeats: number } }>(`/api/events/${eventId}`);
    expect(event.body.event.availableSeats).toBe(10);
    for (const w of watchers) {
      const cancelled = [];
      for (let i = 0; i < 10; i++)
        cancelled.push(await w.next<{ seq: number }>('booking.cancelled', 20_000));
      expect(cancelled.map((f) => f.seq)).toEqual(
        Array.from({ length: 10 }, (_, i) => SEATS + 1 + i),
      );
      expect(lastSeats(w.received)).toBe(10);
    }
  });
});
