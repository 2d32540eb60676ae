// Events over REST: who may create and change them, what each caller may see, bad input.
import { beforeAll, describe, expect, it } from 'vitest';
import type { EventView } from '../../worker/protocol/events';
import { booked, createEvent, DAY_MS, errorOf, eventOf, ledger, settled } from './event-fixtures';
import { api, env, register, type TestUser } from './helpers';

let organiser: TestUser;
let other: TestUser;
let listener: TestUser;
let admin: TestUser;

beforeAll(async () => {
  [organiser, other, listener, admin] = await Promise.all([
    register('organiser'),
    register('organiser'),
    register('listener'),
    register('admin'),
  ]);
});

function post(token: string | undefined, json: unknown) {
  return api('/api/events', { method: 'POST', ...(token ? { token } : {}), json });
}

const valid = () => ({
  title: 'Jazz at Dusk',
  venue: 'Riverside Hall',
  startsAt: new Date(Date.now() + 3 * DAY_MS).toISOString(),
  capacity: 120,
});

describe('creating events', () => {
  it('lets an organiser create a public event with every seat available', async () => {
    const body = { ...valid(), description: 'Quartet' };
    const res = await post(organiser.token, body);
    expect(res.status).toBe(201);
    const { event } = (await res.json()) as { event: EventView };
    expect(event).toMatchObject({
      organiserId: organiser.id,
      title: 'Jazz at Dusk',
      description: 'Quartet',
      venue: 'Riverside Hall',
      capacity: 120,
      bookedSeats: 0,
      availableSeats: 120,
      visibility: 'public',
    });
    expect(event.startsAt).toBe(Date.parse(body.startsAt));
    expect((await eventOf(event.id)).availableSeats).toBe(120);
  });

  it('accepts the start time as epoch milliseconds or an ISO date-time with an offset', async () => {
    const at = Date.now() + 5 * DAY_MS;
    const a = await createEvent(organiser, { startsAt: at });
    expect(a.startsAt).toBe(at);
    const b = await createEvent(organiser, { startsAt: '2031-06-01T20:00:00+02:00' });
    expect(b.startsAt).toBe(Date.parse('2031-06-01T18:00:00Z'));
  });

  it('lets an admin create events but refuses listeners and anonymous callers', async () => {
    expect((await post(admin.token, valid())).status).toBe(201);
    const refused = await post(listener.token, valid());
    expect(refused.status).toBe(403);
    expect((await errorOf(refused)).code).toBe('forbidden');
    const anonymous = await post(undefined, valid());
    expect(anonymous.status).toBe(401);
    expect((await errorOf(anonymous)).code).toBe('auth_required');
  });

  it.each([
    ['a missing title', { title: undefined }, 'title'],
    ['an empty venue', { venue: '  ' }, 'venue'],
    ['a start time in the past', { startsAt: Date.now() - 60_000 }, 'startsAt'],
    ['a start time that is not a date', { startsAt: 'next friday' }, 'startsAt'],
    ['a fractional capacity', { capacity: 10.5 }, 'capacity'],
    ['a capacity of zero', { capacity: 0 }, 'capacity'],
    ['a negative capacity', { capacity: -5 }, 'capacity'],
    ['a huge capacity', { capacity: 10_000_000 }, 'capacity'],
    ['a capacity sent as a string', { capacity: '100' }, 'capacity'],
    ['an unknown visibility', { visibility: 'secret' }, 'visibility'],
    ['an unknown field', { price: 10 }, '(body)'],
    ['an access list naming nobody we know', { accessUserIds: ['no-such-user'] }, 'accessUserIds'],
  ])(
    'refuses %s with invalid_body naming the field and creates nothing',
    async (_, change, path) => {
      const before = await env.DB.prepare('SELECT COUNT(*) AS n FROM events').first<{
        n: number;
      }>();
      const res = await post(organiser.token, { ...valid(), ...change });
      expect(res.status).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_body');
      expect(error.fields?.map((f) => f.path)).toContain(path);
      const after = await env.DB.prepare('SELECT COUNT(*) AS n FROM events').first<{ n: number }>();
      expect(after?.n).toBe(before?.n);
    },
  );

  it('refuses a body that is not JSON with invalid_json', async () => {
    const res = await api('/api/events', {
      method: 'POST',
      token: organiser.token,
      headers: { 'content-type': 'application/json' },
      body: '{"title":',
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_json');
  });
});

describe('reading events', () => {
  it('answers event_not_found for an event that does not exist', async () => {
    const res = await api('/api/events/00000000-0000-0000-0000-000000000000');
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('event_not_found');
  });

  it('shows available seats that follow every booking and cancellation', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const booking = await booked(listener, event.id, 3);
    expect((await eventOf(event.id)).availableSeats).toBe(2);
    // Listings read D1, which follows the event's object (docs/bookings.md, "D1 follows").
    await settled(event.id);
    const list = await api('/api/events?limit=100');
    const listed = ((await list.json()) as { events: EventView[] }).events;
    // The list is ordered by start time; this event is far in the future, so page through.
    const found = listed.find((e) => e.id === event.id) ?? (await findInList(event.id));
    expect(found?.availableSeats).toBe(2);
    const cancel = await api(`/api/bookings/${booking.id}`, {
      method: 'DELETE',
      token: listener.token,
    });
    expect(cancel.status).toBe(200);
    expect((await eventOf(event.id)).availableSeats).toBe(5);
  });

  it('hides private events from strangers and shows them to the listed, the organiser and admins', async () => {
    const event = await createEvent(organiser, {
      visibility: 'private',
      accessUserIds: [listener.id],
    });
    const anonymous = await api(`/api/events/${event.id}`);
    expect(anonymous.status).toBe(401);
    expect((await errorOf(anonymous)).code).toBe('auth_required');
    const stranger = await api(`/api/events/${event.id}`, { token: other.token });
    expect(stranger.status).toBe(403);
    expect((await errorOf(stranger)).code).toBe('event_access_denied');
    expect((await eventOf(event.id, listener.token)).visibility).toBe('private');
    expect((await eventOf(event.id, organiser.token)).id).toBe(event.id);
    expect((await eventOf(event.id, admin.token)).id).toBe(event.id);

    expect(await findInList(event.id)).toBeUndefined();
    expect(await findInList(event.id, other.token)).toBeUndefined();
    expect(await findInList(event.id, listener.token)).toBeDefined();
    expect(await findInList(event.id, organiser.token)).toBeDefined();
    expect(await findInList(event.id, admin.token)).toBeDefined();
  });

  it('pages through events by start time with a cursor and refuses a forged cursor', async () => {
    const base = Date.now() + 400 * DAY_MS;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createEvent(other, { startsAt: base + i })).id);
    const seen: string[] = [];
    let cursor: string | null = `${base - 1}.0`;
    while (cursor) {
      const res = await api(`/api/events?limit=2&after=${cursor}`);
      const page = (await res.json()) as { events: EventView[]; nextCursor: string | null };
      seen.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
    }
    expect(seen.filter((id) => ids.includes(id))).toEqual(ids);
    const forged = await api('/api/events?after=drop%20table');
    expect(forged.status).toBe(400);
    expect((await errorOf(forged)).code).toBe('invalid_query');
    const tooMany = await api('/api/events?limit=1000');
    expect(tooMany.status).toBe(400);
  });
});

describe('updating events', () => {
  function patch(id: string, token: string, json: unknown) {
    return api(`/api/events/${id}`, { method: 'PATCH', token, json });
  }

  it('lets the organiser change their event and keeps the seat count', async () => {
    const event = await createEvent(organiser, { capacity: 4 });
    await booked(listener, event.id, 1);
    const res = await patch(event.id, organiser.token, { title: 'Moved', venue: 'Annex' });
    expect(res.status).toBe(200);
    const { event: updated } = (await res.json()) as { event: EventView };
    expect(updated).toMatchObject({ title: 'Moved', venue: 'Annex', availableSeats: 3 });
    expect(updated.updatedAt).toBeGreaterThanOrEqual(event.updatedAt);
  });

  it('refuses another organiser and a listener with forbidden, and lets an admin', async () => {
    const event = await createEvent(organiser);
    const byOther = await patch(event.id, other.token, { title: 'Mine now' });
    expect(byOther.status).toBe(403);
    expect((await errorOf(byOther)).code).toBe('forbidden');
    expect((await patch(event.id, listener.token, { title: 'x' })).status).toBe(403);
    expect((await eventOf(event.id)).title).toBe(event.title);
    expect((await patch(event.id, admin.token, { title: 'Admin edit' })).status).toBe(200);
  });

  it('refuses to shrink capacity below the confirmed seats and changes nothing', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    await booked(listener, event.id, 4);
    const res = await patch(event.id, organiser.token, { capacity: 3, title: 'Smaller' });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('capacity_below_booked');
    const after = await eventOf(event.id);
    expect(after).toMatchObject({ capacity: 5, title: event.title, availableSeats: 1 });
    expect((await patch(event.id, organiser.token, { capacity: 4 })).status).toBe(200);
    expect((await ledger(event.id)).capacity).toBe(4);
  });

  it.each([
    ['an empty change', {}],
    ['a capacity of zero', { capacity: 0 }],
    ['a title of the wrong type', { title: 42 }],
    ['a field that cannot be changed', { bookedSeats: 0 }],
    ['an organiser swap', { organiserId: 'someone' }],
  ])('refuses %s with invalid_body', async (_, change) => {
    const event = await createEvent(organiser);
    const res = await patch(event.id, organiser.token, change);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_body');
  });

  it('answers event_not_found when updating an event that does not exist', async () => {
    const res = await patch('no-such-event', organiser.token, { title: 'x' });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('event_not_found');
  });
});

describe('the access list', () => {
  it('lets the organiser grant, list and revoke access to a private event', async () => {
    const event = await createEvent(organiser, { visibility: 'private' });
    expect((await api(`/api/events/${event.id}`, { token: listener.token })).status).toBe(403);
    const grant = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: organiser.token,
      json: { userId: listener.id },
    });
    expect(grant.status).toBe(201);
    const again = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: organiser.token,
      json: { userId: listener.id },
    });
    expect(again.status).toBe(200);
    expect((await eventOf(event.id, listener.token)).id).toBe(event.id);
    const list = await api(`/api/events/${event.id}/access`, { token: organiser.token });
    const { access } = (await list.json()) as { access: { userId: string }[] };
    expect(access.map((a) => a.userId)).toEqual([listener.id]);
    const revoke = await api(`/api/events/${event.id}/access/${listener.id}`, {
      method: 'DELETE',
      token: organiser.token,
    });
    expect(revoke.status).toBe(200);
    expect((await api(`/api/events/${event.id}`, { token: listener.token })).status).toBe(403);
    const twice = await api(`/api/events/${event.id}/access/${listener.id}`, {
      method: 'DELETE',
      token: organiser.token,
    });
    expect(twice.status).toBe(404);
  });

  it('refuses access changes by anyone but the organiser or an admin, and unknown users', async () => {
    const event = await createEvent(organiser, {
      visibility: 'private',
      accessUserIds: [other.id],
    });
    const byListed = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: other.token,
      json: { userId: listener.id },
    });
    expect(byListed.status).toBe(403);
    expect((await errorOf(byListed)).code).toBe('forbidden');
    const unknown = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: organiser.token,
      json: { userId: 'nobody-at-all' },
    });
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe('user_not_found');
    const wrongType = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: organiser.token,
      json: { userId: 7 },
    });
    expect(wrongType.status).toBe(400);
    const byAdmin = await api(`/api/events/${event.id}/access`, {
      method: 'POST',
      token: admin.token,
      json: { userId: listener.id },
    });
    expect(byAdmin.status).toBe(201);
  });
});

async function findInList(eventId: string, token?: string): Promise<EventView | undefined> {
  let cursor: string | null = null;
  do {
    const res = await api(`/api/events?limit=100${cursor ? `&after=${cursor}` : ''}`, {
      ...(token ? { token } : {}),
    });
    const page = (await res.json()) as { events: EventView[]; nextCursor: string | null };
    const hit = page.events.find((e) => e.id === eventId);
    if (hit) return hit;
    cursor = page.nextCursor;
  } while (cursor);
  return undefined;
}
