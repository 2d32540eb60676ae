// Fixtures for the event, booking and ticket tests: create events, book, read D1 directly (after
// the event's object has written its outbox: D1 follows the object, docs/bookings.md).
import { runInDurableObject } from 'cloudflare:test';
import type {
  BookingCreatedResponse,
  BookingView,
  EventView,
  TicketView,
} from '../../worker/protocol/events';
import type { EventRoom } from '../../worker/rooms/event/EventRoom';
import { type KeyClaims, shardOf } from '../../worker/rooms/event/KeyClaims';
import { event as eventKind } from '../../worker/rooms/event/kind';
import { api, drained, env, type TestUser, unique } from './helpers';

export const DAY_MS = 24 * 60 * 60 * 1000;

export interface ErrorBody {
  error: { code: string; message: string; fields?: { path: string; message: string }[] };
}

export async function createEvent(
  organiser: TestUser,
  fields: Record<string, unknown> = {},
): Promise<EventView> {
  const res = await api('/api/events', {
    method: 'POST',
    token: organiser.token,
    json: {
      title: unique('Night'),
      venue: 'The Hall',
      startsAt: Date.now() + 7 * DAY_MS,
      capacity: 10,
      ...fields,
    },
  });
  if (res.status !== 201) throw new Error(`create event: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { event: EventView }).event;
}

export interface BookResult {
  status: number;
  text: string;
  replayed: boolean;
}

/** Books through the worker; `key` becomes the Idempotency-Key header. */
export async function book(
  user: TestUser,
  body: Record<string, unknown>,
  key?: string,
): Promise<BookResult> {
  const res = await api('/api/bookings', {
    method: 'POST',
    token: user.token,
    json: body,
    ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }),
  });
  return {
    status: res.status,
    text: await res.text(),
    replayed: res.headers.get('idempotent-replayed') === 'true',
  };
}

/** Books and expects a 201. */
export async function booked(user: TestUser, eventId: string, quantity = 1): Promise<BookingView> {
  const res = await book(user, { eventId, quantity });
  if (res.status !== 201) throw new Error(`booking refused: ${res.status} ${res.text}`);
  return (JSON.parse(res.text) as BookingCreatedResponse).booking;
}

export async function eventOf(eventId: string, token?: string): Promise<EventView> {
  const res = await api(`/api/events/${eventId}`, token ? { token } : {});
  if (res.status !== 200) throw new Error(`get event: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { event: EventView }).event;
}

export async function errorOf(res: Response): Promise<ErrorBody['error']> {
  return ((await res.json()) as ErrorBody).error;
}

export async function ticketsOf(user: TestUser) {
  const res = await api('/api/me/tickets', { token: user.token });
  if (res.status !== 200) throw new Error(`my tickets: ${res.status} ${await res.text()}`);
  return (
    (await res.json()) as {
      tickets: (TicketView & {
        event: { id: string; title: string };
        transfers: { fromUserId: string; toUserId: string }[];
      })[];
    }
  ).tickets;
}

/** The event's object (the one commit point of its inventory). */
export function roomOf(eventId: string): DurableObjectStub<EventRoom> {
  return eventKind.stub(env, eventId) as DurableObjectStub<EventRoom>;
}

/** The KeyClaims shard that holds a user's booking keys. */
export function claimsOf(userId: string): DurableObjectStub<KeyClaims> {
  return env.KEY_CLAIMS.get(env.KEY_CLAIMS.idFromName(`keys:${shardOf(userId)}`));
}

/** Waits until D1 has everything the event's object committed (its outbox is empty). */
export function settled(eventId: string): Promise<void> {
  return drained(roomOf(eventId));
}

/**
 * Makes a stored booking answer `ms` older everywhere it is kept: in the event's object, in the
 * user's key claim, and D1's copy.
 */
export async function ageBookingKey(eventId: string, userId: string, key: string, ms: number) {
  await runInDurableObject(roomOf(eventId), (_room: EventRoom, state) => {
    state.storage.sql.exec(
      'UPDATE ev_answers SET at = at - ? WHERE user_id = ? AND key = ?',
      ms,
      userId,
      key,
    );
  });
  await runInDurableObject(claimsOf(userId), (_claims: KeyClaims, state) => {
    state.storage.sql.exec(
      'UPDATE key_claims SET at = at - ? WHERE user_id = ? AND key = ?',
      ms,
      userId,
      key,
    );
  });
  await settled(eventId);
  await env.DB.prepare(
    'UPDATE idempotency_keys SET created_at = created_at - ? WHERE user_id = ? AND key = ?',
  )
    .bind(ms, userId, key)
    .run();
}

/** What D1 holds for an event: the counter and the rows behind it, once D1 has caught up. */
export async function ledger(eventId: string) {
  await settled(eventId);
  const event = await env.DB.prepare('SELECT capacity, booked_seats FROM events WHERE id = ?')
    .bind(eventId)
    .first<{ capacity: number; booked_seats: number }>();
  const bookings = await env.DB.prepare(
    'SELECT id, user_id, quantity, status, idempotency_key FROM bookings WHERE event_id = ?',
  )
    .bind(eventId)
    .all<{
      id: string;
      user_id: string;
      quantity: number;
      status: string;
      idempotency_key: string | null;
    }>();
  const tickets = await env.DB.prepare(
    'SELECT id, booking_id, holder_id, status FROM tickets WHERE event_id = ?',
  )
    .bind(eventId)
    .all<{ id: string; booking_id: string; holder_id: string; status: string }>();
  const confirmed = bookings.results.filter((b) => b.status === 'confirmed');
  return {
    capacity: event?.capacity ?? 0,
    bookedSeats: event?.booked_seats ?? 0,
    bookings: bookings.results,
    confirmedSeats: confirmed.reduce((n, b) => n + b.quantity, 0),
    validTickets: tickets.results.filter((t) => t.status === 'valid').length,
    tickets: tickets.results,
  };
}
