// Booking and cancelling over REST: what a booking issues, what is refused, and that a refusal
// changes nothing (checked in D1, not only in the answer).
import { beforeAll, describe, expect, it } from 'vitest';
import type { BookingCreatedResponse, BookingView } from '../../worker/protocol/events';
import {
  book,
  booked,
  createEvent,
  DAY_MS,
  type ErrorBody,
  errorOf,
  eventOf,
  ledger,
  settled,
} from './event-fixtures';
import { api, register, type TestUser } from './helpers';

let organiser: TestUser;
let otherOrganiser: TestUser;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;

beforeAll(async () => {
  [organiser, otherOrganiser, alice, bob, admin] = await Promise.all([
    register('organiser'),
    register('organiser'),
    register('listener'),
    register('listener'),
    register('admin'),
  ]);
});

function cancel(bookingId: string, user: TestUser | null) {
  return api(`/api/bookings/${bookingId}`, {
    method: 'DELETE',
    ...(user ? { token: user.token } : {}),
  });
}

describe('booking seats', () => {
  it('confirms a booking, issues one ticket a seat held by the booker, and counts it in D1', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const res = await book(alice, { eventId: event.id, quantity: 3 });
    expect(res.status).toBe(201);
    const body = JSON.parse(res.text) as BookingCreatedResponse;
    expect(body.availableSeats).toBe(2);
    expect(body.booking).toMatchObject({
      eventId: event.id,
      userId: alice.id,
      quantity: 3,
      status: 'confirmed',
      cancelledAt: null,
    });
    expect(body.booking.tickets).toHaveLength(3);
    expect(new Set(body.booking.tickets.map((t) => t.id)).size).toBe(3);
    for (const t of body.booking.tickets) {
      expect(t).toMatchObject({ holderId: alice.id, status: 'valid', bookingId: body.booking.id });
    }
    const d1 = await ledger(event.id);
    expect(d1).toMatchObject({ bookedSeats: 3, confirmedSeats: 3, validTickets: 3 });
    const read = await api(`/api/bookings/${body.booking.id}`, { token: alice.token });
    expect(((await read.json()) as { booking: BookingView }).booking).toEqual(body.booking);
  });

  it('books one seat when no quantity is given (seed 002 posts only the event id)', async () => {
    const event = await createEvent(organiser, { capacity: 2 });
    const res = await book(alice, { eventId: event.id });
    expect(res.status).toBe(201);
    expect((JSON.parse(res.text) as BookingCreatedResponse).booking.quantity).toBe(1);
  });

  it('refuses a booking over the available seats with insufficient_seats and changes nothing', async () => {
    const event = await createEvent(organiser, { capacity: 4 });
    await booked(alice, event.id, 3);
    const res = await book(bob, { eventId: event.id, quantity: 2 });
    expect(res.status).toBe(409);
    const body = JSON.parse(res.text) as ErrorBody & { availableSeats: number };
    expect(body.error.code).toBe('insufficient_seats');
    expect(body.error.message).toContain('1 seat left');
    expect(body.availableSeats).toBe(1);
    const d1 = await ledger(event.id);
    expect(d1).toMatchObject({ bookedSeats: 3, confirmedSeats: 3, validTickets: 3 });
    expect(d1.bookings.filter((b) => b.user_id === bob.id)).toHaveLength(0);
  });

  it('refuses any booking of a sold-out event with sold_out', async () => {
    const event = await createEvent(organiser, { capacity: 2 });
    await booked(alice, event.id, 2);
    const res = await book(bob, { eventId: event.id, quantity: 1 });
    expect(res.status).toBe(409);
    expect((JSON.parse(res.text) as ErrorBody).error.code).toBe('sold_out');
    expect((await ledger(event.id)).bookedSeats).toBe(2);
    expect((await eventOf(event.id)).availableSeats).toBe(0);
  });

  it('refuses bookings once the event has started with booking_closed', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { startsAt: Date.now() - 60_000 },
    });
    const res = await book(alice, { eventId: event.id, quantity: 1 });
    expect(res.status).toBe(409);
    expect((JSON.parse(res.text) as ErrorBody).error.code).toBe('booking_closed');
    expect((await ledger(event.id)).bookings).toHaveLength(0);
  });

  it('refuses a private event to users without access with event_access_denied', async () => {
    const event = await createEvent(organiser, {
      visibility: 'private',
      accessUserIds: [alice.id],
    });
    const refused = await book(bob, { eventId: event.id, quantity: 1 });
    expect(refused.status).toBe(403);
    expect((JSON.parse(refused.text) as ErrorBody).error.code).toBe('event_access_denied');
    expect((await ledger(event.id)).bookings).toHaveLength(0);
    expect((await book(alice, { eventId: event.id, quantity: 1 })).status).toBe(201);
  });

  it('refuses an unknown event with event_not_found', async () => {
    const res = await book(alice, { eventId: '6a1b4c5e-0000-4000-8000-000000000000', quantity: 1 });
    expect(res.status).toBe(404);
    expect((JSON.parse(res.text) as ErrorBody).error.code).toBe('event_not_found');
  });

  it('refuses a booking without a token', async () => {
    const event = await createEvent(organiser);
    const res = await api('/api/bookings', { method: 'POST', json: { eventId: event.id } });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe('auth_required');
    expect((await ledger(event.id)).bookings).toHaveLength(0);
  });

  it.each([
    ['a quantity of 0', { quantity: 0 }, 'quantity'],
    ['a negative quantity', { quantity: -2 }, 'quantity'],
    ['a quantity over the per-booking maximum of 10', { quantity: 11 }, 'quantity'],
    ['a huge quantity', { quantity: 1e12 }, 'quantity'],
    ['a fractional quantity', { quantity: 1.5 }, 'quantity'],
    ['a quantity sent as a string', { quantity: '2' }, 'quantity'],
    ['a quantity of null', { quantity: null }, 'quantity'],
    ['an event id of the wrong type', { eventId: 12 }, 'eventId'],
    ['a missing event id', { eventId: undefined }, 'eventId'],
    ['an event id that cannot be an id', { eventId: '../../etc' }, 'eventId'],
    ['an unknown field', { seats: 3 }, '(body)'],
  ])('refuses %s with invalid_body and books nothing', async (_, change, path) => {
    const event = await createEvent(organiser, { capacity: 100 });
    const res = await book(alice, { eventId: event.id, quantity: 1, ...change });
    expect(res.status).toBe(400);
    const { error } = JSON.parse(res.text) as ErrorBody;
    expect(error.code).toBe('invalid_body');
    expect(error.fields?.map((f) => f.path)).toContain(path);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 0, bookings: [] });
  });

  it.each([
    ['an array', '[1,2]'],
    ['a bare string', '"book please"'],
  ])('refuses a body that is %s with invalid_body', async (_, body) => {
    const res = await api('/api/bookings', {
      method: 'POST',
      token: alice.token,
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_body');
  });

  it('refuses a body that is not JSON with invalid_json', async () => {
    const res = await api('/api/bookings', {
      method: 'POST',
      token: alice.token,
      headers: { 'content-type': 'application/json' },
      body: '{"eventId":',
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_json');
  });

  it('lists my bookings with their tickets', async () => {
    const me = await register();
    const event = await createEvent(organiser);
    const a = await booked(me, event.id, 2);
    const b = await booked(me, event.id, 1);
    await settled(event.id);
    const res = await api('/api/me/bookings', { token: me.token });
    const { bookings } = (await res.json()) as { bookings: BookingView[] };
    expect(bookings.map((x) => x.id).sort()).toEqual([a.id, b.id].sort());
    expect(bookings.find((x) => x.id === a.id)?.tickets).toHaveLength(2);
  });

  it('shows a booking only to its holder, the organiser and admins', async () => {
    const event = await createEvent(organiser);
    const booking = await booked(alice, event.id, 1);
    for (const user of [alice, organiser, admin]) {
      expect((await api(`/api/bookings/${booking.id}`, { token: user.token })).status).toBe(200);
    }
    for (const user of [bob, otherOrganiser]) {
      const res = await api(`/api/bookings/${booking.id}`, { token: user.token });
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe('booking_not_found');
    }
  });
});

describe('cancelling bookings', () => {
  it('returns the seats to the pool and voids the tickets when the holder cancels', async () => {
    const event = await createEvent(organiser, { capacity: 3 });
    const booking = await booked(alice, event.id, 3);
    expect((await book(bob, { eventId: event.id, quantity: 1 })).status).toBe(409);
    const res = await cancel(booking.id, alice);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { booking: BookingView; availableSeats: number };
    expect(body.availableSeats).toBe(3);
    expect(body.booking).toMatchObject({ status: 'cancelled', cancelledBy: alice.id });
    expect(body.booking.tickets.every((t) => t.status === 'cancelled')).toBe(true);
    expect(await ledger(event.id)).toMatchObject({
      bookedSeats: 0,
      confirmedSeats: 0,
      validTickets: 0,
    });
    expect((await book(bob, { eventId: event.id, quantity: 3 })).status).toBe(201);
  });

  it('refuses a second cancellation with already_cancelled and returns no seats twice', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const kept = await booked(bob, event.id, 2);
    const booking = await booked(alice, event.id, 2);
    expect((await cancel(booking.id, alice)).status).toBe(200);
    const twice = await cancel(booking.id, alice);
    expect(twice.status).toBe(409);
    expect((await errorOf(twice)).code).toBe('already_cancelled');
    const byOrganiser = await cancel(booking.id, organiser);
    expect(byOrganiser.status).toBe(409);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 2, confirmedSeats: 2 });
    expect((await eventOf(event.id)).availableSeats).toBe(3);
    expect(kept.status).toBe('confirmed');
  });

  it('returns the seats once when two cancellations race', async () => {
    const event = await createEvent(organiser, { capacity: 4 });
    const booking = await booked(alice, event.id, 4);
    const answers = await Promise.all([
      cancel(booking.id, alice),
      cancel(booking.id, organiser),
      cancel(booking.id, admin),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    expect((await ledger(event.id)).bookedSeats).toBe(0);
  });

  it("lets the event's organiser and an admin cancel someone else's booking", async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const one = await booked(alice, event.id, 1);
    const two = await booked(alice, event.id, 1);
    const byOrganiser = await cancel(one.id, organiser);
    expect(byOrganiser.status).toBe(200);
    expect(((await byOrganiser.json()) as { booking: BookingView }).booking.cancelledBy).toBe(
      organiser.id,
    );
    expect((await cancel(two.id, admin)).status).toBe(200);
    expect((await ledger(event.id)).bookedSeats).toBe(0);
  });

  it('refuses strangers and other organisers with forbidden and changes nothing', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const booking = await booked(alice, event.id, 2);
    for (const user of [bob, otherOrganiser]) {
      const res = await cancel(booking.id, user);
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe('forbidden');
    }
    const anonymous = await cancel(booking.id, null);
    expect(anonymous.status).toBe(401);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 2, confirmedSeats: 2 });
  });

  it('answers booking_not_found for a booking that does not exist', async () => {
    const res = await cancel('3f1e9a7c-0000-4000-8000-000000000000', alice);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('booking_not_found');
    const forged = await cancel('not a real id', alice);
    expect(forged.status).toBe(404);
  });

  it('keeps the start time check out of cancellations: seats can be returned after start', async () => {
    const event = await createEvent(organiser, { capacity: 2, startsAt: Date.now() + DAY_MS });
    const booking = await booked(alice, event.id, 1);
    await api(`/api/events/${event.id}`, {
      method: 'PATCH',
      token: organiser.token,
      json: { startsAt: Date.now() - 1000 },
    });
    expect((await cancel(booking.id, alice)).status).toBe(200);
    expect((await ledger(event.id)).bookedSeats).toBe(0);
  });
});
