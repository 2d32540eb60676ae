// Request input at the door: Hono's validator middleware with the zod schemas, one error shape
// for every route, JSON bodies only with a JSON content type, and a typed `hc` client.
import { exports } from 'cloudflare:workers';
import { hc } from 'hono/client';
import { describe, expect, it } from 'vitest';
import type { AppType } from '../../worker/index';
import { api, BASE, register, unique } from './helpers';

interface ErrorBody {
  error: { code: string; message: string; fields?: { path: string; message: string }[] };
}

const errorOf = async (res: Response) => ((await res.json()) as ErrorBody).error;

describe('request bodies', () => {
  it('names the bad field of a body in the same JSON shape on every route', async () => {
    const owner = await register('station_owner');
    const organiser = await register('organiser');
    const cases: [string, string, string, unknown, string][] = [
      ['POST', '/api/stations', owner.token, { name: '' }, 'name'],
      [
        'POST',
        '/api/events',
        organiser.token,
        { title: 'T', venue: 'V', capacity: 5, startsAt: 'soon' },
        'startsAt',
      ],
      ['POST', `/api/items/${unique('item')}/comments`, owner.token, { body: 7 }, 'body'],
      ['POST', '/api/bookings', owner.token, { eventId: 'e', quantity: 0 }, 'quantity'],
    ];
    for (const [method, path, token, json, field] of cases) {
      const res = await api(path, { method, token, json });
      expect(res.status, path).toBe(400);
      const error = await errorOf(res);
      expect(error).toMatchObject({ code: 'invalid_body', fields: [{ path: field }] });
      expect(error.message).toContain(`"${field}"`);
    }
  });

  it('names a bad query parameter with invalid_query', async () => {
    for (const path of [
      '/api/stations?limit=0',
      '/api/events?after=nope',
      `/api/items/${unique('item')}/comments?limit=abc`,
    ]) {
      const res = await api(path);
      expect(res.status, path).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe('invalid_query');
      expect(error.fields?.[0]?.path).toMatch(/^(limit|after)$/);
    }
  });

  it('refuses a body that does not parse with invalid_json', async () => {
    const user = await register();
    const res = await api(`/api/items/${unique('item')}/comments`, {
      method: 'POST',
      token: user.token,
      body: '{"body": "unterminated',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_json');
  });

  it('refuses a JSON body sent as text/plain with 415 and writes nothing', async () => {
    const user = await register();
    const itemId = unique('item');
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: user.token,
      body: JSON.stringify({ body: 'sent as a simple cross-site form would' }),
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(415);
    expect((await errorOf(res)).code).toBe('unsupported_media_type');
    const page = (await (await api(`/api/items/${itemId}/comments`)).json()) as {
      comments: unknown[];
    };
    expect(page.comments).toHaveLength(0);
  });

  it('refuses a body without any content type, and a form, with 415', async () => {
    const owner = await register('station_owner');
    const bare = await exports.default.fetch(
      new Request(`${BASE}/api/stations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${owner.token}` },
        body: new TextEncoder().encode(JSON.stringify({ name: 'No type' })),
      }),
    );
    expect(bare.status).toBe(415);
    const form = await api('/api/stations', {
      method: 'POST',
      token: owner.token,
      body: new URLSearchParams({ name: 'Form' }),
    });
    expect(form.status).toBe(415);
    expect((await errorOf(form)).code).toBe('unsupported_media_type');
  });

  it('accepts application/json with a charset and the application/*+json family', async () => {
    const owner = await register('station_owner');
    for (const type of ['application/json; charset=utf-8', 'application/vnd.wavecast+json']) {
      const res = await api('/api/stations', {
        method: 'POST',
        token: owner.token,
        body: JSON.stringify({ name: unique('Typed') }),
        headers: { 'content-type': type },
      });
      expect(res.status, type).toBe(201);
    }
  });

  it('refuses anonymous callers with 401 before looking at their body', async () => {
    const res = await api(`/api/items/${unique('item')}/comments`, {
      method: 'POST',
      body: 'not even JSON',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe('auth_required');
  });
});

describe('the typed client', () => {
  it('calls a route through hc<AppType> with its input and output types', async () => {
    const owner = await register('station_owner');
    const client = hc<AppType>(BASE, {
      fetch: (input: RequestInfo | URL, init?: RequestInit) => exports.default.fetch(input, init),
      headers: { authorization: `Bearer ${owner.token}` },
    });
    const name = unique('Typed FM');
    const res = await client.api.stations.$post({ json: { name, genre: 'jazz' } });
    expect(res.status).toBe(201);
    if (res.status === 201) {
      const { station } = await res.json();
      // `station.name` is typed: the response type comes from the route itself.
      expect(station.name satisfies string).toBe(name);
    }
    // @ts-expect-error: `name` must be a string; the route's input type says so.
    const refused = await client.api.stations.$post({ json: { name: 42 } });
    expect(refused.status).toBe(400);
  });
});
