// Queries that bind a list run in chunks that fit D1's bound-parameter limit (100 a statement):
// lists longer than one chunk come back whole and in order.
import { describe, expect, it } from 'vitest';
import { api, env, register, type TestUser, unique } from './helpers';

const MANY = 150;

async function insertRows(sql: string, rows: unknown[][]) {
  const statement = env.DB.prepare(sql);
  await env.DB.batch(rows.map((values) => statement.bind(...values)));
}

async function stationsFavouritedBy(fan: TestUser, owner: TestUser): Promise<string[]> {
  const now = Date.now();
  const ids = Array.from({ length: MANY }, () => unique('station'));
  await insertRows(
    'INSERT INTO stations (id, owner_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
    ids.map((id) => [id, owner.id, `Station ${id}`, now, now]),
  );
  await insertRows(
    'INSERT INTO station_favourites (user_id, station_id, created_at) VALUES (?, ?, ?)',
    ids.map((id, i) => [fan.id, id, now + i]),
  );
  return ids;
}

describe('lists longer than one statement can bind', () => {
  it('lists every favourite station, newest favourite first', async () => {
    const [owner, fan] = [await register('station_owner'), await register()];
    const ids = await stationsFavouritedBy(fan, owner);
    const res = await api('/api/me/favourites', { token: fan.token });
    expect(res.status).toBe(200);
    const { stations } = (await res.json()) as { stations: { id: string }[] };
    expect(stations.map((s) => s.id)).toEqual([...ids].reverse());
  });

  it('lists every booking with its tickets and every ticket with its transfers', async () => {
    const [organiser, fan, friend] = [
      await register('organiser'),
      await register(),
      await register(),
    ];
    const now = Date.now();
    const eventId = unique('event');
    await insertRows(
      `INSERT INTO events (id, organiser_id, title, venue, starts_at, capacity, booked_seats, created_at, updated_at)
       VALUES (?, ?, 'Big night', 'Hall', ?, ?, ?, ?, ?)`,
      [[eventId, organiser.id, now + 86_400_000, MANY, MANY, now, now]],
    );
    const bookings = Array.from({ length: MANY }, (_, i) => ({
      id: unique('booking'),
      ticket: unique('ticket'),
      at: now + i,
    }));
    await insertRows(
      `INSERT INTO bookings (id, event_id, user_id, quantity, status, created_at)
       VALUES (?, ?, ?, 1, 'confirmed', ?)`,
      bookings.map((b) => [b.id, eventId, fan.id, b.at]),
    );
    await insertRows(
      `INSERT INTO tickets (id, booking_id, event_id, holder_id, status, created_at)
       VALUES (?, ?, ?, ?, 'valid', ?)`,
      bookings.map((b) => [b.ticket, b.id, eventId, fan.id, b.at]),
    );
    // Every ticket went to a friend and came back: two transfers each.
    await insertRows(
      `INSERT INTO ticket_transfers (id, ticket_id, from_user_id, to_user_id, transferred_at)
       VALUES (?, ?, ?, ?, ?)`,
      bookings.flatMap((b) => [
        [unique('t'), b.ticket, fan.id, friend.id, b.at + 1],
        [unique('t'), b.ticket, friend.id, fan.id, b.at + 2],
      ]),
    );

    const mine = (await (
      await api(`/api/me/bookings?limit=${MANY}`, { token: fan.token })
    ).json()) as { bookings: { id: string; tickets: { id: string }[] }[] };
    expect(mine.bookings).toHaveLength(MANY);
    for (const b of mine.bookings) {
      const expected = bookings.find((x) => x.id === b.id);
      expect(b.tickets.map((t) => t.id)).toEqual([expected?.ticket]);
    }

    const held = (await (
      await api(`/api/me/tickets?limit=${MANY}`, { token: fan.token })
    ).json()) as {
      tickets: { id: string; transfers: { fromUserId: string; toUserId: string }[] }[];
    };
    expect(held.tickets).toHaveLength(MANY);
    for (const t of held.tickets) {
      expect(t.transfers.map((x) => [x.fromUserId, x.toUserId])).toEqual([
        [fan.id, friend.id],
        [friend.id, fan.id],
      ]);
    }
  });
});
