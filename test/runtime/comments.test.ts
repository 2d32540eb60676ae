// Comment rooms (seed 003): comments stored and broadcast with seq, acks and dedupe, the REST
// path, deletes, typing and who-is-here presence.
import { describe, expect, it } from 'vitest';
import type {
  CommentCreatedEvent,
  CommentWelcome,
  TypingFrame,
} from '../../worker/protocol/comments';
import type {
  AckFrame,
  ErrorFrame,
  PresenceJoinedFrame,
  PresenceLeftFrame,
} from '../../worker/protocol/core';
import { api, connect, drained, env, register, unique } from './helpers';

const commentRoom = (itemId: string) =>
  env.COMMENT_ROOM.get(env.COMMENT_ROOM.idFromName(`comments:${itemId}`));

async function commentCount(itemId: string): Promise<number> {
  await drained(commentRoom(itemId));
  const row = await env.DB.prepare('SELECT COUNT(*) AS n FROM comments WHERE item_id = ?')
    .bind(itemId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

describe('comments over the socket', () => {
  it('welcomes with connection id, snapshot and position', async () => {
    const user = await register('listener', 'Wendy');
    const itemId = unique('story');
    const socket = await connect(`/ws/comments/${itemId}`, { token: user.token });
    const welcome = await socket.next<CommentWelcome>('welcome');
    expect(welcome.connectionId).toMatch(/[0-9a-f-]{36}/);
    expect(welcome).toMatchObject({ channel: `comments:${itemId}`, kind: 'comments', seq: 0 });
    expect(welcome.epoch).toMatch(/^[0-9a-f]{8}$/);
    expect(welcome.snapshot.recent).toEqual([]);
    expect(welcome.snapshot.presence).toMatchObject({ users: 1, connections: 1 });
    expect(welcome.snapshot.presence.members?.[0]?.user.name).toBe('Wendy');
    socket.close();
  });

  it('stores an acknowledged comment and broadcasts it with seq to every member, in order', async () => {
    const [a, b] = await Promise.all([register(), register()]);
    const itemId = unique('story');
    const sa = await connect(`/ws/comments/${itemId}`, { token: a.token });
    const sb = await connect(`/ws/comments/${itemId}`, { token: b.token });
    await sa.next('welcome');
    await sb.next('welcome');
    for (let i = 1; i <= 5; i++)
      sa.send({ type: 'comment.create', id: `c${i}`, body: `comment ${i}` });
    for (let i = 1; i <= 5; i++) {
      const ack = await sa.next<AckFrame>((f) => f.type === 'ack' && f.id === `c${i}`);
      expect(ack.seq).toBe(i);
    }
    const atB = [];
    for (let i = 1; i <= 5; i++) atB.push(await sb.next<CommentCreatedEvent>('comment.created'));
    expect(atB.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(atB.map((e) => e.comment.body)).toEqual([1, 2, 3, 4, 5].map((i) => `comment ${i}`));
    expect(atB[0]?.comment.user.id).toBe(a.id);
    expect(await commentCount(itemId)).toBe(5);
    sa.close();
    sb.close();
  });

  it('applies a repeated request id once and answers it with the same ack', async () => {
    const user = await register();
    const itemId = unique('story');
    const socket = await connect(`/ws/comments/${itemId}`, { token: user.token });
    await socket.next('welcome');
    socket.send({ type: 'comment.create', id: 'same', body: 'once' });
    socket.send({ type: 'comment.create', id: 'same', body: 'once' });
    const first = await socket.next<AckFrame>('ack');
    const second = await socket.next<AckFrame>('ack');
    expect(second.result).toEqual(first.result);
    expect(second.seq).toBe(first.seq);
    expect([first.duplicate, second.duplicate]).toContain(true);
    // Also across a reconnect: dedupe is per user, not per socket.
    socket.close();
    const again = await connect(`/ws/comments/${itemId}`, { token: user.token });
    await again.next('welcome');
    again.send({ type: 'comment.create', id: 'same', body: 'once' });
    expect(await again.next<AckFrame>('ack')).toMatchObject({ seq: first.seq, duplicate: true });
    expect(await commentCount(itemId)).toBe(1);
    expect(socket.all('comment.created')).toHaveLength(1);
    again.close();
  });

  it('lets anonymous clients read but refuses their writes with auth_required', async () => {
    const user = await register();
    const itemId = unique('story');
    const reader = await connect(`/ws/comments/${itemId}`);
    const welcome = await reader.next<CommentWelcome>('welcome');
    expect(welcome.user).toBeNull();
    reader.send({ type: 'comment.create', id: 'anon', body: 'hello' });
    expect(await reader.next<ErrorFrame>('error')).toMatchObject({
      code: 'auth_required',
      id: 'anon',
    });
    reader.send({ type: 'typing', isTyping: true });
    expect((await reader.next<ErrorFrame>('error')).code).toBe('auth_required');

    const writer = await connect(`/ws/comments/${itemId}`, { token: user.token });
    await writer.next('welcome');
    writer.send({ type: 'comment.create', body: 'visible to all' });
    expect((await reader.next<CommentCreatedEvent>('comment.created')).comment.body).toBe(
      'visible to all',
    );
    // Anonymous readers are connections, not members.
    expect(welcome.snapshot.presence).toMatchObject({ users: 0, connections: 1 });
    reader.close();
    writer.close();
  });

  it('lets the author delete a comment, refuses others, and tells everyone', async () => {
    const [author, other] = await Promise.all([register(), register()]);
    const itemId = unique('story');
    const sa = await connect(`/ws/comments/${itemId}`, { token: author.token });
    const so = await connect(`/ws/comments/${itemId}`, { token: other.token });
    await sa.next('welcome');
    await so.next('welcome');
    sa.send({ type: 'comment.create', id: 'c', body: 'mine' });
    const ack = await sa.next<AckFrame<{ comment: { id: string } }>>('ack');
    const commentId = ack.result?.comment.id as string;

    so.send({ type: 'comment.delete', id: 'd1', commentId });
    expect(await so.next<ErrorFrame>('error')).toMatchObject({ code: 'forbidden', id: 'd1' });
    so.send({ type: 'comment.delete', id: 'd2', commentId: 'no-such-comment' });
    expect(await so.next<ErrorFrame>('error')).toMatchObject({ code: 'not_found', id: 'd2' });

    sa.send({ type: 'comment.delete', id: 'd3', commentId });
    expect(await so.next('comment.deleted')).toMatchObject({
      commentId,
      deletedBy: author.id,
      seq: 2,
    });
    await drained(commentRoom(itemId));
    const row = await env.DB.prepare('SELECT deleted_by FROM comments WHERE id = ?')
      .bind(commentId)
      .first();
    expect(row).toEqual({ deleted_by: author.id });
    const fresh = await connect(`/ws/comments/${itemId}`);
    expect((await fresh.next<CommentWelcome>('welcome')).snapshot.recent).toEqual([]);
    for (const s of [sa, so, fresh]) s.close();
  });

  it('shows the latest comments in the welcome after the room restarts from D1', async () => {
    const user = await register();
    const itemId = unique('story');
    for (let i = 0; i < 3; i++) {
      await api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        json: { body: `n${i}` },
      });
    }
    const { evictDurableObject } = await import('cloudflare:test');
    await evictDurableObject(
      env.COMMENT_ROOM.get(env.COMMENT_ROOM.idFromName(`comments:${itemId}`)),
    );
    const socket = await connect(`/ws/comments/${itemId}`);
    const welcome = await socket.next<CommentWelcome>('welcome');
    expect(welcome.snapshot.recent.map((c) => c.body)).toEqual(['n0', 'n1', 'n2']);
    expect(welcome.seq).toBe(3);
    socket.close();
  });
});

describe('comments over REST', () => {
  it('posts a comment that reaches connected sockets exactly like a socket post', async () => {
    const user = await register();
    const itemId = unique('story');
    const watcher = await connect(`/ws/comments/${itemId}`);
    await watcher.next('welcome');
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: user.token,
      json: { body: 'from REST' },
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { comment: { id: string }; seq: number };
    const event = await watcher.next<CommentCreatedEvent>('comment.created');
    expect(event).toMatchObject({
      seq: created.seq,
      comment: { id: created.comment.id, body: 'from REST' },
    });
    watcher.close();
  });

  it('dedupes REST posts by Idempotency-Key', async () => {
    const user = await register();
    const itemId = unique('story');
    const post = () =>
      api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        json: { body: 'retry me' },
        headers: { 'idempotency-key': 'k-1' },
      });
    const [a, b] = await Promise.all([post(), post()]);
    expect(await a.json()).toEqual(await b.json());
    expect(await commentCount(itemId)).toBe(1);
  });

  it('replays the first answer byte for byte for 24 hours and refuses the key for another body', async () => {
    const user = await register();
    const itemId = unique('story');
    const post = (body: string) =>
      api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        json: { body },
        headers: { 'idempotency-key': 'k-once' },
      });
    const first = await post('same words');
    const firstText = await first.text();
    const again = await post('same words');
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(firstText);
    const other = await post('other words');
    expect(other.status).toBe(422);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe(
      'idempotency_key_reused',
    );
    // A socket frame with the same id is the same request: replayed, not stored again.
    const socket = await connect(`/ws/comments/${itemId}`, { token: user.token });
    await socket.next('welcome');
    socket.send({ type: 'comment.create', id: 'k-once', body: 'same words' });
    expect(await socket.next<AckFrame>('ack')).toMatchObject({ duplicate: true, seq: 1 });
    expect(await commentCount(itemId)).toBe(1);
    socket.close();
  });

  it('serves the welcome and the first page from the room, not from D1', async () => {
    const user = await register();
    const itemId = unique('story');
    for (const body of ['kept', 'here']) {
      await api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        json: { body },
      });
    }
    await drained(commentRoom(itemId));
    // D1 loses its rows; the room is evicted and wakes with its own storage only.
    await env.DB.prepare('DELETE FROM comments WHERE item_id = ?').bind(itemId).run();
    const { evictDurableObject } = await import('cloudflare:test');
    await evictDurableObject(commentRoom(itemId));
    const socket = await connect(`/ws/comments/${itemId}`);
    const welcome = await socket.next<CommentWelcome>('welcome');
    expect(welcome.snapshot.recent.map((c) => c.body)).toEqual(['kept', 'here']);
    const page = await api(`/api/items/${itemId}/comments`);
    expect(
      ((await page.json()) as { comments: { body: string }[] }).comments.map((c) => c.body),
    ).toEqual(['here', 'kept']);
    socket.close();
  });

  it('pages comments newest first with a cursor', async () => {
    const user = await register();
    const itemId = unique('story');
    for (let i = 0; i < 5; i++) {
      const res = await api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        json: { body: `c${i}` },
      });
      expect(res.status).toBe(201);
    }
    type Page = { comments: { body: string }[]; nextCursor: string | null };
    const first = (await (await api(`/api/items/${itemId}/comments?limit=2`)).json()) as Page;
    expect(first.comments.map((c) => c.body)).toEqual(['c4', 'c3']);
    const second = (await (
      await api(`/api/items/${itemId}/comments?limit=2&before=${first.nextCursor}`)
    ).json()) as Page;
    expect(second.comments.map((c) => c.body)).toEqual(['c2', 'c1']);
    const third = (await (
      await api(`/api/items/${itemId}/comments?limit=2&before=${second.nextCursor}`)
    ).json()) as Page;
    expect(third.comments.map((c) => c.body)).toEqual(['c0']);
    expect(third.nextCursor).toBeNull();
  });

  it('refuses bad REST input with stable codes and changes nothing', async () => {
    const user = await register();
    const itemId = unique('story');
    const cases: [RequestInit & { token?: string; json?: unknown }, number, string][] = [
      [{ method: 'POST', json: { body: 'no token' } }, 401, 'auth_required'],
      [{ method: 'POST', token: user.token, json: { body: '' } }, 400, 'invalid_body'],
      [{ method: 'POST', token: user.token, json: { text: 'wrong field' } }, 400, 'invalid_body'],
      [
        {
          method: 'POST',
          token: user.token,
          body: 'not json',
          headers: { 'content-type': 'application/json' },
        },
        400,
        'invalid_json',
      ],
      [
        {
          method: 'POST',
          token: user.token,
          json: { body: 'x' },
          headers: { 'idempotency-key': 'k'.repeat(256) },
        },
        400,
        'invalid_idempotency_key',
      ],
      [
        {
          method: 'POST',
          token: user.token,
          json: { body: 'x' },
          headers: { 'idempotency-key': 'has space' },
        },
        400,
        'invalid_idempotency_key',
      ],
    ];
    for (const [init, status, code] of cases) {
      const res = await api(`/api/items/${itemId}/comments`, init);
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    const badPage = await api(`/api/items/${itemId}/comments?limit=0`);
    expect(badPage.status).toBe(400);
    expect(((await badPage.json()) as { error: { code: string } }).error.code).toBe(
      'invalid_query',
    );
    const badCursor = await api(`/api/items/${itemId}/comments?before=nonsense`);
    expect(badCursor.status).toBe(400);
    expect(await commentCount(itemId)).toBe(0);
  });

  it('lets an admin delete anyone’s comment over REST', async () => {
    const [author, admin] = await Promise.all([register(), register('admin')]);
    const itemId = unique('story');
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: author.token,
      json: { body: 'hmm' },
    });
    const { comment } = (await res.json()) as { comment: { id: string } };
    const del = await api(`/api/items/${itemId}/comments/${comment.id}`, {
      method: 'DELETE',
      token: admin.token,
    });
    expect(del.status).toBe(200);
    const twice = await api(`/api/items/${itemId}/comments/${comment.id}`, {
      method: 'DELETE',
      token: admin.token,
    });
    expect(twice.status).toBe(404);
  });
});

describe('typing and presence', () => {
  it('broadcasts typing to others only, never stores or sequences it, and throttles repeats', async () => {
    const [a, b] = await Promise.all([register('listener', 'Ann'), register('listener', 'Ben')]);
    const itemId = unique('story');
    const sa = await connect(`/ws/comments/${itemId}`, { token: a.token });
    const sb = await connect(`/ws/comments/${itemId}`, { token: b.token });
    await sa.next('welcome');
    await sb.next('welcome');
    for (let i = 0; i < 5; i++) sa.send({ type: 'typing', isTyping: true });
    const typing = await sb.next<TypingFrame>('typing');
    expect(typing).toMatchObject({
      user: { id: a.id, name: 'Ann' },
      isTyping: true,
      expiresInMs: 5000,
    });
    expect('seq' in typing).toBe(false);
    sa.send({ type: 'typing', isTyping: false });
    expect(await sb.next<TypingFrame>('typing')).toMatchObject({ isTyping: false });
    // Five "typing" frames in a burst became one; the sender never hears its own.
    expect(sb.all('typing')).toHaveLength(2);
    expect(sa.all('typing')).toHaveLength(0);
    sa.close();
    sb.close();
  });

  it('shows who is typing in the welcome and clears it when the typist leaves', async () => {
    const [a, b] = await Promise.all([register(), register()]);
    const itemId = unique('story');
    const sa = await connect(`/ws/comments/${itemId}`, { token: a.token });
    await sa.next('welcome');
    sa.send({ type: 'typing', isTyping: true });
    sa.send({ type: 'ping', id: 'sync' });
    await sa.next('pong');
    const sb = await connect(`/ws/comments/${itemId}`, { token: b.token });
    const welcome = await sb.next<CommentWelcome>('welcome');
    expect(welcome.snapshot.typing.map((u) => u.id)).toEqual([a.id]);
    sa.close();
    expect(await sb.next<TypingFrame>('typing')).toMatchObject({
      user: { id: a.id },
      isTyping: false,
    });
    sb.close();
  });

  it('counts two tabs of one user as one member and announces join and leave once', async () => {
    const [alice, bob] = await Promise.all([
      register('listener', 'Alice'),
      register('listener', 'Bob'),
    ]);
    const itemId = unique('story');
    const watcher = await connect(`/ws/comments/${itemId}`, { token: bob.token });
    await watcher.next('welcome');
    const tab1 = await connect(`/ws/comments/${itemId}`, { token: alice.token });
    const tab2 = await connect(`/ws/comments/${itemId}`, { token: alice.token });
    await tab1.next('welcome');
    const w2 = await tab2.next<CommentWelcome>('welcome');
    expect(w2.snapshot.presence).toMatchObject({ users: 2, connections: 3 });
    expect(w2.snapshot.presence.members?.find((m) => m.user.id === alice.id)?.connections).toBe(2);
    const joined = await watcher.next<PresenceJoinedFrame>('presence.joined');
    expect(joined).toMatchObject({ user: { id: alice.id }, users: 2, connections: 2 });

    tab1.close();
    await tab1.closed();
    tab2.send({ type: 'ping', id: 'x' });
    await tab2.next('pong');
    watcher.send({ type: 'ping', id: 'y' });
    await watcher.next('pong');
    expect(watcher.all('presence.left')).toHaveLength(0);
    tab2.close();
    const left = await watcher.next<PresenceLeftFrame>('presence.left');
    expect(left).toMatchObject({ user: { id: alice.id }, users: 1, connections: 1 });
    expect(watcher.all('presence.joined')).toHaveLength(1);
    watcher.close();
  });
});
