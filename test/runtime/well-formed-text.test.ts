// Text fields are well-formed Unicode. `JSON.parse` turns the escape "\ud800" into a lone
// surrogate; kept raw in the log and the live frame but read back from D1 as U+FFFD, it would
// make history and live disagree. Every free-text field refuses it, over REST and sockets.
import { describe, expect, it } from 'vitest';
import type { ErrorFrame } from '../../worker/protocol/core';
import { api, connect, env, register, unique } from './helpers';
import { createStation, goLive, listen } from './station-fixtures';

const LONE = 'before \ud800 after';

interface ErrorBody {
  error: { code: string; fields?: { path: string; message: string }[] };
}

async function refusedField(res: Response): Promise<string | undefined> {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as ErrorBody;
  expect(error.code).toBe('invalid_body');
  expect(error.fields?.[0]?.message).toContain('well-formed');
  return error.fields?.[0]?.path;
}

describe('lone surrogates over REST', () => {
  it('refuses a comment body with one, and stores nothing', async () => {
    const user = await register();
    const itemId = unique('item');
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: user.token,
      json: { body: LONE },
    });
    expect(await refusedField(res)).toBe('body');
    const row = await env.DB.prepare('SELECT count(*) AS n FROM comments WHERE item_id = ?')
      .bind(itemId)
      .first<{ n: number }>();
    expect(row?.n).toBe(0);
  });

  it('refuses one in a station name and in a registration display name', async () => {
    const owner = await register('station_owner');
    const station = await api('/api/stations', {
      method: 'POST',
      token: owner.token,
      json: { name: LONE },
    });
    expect(await refusedField(station)).toBe('name');

    const email = `${unique('lone')}@example.test`;
    const registration = await api('/api/auth/register', {
      method: 'POST',
      json: { email, password: 'correct horse battery', displayName: LONE },
    });
    expect(await refusedField(registration)).toBe('displayName');
  });

  it('refuses one in chat sent over REST and in an event title', async () => {
    const owner = await register('station_owner');
    const { id } = await createStation(owner);
    const chat = await api(`/api/stations/${id}/chat`, {
      method: 'POST',
      token: owner.token,
      json: { body: LONE },
    });
    expect(await refusedField(chat)).toBe('body');

    const organiser = await register('organiser');
    const event = await api('/api/events', {
      method: 'POST',
      token: organiser.token,
      json: { title: LONE, venue: 'Hall', capacity: 10, startsAt: Date.now() + 86_400_000 },
    });
    expect(await refusedField(event)).toBe('title');
  });

  it('keeps well-formed text outside the Basic Multilingual Plane as it was sent', async () => {
    const user = await register();
    const itemId = unique('item');
    const body = 'a pair is fine: \ud83c\udfb7 🎷';
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: user.token,
      json: { body },
    });
    expect(res.status).toBe(201);
    const page = (await (await api(`/api/items/${itemId}/comments`)).json()) as {
      comments: { body: string }[];
    };
    expect(page.comments[0]?.body).toBe(body);
  });
});

describe('lone surrogates over sockets', () => {
  it('answers comment.create with an invalid_frame error naming the body; the socket stays open', async () => {
    const user = await register();
    const socket = await connect(`/ws/comments/${unique('item')}`, { token: user.token });
    await socket.next('welcome');
    socket.send({ type: 'comment.create', id: 'c1', body: LONE });
    const error = await socket.next<ErrorFrame>('error');
    expect(error).toMatchObject({ code: 'invalid_frame', id: 'c1' });
    expect(error.issues?.[0]?.path).toBe('body');
    socket.send({ type: 'comment.create', id: 'c2', body: 'still here' });
    expect(await socket.next('ack')).toMatchObject({ id: 'c2' });
    socket.close();
  });

  it('answers chat.send with an invalid_frame error naming the body', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    await goLive(owner, station.id);
    const { socket } = await listen(station.id, owner.token);
    socket.send({ type: 'chat.send', id: 'm1', body: LONE });
    const error = await socket.next<ErrorFrame>('error');
    expect(error).toMatchObject({ code: 'invalid_frame', id: 'm1' });
    expect(error.issues?.[0]?.path).toBe('body');
    socket.close();
  });
});
