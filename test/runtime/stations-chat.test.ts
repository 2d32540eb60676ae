// Live chat (seed 001): anonymous read-only, authenticated send, validation and rate, stored
// and broadcast in seq order, duplicate request ids applied once, resume after a drop, REST
// history, deletion seen by everyone, and mute/ban moderation by owners.
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type {
  ChatDeletedEvent,
  ChatMessage,
  ChatMessageEvent,
  ModerationFrame,
} from '../../worker/protocol/stream';
import { api, drained, env, register, type TestUser, upgrade } from './helpers';
import {
  closeAll,
  createStation,
  type ErrorBody,
  goLive,
  listen,
  sessionRows,
  streamRoom,
} from './station-fixtures';

async function chatRows(stationId: string) {
  await drained(streamRoom(stationId));
  const { results } = await env.DB.prepare(
    'SELECT id, session_id, user_id, body, deleted_at, deleted_by FROM chat_messages WHERE station_id = ? ORDER BY created_at, id',
  )
    .bind(stationId)
    .all<{
      id: string;
      session_id: string | null;
      user_id: string;
      body: string;
      deleted_at: number | null;
      deleted_by: string | null;
    }>();
  return results;
}

async function moderationRows(stationId: string) {
  await drained(streamRoom(stationId));
  const { results } = await env.DB.prepare(
    'SELECT target_user_id, action, moderator_id, expires_at FROM moderation_actions WHERE station_id = ? ORDER BY created_at',
  )
    .bind(stationId)
    .all<{ target_user_id: string; action: string; moderator_id: string; expires_at: number }>();
  return results;
}

async function sendAndAck(
  socket: Awaited<ReturnType<typeof listen>>['socket'],
  id: string,
  body: string,
) {
  socket.send({ type: 'chat.send', id, body });
  return socket.next<AckFrame<{ message: ChatMessage }> | ErrorFrame>(
    (f) => (f.type === 'ack' || f.type === 'error') && f.id === id,
  );
}

async function setup() {
  const [owner, alice, bob] = await Promise.all([
    register('station_owner'),
    register('listener', 'Alice'),
    register('listener', 'Bob'),
  ]);
  const station = await createStation(owner);
  return { owner, alice, bob, station };
}

describe('who may chat', () => {
  it('lets anonymous listeners read the chat but refuses their sends with a clear error', async () => {
    const { alice, station } = await setup();
    const anon = await listen(station.id);
    const writer = await listen(station.id, alice.token);
    anon.socket.send({ type: 'chat.send', id: 'a1', body: 'hi' });
    const refused = await anon.socket.next<ErrorFrame>('error');
    expect(refused).toMatchObject({ id: 'a1', code: 'auth_required' });
    expect(refused.message).toMatch(/sign in/);
    await sendAndAck(writer.socket, 'w1', 'hello all');
    const seen = await anon.socket.next<ChatMessageEvent>('chat.message');
    expect(seen.message).toMatchObject({ body: 'hello all', user: { id: alice.id } });
    const rest = await api(`/api/stations/${station.id}/chat`, {
      method: 'POST',
      json: { body: 'hi' },
    });
    expect(rest.status).toBe(401);
    expect(await chatRows(station.id)).toHaveLength(1);
    await closeAll([anon.socket, writer.socket]);
  });
});

describe('sending', () => {
  it('stores an acknowledged message and broadcasts it to every listener in seq order', async () => {
    const { owner, alice, bob, station } = await setup();
    const live = await goLive(owner, station.id);
    const a = await listen(station.id, alice.token);
    const b = await listen(station.id, bob.token);
    const anon = await listen(station.id);
    for (let i = 1; i <= 4; i++) a.socket.send({ type: 'chat.send', id: `m${i}`, body: `a${i}` });
    for (let i = 1; i <= 4; i++) b.socket.send({ type: 'chat.send', id: `m${i}`, body: `b${i}` });
    const streams = [];
    for (const l of [a, b, anon]) {
      const events = [];
      for (let i = 0; i < 8; i++)
        events.push(await l.socket.next<ChatMessageEvent>('chat.message'));
      streams.push(events.map((e) => `${e.seq}:${e.message.body}`));
    }
    expect(streams[1]).toEqual(streams[0]);
    expect(streams[2]).toEqual(streams[0]);
    const seqs = streams[0]?.map((s) => Number(s.split(':')[0]));
    expect(seqs).toEqual(seqs?.slice().sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(8);
    const rows = await chatRows(station.id);
    expect(rows).toHaveLength(8);
    expect(rows.every((r) => r.session_id === live.session.id)).toBe(true);
    expect((await sessionRows(station.id))[0]?.chat_message_count).toBe(8);
    await closeAll([a.socket, b.socket, anon.socket]);
  });

  it('trims messages and refuses empty, oversize and non-string bodies with invalid_frame', async () => {
    const { alice, station } = await setup();
    const a = await listen(station.id, alice.token);
    const ok = await sendAndAck(a.socket, 'trim', '   spaced   ');
    expect((ok as AckFrame<{ message: ChatMessage }>).result?.message.body).toBe('spaced');
    for (const [id, body] of [
      ['empty', '   '],
      ['long', 'x'.repeat(501)],
      ['number', 42],
    ] as const) {
      a.socket.send({ type: 'chat.send', id, body });
      expect(await a.socket.next<ErrorFrame>('error'), id).toMatchObject({
        id,
        code: 'invalid_frame',
      });
    }
    const fits = await sendAndAck(a.socket, 'max', 'y'.repeat(500));
    expect(fits.type).toBe('ack');
    const rest = await api(`/api/stations/${station.id}/chat`, {
      method: 'POST',
      token: alice.token,
      json: { body: '' },
    });
    expect(rest.status).toBe(400);
    expect(((await rest.json()) as ErrorBody).error.fields?.[0]?.path).toBe('body');
    expect(await chatRows(station.id)).toHaveLength(2);
    a.socket.close();
  });

  it('limits each user’s pace across all their tabs with rate_limited', async () => {
    const { alice, station } = await setup();
    const tab1 = await listen(station.id, alice.token);
    const tab2 = await listen(station.id, alice.token);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await sendAndAck(tab1.socket, `t1-${i}`, `one ${i}`));
    for (let i = 0; i < 3; i++) answers.push(await sendAndAck(tab2.socket, `t2-${i}`, `two ${i}`));
    expect(answers.slice(0, 5).every((f) => f.type === 'ack')).toBe(true);
    expect(answers[5]).toMatchObject({ type: 'error', code: 'rate_limited' });
    expect(await chatRows(station.id)).toHaveLength(5);
    // The refused request was not stored as answered, so it can be retried later.
    expect(tab2.socket.closeEvent).toBeNull();
    await closeAll([tab1.socket, tab2.socket]);
  });

  it('applies a duplicate send (same request id) once, over the socket and over REST', async () => {
    const { alice, station } = await setup();
    const a = await listen(station.id, alice.token);
    const watcher = await listen(station.id);
    a.socket.send({ type: 'chat.send', id: 'dup', body: 'only once' });
    a.socket.send({ type: 'chat.send', id: 'dup', body: 'only once' });
    const first = await a.socket.next<AckFrame>('ack');
    const second = await a.socket.next<AckFrame>('ack');
    expect(second.seq).toBe(first.seq);
    expect([first.duplicate, second.duplicate]).toContain(true);
    // A retry over REST with the same key is the same request.
    const rest = await api(`/api/stations/${station.id}/chat`, {
      method: 'POST',
      token: alice.token,
      headers: { 'idempotency-key': 'dup' },
      json: { body: 'only once' },
    });
    expect(rest.status).toBe(201);
    expect(((await rest.json()) as { seq: number }).seq).toBe(first.seq);
    for (let i = 0; i < 2; i++) {
      await api(`/api/stations/${station.id}/chat`, {
        method: 'POST',
        token: alice.token,
        headers: { 'idempotency-key': 'rest-key' },
        json: { body: 'by rest' },
      });
    }
    await watcher.socket.next((f) => f.type === 'chat.message' && f.seq === (first.seq ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(watcher.socket.all('chat.message')).toHaveLength(2);
    expect((await chatRows(station.id)).map((r) => r.body)).toEqual(['only once', 'by rest']);
    await closeAll([a.socket, watcher.socket]);
  });

  it('replays the messages a dropped listener missed when it resumes, and nothing twice', async () => {
    const { alice, station } = await setup();
    const writer = await listen(station.id, alice.token);
    const reader = await listen(station.id);
    await sendAndAck(writer.socket, 'before', 'before the drop');
    const seen = await reader.socket.next<ChatMessageEvent>('chat.message');
    reader.socket.close();
    await reader.socket.closed();
    for (let i = 1; i <= 3; i++) await sendAndAck(writer.socket, `gap${i}`, `missed ${i}`);
    const back = await listen(station.id, undefined, {
      since: seen.seq,
      epoch: reader.welcome.epoch,
    });
    expect(back.welcome.recovery).toEqual({ requested: true, recovered: true, missed: 3 });
    const replayed = [];
    for (let i = 0; i < 3; i++)
      replayed.push(await back.socket.next<ChatMessageEvent>('chat.message'));
    expect(replayed.map((e) => e.message.body)).toEqual(['missed 1', 'missed 2', 'missed 3']);
    expect(replayed.map((e) => e.seq)).toEqual([seen.seq + 1, seen.seq + 2, seen.seq + 3]);
    await sendAndAck(writer.socket, 'after', 'after the resume');
    const next = await back.socket.next<ChatMessageEvent>('chat.message');
    expect(next.seq).toBe(seen.seq + 4);
    await closeAll([writer.socket, back.socket]);
  });
});

describe('history', () => {
  it('welcomes with the latest page (also after an eviction) and pages older messages over REST', async () => {
    const { alice, bob, station } = await setup();
    for (let i = 1; i <= 7; i++) {
      const author = i % 2 ? alice : bob;
      const res = await api(`/api/stations/${station.id}/chat`, {
        method: 'POST',
        token: author.token,
        json: { body: `message ${i}` },
      });
      expect(res.status).toBe(201);
    }
    await evictDurableObject(streamRoom(station.id));
    const l = await listen(station.id);
    expect(l.welcome.snapshot.chat.map((m) => m.body)).toEqual(
      Array.from({ length: 7 }, (_, i) => `message ${i + 1}`),
    );
    const page1 = (await (await api(`/api/stations/${station.id}/chat?limit=3`)).json()) as {
      messages: ChatMessage[];
      nextCursor: string;
    };
    expect(page1.messages.map((m) => m.body)).toEqual(['message 7', 'message 6', 'message 5']);
    const page2 = (await (
      await api(`/api/stations/${station.id}/chat?limit=3&before=${page1.nextCursor}`)
    ).json()) as { messages: ChatMessage[]; nextCursor: string | null };
    expect(page2.messages.map((m) => m.body)).toEqual(['message 4', 'message 3', 'message 2']);
    const page3 = (await (
      await api(`/api/stations/${station.id}/chat?limit=3&before=${page2.nextCursor}`)
    ).json()) as { messages: ChatMessage[]; nextCursor: string | null };
    expect(page3).toMatchObject({ nextCursor: null });
    expect(page3.messages.map((m) => m.body)).toEqual(['message 1']);
    expect((await api(`/api/stations/${station.id}/chat?before=nope`)).status).toBe(400);
    expect((await api('/api/stations/nope/chat')).status).toBe(404);
    l.socket.close();
  });
});

describe('deleting', () => {
  it('lets the owner delete any message; everyone sees the deletion and history drops it', async () => {
    const { owner, alice, bob, station } = await setup();
    const a = await listen(station.id, alice.token);
    const b = await listen(station.id, bob.token);
    const o = await listen(station.id, owner.token);
    const sent = (await sendAndAck(a.socket, 'x', 'regrettable')) as AckFrame<{
      message: ChatMessage;
    }>;
    const messageId = sent.result?.message.id as string;
    b.socket.send({ type: 'chat.delete', id: 'not-yours', messageId });
    expect(await b.socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'not-yours',
      code: 'forbidden',
    });
    o.socket.send({ type: 'chat.delete', id: 'mod', messageId });
    await o.socket.next((f) => f.type === 'ack' && f.id === 'mod');
    for (const l of [a, b, o]) {
      const deleted = await l.socket.next<ChatDeletedEvent>('chat.deleted');
      expect(deleted).toMatchObject({ messageId, deletedBy: owner.id });
    }
    const [row] = await chatRows(station.id);
    expect(row).toMatchObject({ deleted_by: owner.id });
    expect(row?.deleted_at).not.toBeNull();
    expect(await moderationRows(station.id)).toEqual([
      expect.objectContaining({ action: 'delete_message', target_user_id: alice.id }),
    ]);
    const history = (await (await api(`/api/stations/${station.id}/chat`)).json()) as {
      messages: ChatMessage[];
    };
    expect(history.messages).toEqual([]);
    const fresh = await listen(station.id);
    expect(fresh.welcome.snapshot.chat).toEqual([]);
    o.socket.send({ type: 'chat.delete', id: 'again', messageId });
    expect(await o.socket.next<ErrorFrame>('error')).toMatchObject({ code: 'not_found' });
    await closeAll([a.socket, b.socket, o.socket, fresh.socket]);
  });

  it('lets authors delete their own messages over REST without a moderation record', async () => {
    const { alice, station } = await setup();
    const res = await api(`/api/stations/${station.id}/chat`, {
      method: 'POST',
      token: alice.token,
      json: { body: 'oops' },
    });
    const { message } = (await res.json()) as { message: ChatMessage };
    const del = await api(`/api/stations/${station.id}/chat/${message.id}`, {
      method: 'DELETE',
      token: alice.token,
    });
    expect(del.status).toBe(200);
    expect(await moderationRows(station.id)).toEqual([]);
  });
});

describe('moderation', () => {
  async function moderate(owner: TestUser, stationId: string, json: Record<string, unknown>) {
    return api(`/api/stations/${stationId}/moderation`, {
      method: 'POST',
      token: owner.token,
      json,
    });
  }

  it('mutes a user: their sends are refused with muted until unmuted, others chat on', async () => {
    const { owner, alice, bob, station } = await setup();
    const a = await listen(station.id, alice.token);
    const b = await listen(station.id, bob.token);
    const res = await moderate(owner, station.id, {
      userId: alice.id,
      action: 'mute',
      reason: 'spam',
    });
    expect(res.status).toBe(201);
    const notice = await a.socket.next<ModerationFrame>('moderation');
    expect(notice).toMatchObject({ action: 'mute', until: null, reason: 'spam' });
    const refused = await sendAndAck(a.socket, 'muted', 'let me speak');
    expect(refused).toMatchObject({ type: 'error', code: 'muted' });
    expect((refused as ErrorFrame).message).toMatch(/muted/);
    expect((await sendAndAck(b.socket, 'free', 'still here')).type).toBe('ack');
    const again = await listen(station.id, alice.token);
    expect(again.welcome.snapshot.you).toMatchObject({ muted: true, mutedUntil: null });
    const rest = await api(`/api/stations/${station.id}/chat`, {
      method: 'POST',
      token: alice.token,
      json: { body: 'via rest' },
    });
    expect(rest.status).toBe(403);
    expect(((await rest.json()) as ErrorBody).error.code).toBe('muted');
    await moderate(owner, station.id, { userId: alice.id, action: 'unmute' });
    expect(await a.socket.next<ModerationFrame>('moderation')).toMatchObject({ action: 'unmute' });
    expect((await sendAndAck(a.socket, 'back', 'thanks')).type).toBe('ack');
    expect((await moderationRows(station.id)).map((r) => r.action)).toEqual(['mute', 'unmute']);
    await closeAll([a.socket, b.socket, again.socket]);
  });

  it('gives a timed mute an end, in the notice and in D1', async () => {
    const { owner, alice, station } = await setup();
    const a = await listen(station.id, alice.token);
    const before = Date.now();
    await moderate(owner, station.id, { userId: alice.id, action: 'mute', durationSeconds: 60 });
    const notice = await a.socket.next<ModerationFrame>('moderation');
    expect(notice.until).toBeGreaterThanOrEqual(before + 60_000);
    expect((await moderationRows(station.id))[0]?.expires_at).toBe(notice.until);
    const list = await api(`/api/stations/${station.id}/moderation`, { token: owner.token });
    expect(((await list.json()) as { restrictions: unknown[] }).restrictions).toEqual([
      expect.objectContaining({ userId: alice.id, kind: 'mute', until: notice.until }),
    ]);
    a.socket.close();
  });

  it('bans a user over the owner’s socket: their sockets close with 4403 and reconnects are refused', async () => {
    const { owner, alice, station } = await setup();
    const tabs = [await listen(station.id, alice.token), await listen(station.id, alice.token)];
    const o = await listen(station.id, owner.token);
    o.socket.send({ type: 'chat.moderate', id: 'ban', userId: alice.id, action: 'ban' });
    expect(await o.socket.next<AckFrame>('ack')).toMatchObject({
      id: 'ban',
      result: { userId: alice.id, action: 'ban', until: null },
    });
    for (const t of tabs) expect((await t.socket.closed()).code).toBe(4403);
    const refused = await upgrade(`/ws/stations/${station.id}`, { token: alice.token });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('banned');
    const rest = await api(`/api/stations/${station.id}/chat`, {
      method: 'POST',
      token: alice.token,
      json: { body: 'ban evasion' },
    });
    expect(((await rest.json()) as ErrorBody).error.code).toBe('banned');
    o.socket.send({ type: 'chat.moderate', id: 'unban', userId: alice.id, action: 'unban' });
    await o.socket.next((f) => f.type === 'ack' && f.id === 'unban');
    const back = await listen(station.id, alice.token);
    expect(back.welcome.snapshot.you.muted).toBe(false);
    await closeAll([o.socket, back.socket]);
  });

  it('refuses moderation by non-owners, of the owner, and of unknown users', async () => {
    const { owner, alice, bob, station } = await setup();
    const byListener = await moderate(alice, station.id, { userId: bob.id, action: 'mute' });
    expect(byListener.status).toBe(403);
    const ofOwner = await moderate(owner, station.id, { userId: owner.id, action: 'ban' });
    expect(ofOwner.status).toBe(403);
    const unknown = await moderate(owner, station.id, { userId: 'nobody', action: 'mute' });
    expect(unknown.status).toBe(404);
    const bad = await moderate(owner, station.id, { userId: bob.id, action: 'shout' });
    expect(bad.status).toBe(400);
    const b = await listen(station.id, bob.token);
    b.socket.send({ type: 'chat.moderate', id: 'm', userId: alice.id, action: 'mute' });
    expect(await b.socket.next<ErrorFrame>('error')).toMatchObject({ id: 'm', code: 'forbidden' });
    expect(await moderationRows(station.id)).toEqual([]);
    b.socket.close();
  });
});
