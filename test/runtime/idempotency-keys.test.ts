// One meaning of `Idempotency-Key` on every write route that has no rule of its own (bookings,
// comment and chat posts keep theirs with the write): kept 24 h in D1, the same key and request
// get the first 2xx answer byte for byte, another request under the key is 422, two requests
// with one key never both run, and a failed request leaves the key free for a retry.
import { describe, expect, it } from 'vitest';
import { booked, createEvent } from './event-fixtures';
import { api, env, register, type TestUser, unique } from './helpers';
import { createStation } from './station-fixtures';

interface Sent {
  status: number;
  text: string;
  replayed: boolean;
}

async function send(
  user: TestUser,
  method: string,
  path: string,
  key: string,
  json?: unknown,
): Promise<Sent> {
  const res = await api(path, {
    method,
    token: user.token,
    headers: { 'idempotency-key': key },
    ...(json === undefined ? {} : { json }),
  });
  return {
    status: res.status,
    text: await res.text(),
    replayed: res.headers.get('idempotent-replayed') === 'true',
  };
}

const codeOf = (sent: Sent) => (JSON.parse(sent.text) as { error: { code: string } }).error.code;

async function stationsNamed(name: string): Promise<number> {
  const row = await env.DB.prepare('SELECT count(*) AS n FROM stations WHERE name = ?')
    .bind(name)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

async function keyRows(userId: string, key: string) {
  const { results } = await env.DB.prepare(
    'SELECT scope, response_status AS status, created_at AS createdAt FROM idempotency_keys WHERE user_id = ? AND key = ?',
  )
    .bind(userId, key)
    .all<{ scope: string; status: number; createdAt: number }>();
  return results;
}

describe('a retry with the same key', () => {
  it('gets the first status and body byte for byte, and creates nothing new', async () => {
    const owner = await register('station_owner');
    const key = unique('key');
    const name = unique('Once FM');
    const first = await send(owner, 'POST', '/api/stations', key, { name });
    const retry = await send(owner, 'POST', '/api/stations', key, { name });
    expect(first).toMatchObject({ status: 201, replayed: false });
    expect(retry).toEqual({ status: 201, text: first.text, replayed: true });
    expect(await stationsNamed(name)).toBe(1);
    expect(await keyRows(owner.id, key)).toEqual([
      { scope: 'route:POST /api/stations', status: 201, createdAt: expect.any(Number) },
    ]);
  });

  it('counts a body that only differs in defaults, key order and trimmed spaces as the same', async () => {
    const owner = await register('station_owner');
    const key = unique('key');
    const name = unique('Same FM');
    const first = await send(owner, 'POST', '/api/stations', key, { name });
    const retry = await send(owner, 'POST', '/api/stations', key, {
      genre: null,
      description: '',
      name: `  ${name} `,
    });
    expect(retry).toEqual({ status: 201, text: first.text, replayed: true });
  });

  it('replays a cancellation instead of answering already_cancelled', async () => {
    const organiser = await register('organiser');
    const fan = await register();
    const event = await createEvent(organiser);
    const booking = await booked(fan, event.id);
    const key = unique('key');
    const first = await send(fan, 'DELETE', `/api/bookings/${booking.id}`, key);
    const retry = await send(fan, 'DELETE', `/api/bookings/${booking.id}`, key);
    expect(first.status).toBe(200);
    expect(retry).toEqual({ status: 200, text: first.text, replayed: true });
    // Without the key, a second cancellation is a new request, refused as before.
    const again = await api(`/api/bookings/${booking.id}`, { method: 'DELETE', token: fan.token });
    expect(again.status).toBe(409);
  });
});

describe('reusing a key for another request', () => {
  it('is refused with 422 when the body differs, and nothing is written', async () => {
    const owner = await register('station_owner');
    const key = unique('key');
    await send(owner, 'POST', '/api/stations', key, { name: unique('First FM') });
    const other = unique('Second FM');
    const reused = await send(owner, 'POST', '/api/stations', key, { name: other });
    expect(reused.status).toBe(422);
    expect(codeOf(reused)).toBe('idempotency_key_reused');
    expect(await stationsNamed(other)).toBe(0);
  });

  it('is refused with 422 when the path names another resource', async () => {
    const owner = await register('station_owner');
    const [a, b] = [await createStation(owner), await createStation(owner)];
    const fan = await register();
    const key = unique('key');
    expect((await send(fan, 'PUT', `/api/stations/${a.id}/favourite`, key)).status).toBe(200);
    const reused = await send(fan, 'PUT', `/api/stations/${b.id}/favourite`, key);
    expect(reused.status).toBe(422);
    const state = (await (await api(`/api/stations/${b.id}`, { token: fan.token })).json()) as {
      station: { favourited: boolean };
    };
    expect(state.station.favourited).toBe(false);
  });

  it('is fine for another user: keys belong to their user', async () => {
    const [ann, bob] = [await register('station_owner'), await register('station_owner')];
    const key = unique('key');
    const name = unique('Shared Key FM');
    expect((await send(ann, 'POST', '/api/stations', key, { name })).replayed).toBe(false);
    const theirs = await send(bob, 'POST', '/api/stations', key, { name });
    expect(theirs).toMatchObject({ status: 201, replayed: false });
    expect(await stationsNamed(name)).toBe(2);
  });
});

describe('concurrent requests with one key', () => {
  it('let exactly one of them run', async () => {
    const owner = await register('station_owner');
    const key = unique('key');
    const name = unique('Race FM');
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => send(owner, 'POST', '/api/stations', key, { name })),
    );
    expect(await stationsNamed(name)).toBe(1);
    const fresh = answers.filter((a) => a.status === 201 && !a.replayed);
    expect(fresh).toHaveLength(1);
    for (const answer of answers) {
      if (answer.status === 409) expect(codeOf(answer)).toBe('idempotency_key_in_use');
      else expect(answer).toMatchObject({ status: 201, text: fresh[0]?.text });
    }
  });

  it('answers 409 idempotency_key_in_use while the first is running, and takes over a stale claim', async () => {
    const owner = await register('station_owner');
    const key = unique('key');
    const name = unique('Stuck FM');
    await send(owner, 'POST', '/api/stations', key, { name });
    // Turn the stored answer back into a claim in flight (same request fingerprint).
    const inFlight = (createdAt: number) =>
      env.DB.prepare(
        `UPDATE idempotency_keys SET response_status = 0, response_body = 'claim', created_at = ?
         WHERE user_id = ? AND key = ?`,
      )
        .bind(createdAt, owner.id, key)
        .run();
    await inFlight(Date.now());
    const busy = await send(owner, 'POST', '/api/stations', key, { name });
    expect(busy.status).toBe(409);
    expect(codeOf(busy)).toBe('idempotency_key_in_use');
    expect(await stationsNamed(name)).toBe(1);
    // A claim whose request died (no answer after a minute) gives way to the retry.
    await inFlight(Date.now() - 61_000);
    const retried = await send(owner, 'POST', '/api/stations', key, { name });
    expect(retried).toMatchObject({ status: 201, replayed: false });
  });
});

describe('failures', () => {
  it('release the key, so a retry with it runs afresh', async () => {
    const organiser = await register('organiser');
    const fan = await register();
    const event = await createEvent(organiser, { capacity: 10 });
    const booking = await booked(fan, event.id, 3);
    const key = unique('key');
    const path = `/api/events/${event.id}`;
    const refused = await send(organiser, 'PATCH', path, key, { capacity: 2 });
    expect(refused.status).toBe(409);
    expect(codeOf(refused)).toBe('capacity_below_booked');
    expect(await keyRows(organiser.id, key)).toEqual([]);
    const cancelled = await api(`/api/bookings/${booking.id}`, {
      method: 'DELETE',
      token: fan.token,
    });
    expect(cancelled.status).toBe(200);
    const retried = await send(organiser, 'PATCH', path, key, { capacity: 2 });
    expect(retried).toMatchObject({ status: 200, replayed: false });
    expect(JSON.parse(retried.text)).toMatchObject({ event: { capacity: 2 } });
  });

  it('refuse a malformed key with 400 invalid_idempotency_key before anything runs', async () => {
    const owner = await register('station_owner');
    const name = unique('Bad Key FM');
    const res = await send(owner, 'POST', '/api/stations', 'has spaces', { name });
    expect(res.status).toBe(400);
    expect(codeOf(res)).toBe('invalid_idempotency_key');
    expect(await stationsNamed(name)).toBe(0);
  });
});

describe('how long keys are kept', () => {
  it('replays for 24 hours; after that the key is a new request', async () => {
    const owner = await register('station_owner');
    const key = unique('key');
    const name = unique('Day FM');
    await send(owner, 'POST', '/api/stations', key, { name });
    await env.DB.prepare('UPDATE idempotency_keys SET created_at = ? WHERE user_id = ? AND key = ?')
      .bind(Date.now() - 23 * 60 * 60 * 1000, owner.id, key)
      .run();
    expect((await send(owner, 'POST', '/api/stations', key, { name })).replayed).toBe(true);
    await env.DB.prepare('UPDATE idempotency_keys SET created_at = ? WHERE user_id = ? AND key = ?')
      .bind(Date.now() - 25 * 60 * 60 * 1000, owner.id, key)
      .run();
    expect(await send(owner, 'POST', '/api/stations', key, { name })).toMatchObject({
      status: 201,
      replayed: false,
    });
    expect(await stationsNamed(name)).toBe(2);
  });
});

describe('routes with a rule of their own', () => {
  it('keep bookings, comment posts and chat posts out of the route middleware', async () => {
    const organiser = await register('organiser');
    const owner = await register('station_owner');
    const user = await register();
    const event = await createEvent(organiser);
    const station = await createStation(owner);
    const key = unique('key');
    const writes = [
      send(user, 'POST', '/api/bookings', key, { eventId: event.id }),
      send(user, 'POST', `/api/items/${unique('item')}/comments`, key, { body: 'hi' }),
      send(user, 'POST', `/api/stations/${station.id}/chat`, key, { body: 'hi' }),
    ];
    for (const sent of await Promise.all(writes)) expect(sent.status).toBe(201);
    const scopes = (await keyRows(user.id, key)).map((r) => r.scope);
    expect(scopes).toEqual(['booking']);
  });
});
