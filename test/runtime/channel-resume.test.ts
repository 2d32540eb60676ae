// The sequence log: resume within the window loses and duplicates nothing; beyond it, or on an
// epoch change, the client is told to start from a fresh snapshot. The channel survives eviction.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { SequenceLog } from '../../worker/channel/log';
import type { CommentCreatedEvent, CommentWelcome } from '../../worker/protocol/comments';
import type { AckFrame, PresenceLeftFrame } from '../../worker/protocol/core';
import type { CommentRoom } from '../../worker/rooms/comments/CommentRoom';
import { connect, env, register, unique } from './helpers';

const stubOf = (itemId: string) =>
  env.COMMENT_ROOM.get(env.COMMENT_ROOM.idFromName(`comments:${itemId}`));

/** White-box access to a room's protected log, for tests only. */
const logOf = (room: CommentRoom) => (room as unknown as { log: SequenceLog }).log;

async function post(socket: Awaited<ReturnType<typeof connect>>, n: number, prefix = 'm') {
  for (let i = 1; i <= n; i++)
    socket.send({ type: 'comment.create', id: `${prefix}${i}`, body: `${prefix}${i}` });
  for (let i = 1; i <= n; i++)
    await socket.next<AckFrame>((f) => f.type === 'ack' && f.id === `${prefix}${i}`);
}

describe('resume', () => {
  it('replays exactly the missed events, in order, right after the welcome', async () => {
    const user = await register();
    const itemId = unique('resume');
    const writer = await connect(`/ws/comments/${itemId}`, { token: user.token });
    const reader = await connect(`/ws/comments/${itemId}`);
    await writer.next('welcome');
    const first = await reader.next<CommentWelcome>('welcome');
    await post(writer, 3, 'a');
    const seen = [];
    for (let i = 0; i < 3; i++)
      seen.push(await reader.next<CommentCreatedEvent>('comment.created'));
    const last = seen.at(-1)?.seq as number;
    reader.close();
    await reader.closed();

    await post(writer, 4, 'b');
    const back = await connect(`/ws/comments/${itemId}`, {
      query: { since: last, epoch: first.epoch },
    });
    const welcome = await back.next<CommentWelcome>('welcome');
    expect(welcome.recovery).toEqual({ requested: true, recovered: true, missed: 4 });
    expect(welcome.seq).toBe(7);
    await back.next((f) => f.seq === 7);
    // The replayed frames are the very next frames, nothing else in between.
    expect(back.received.slice(1, 5).map((f) => f.seq)).toEqual([4, 5, 6, 7]);
    expect(
      back.received.slice(1, 5).map((f) => (f as unknown as CommentCreatedEvent).comment.body),
    ).toEqual(['b1', 'b2', 'b3', 'b4']);
    // And live events continue after them without a gap or a duplicate.
    await post(writer, 1, 'c');
    expect(
      (await back.next<CommentCreatedEvent>((f) => f.type === 'comment.created' && f.seq === 8))
        .comment.body,
    ).toBe('c1');
    expect(back.all('comment.created').map((f) => f.seq)).toEqual([4, 5, 6, 7, 8]);
    writer.close();
    back.close();
  });

  it('recovers with nothing to replay when nothing was missed', async () => {
    const user = await register();
    const itemId = unique('resume');
    const s = await connect(`/ws/comments/${itemId}`, { token: user.token });
    const w = await s.next<CommentWelcome>('welcome');
    await post(s, 2);
    s.close();
    const again = await connect(`/ws/comments/${itemId}`, { query: { since: 2, epoch: w.epoch } });
    expect((await again.next<CommentWelcome>('welcome')).recovery).toEqual({
      requested: true,
      recovered: true,
      missed: 0,
    });
    again.close();
  });

  it('answers recovered: false with a fresh snapshot when the epoch changed', async () => {
    const user = await register();
    const itemId = unique('resume');
    const s = await connect(`/ws/comments/${itemId}`, { token: user.token });
    await s.next('welcome');
    await post(s, 2);
    const again = await connect(`/ws/comments/${itemId}`, {
      query: { since: 1, epoch: 'deadbeef' },
    });
    const welcome = await again.next<CommentWelcome>('welcome');
    expect(welcome.recovery).toEqual({ requested: true, recovered: false, missed: 0 });
    expect(welcome.snapshot.recent.map((c) => c.body)).toEqual(['m1', 'm2']);
    expect(again.received).toHaveLength(1);
    s.close();
    again.close();
  });

  it('answers recovered: false when the gap is older than the age window', async () => {
    const user = await register();
    const itemId = unique('resume');
    const s = await connect(`/ws/comments/${itemId}`, { token: user.token });
    const w = await s.next<CommentWelcome>('welcome');
    await post(s, 3);
    // A day and a bit later, the trim drops everything older than the 24 h window.
    await runInDurableObject(stubOf(itemId), (room: CommentRoom) =>
      logOf(room).trim(Date.now() + 25 * 3600_000),
    );
    const again = await connect(`/ws/comments/${itemId}`, { query: { since: 1, epoch: w.epoch } });
    expect((await again.next<CommentWelcome>('welcome')).recovery).toMatchObject({
      recovered: false,
    });
    s.close();
    again.close();
  });

  it('answers recovered: false when the gap is beyond the count window', async () => {
    const user = await register();
    const itemId = unique('resume');
    const s = await connect(`/ws/comments/${itemId}`, { token: user.token });
    const w = await s.next<CommentWelcome>('welcome');
    await post(s, 1);
    // Fill the log past its 1000-event window with events appended inside the room.
    const size = await runInDurableObject(stubOf(itemId), (room: CommentRoom) => {
      const log = logOf(room);
      for (let i = 0; i < 1000; i++) log.append({ type: 'test.filler', i });
      return log.size();
    });
    expect(size).toBe(1000);
    const beyond = await connect(`/ws/comments/${itemId}`, { query: { since: 0, epoch: w.epoch } });
    expect((await beyond.next<CommentWelcome>('welcome')).recovery).toMatchObject({
      recovered: false,
    });
    const within = await connect(`/ws/comments/${itemId}`, { query: { since: 1, epoch: w.epoch } });
    expect((await within.next<CommentWelcome>('welcome')).recovery).toEqual({
      requested: true,
      recovered: true,
      missed: 1000,
    });
    for (const x of [s, beyond, within]) x.close();
  });

  it('answers recovered: false for a position ahead of the channel', async () => {
    const itemId = unique('resume');
    const s = await connect(`/ws/comments/${itemId}`);
    const w = await s.next<CommentWelcome>('welcome');
    const again = await connect(`/ws/comments/${itemId}`, { query: { since: 99, epoch: w.epoch } });
    expect((await again.next<CommentWelcome>('welcome')).recovery).toMatchObject({
      recovered: false,
    });
    s.close();
    again.close();
  });

  it.each([
    [{ since: -1, epoch: 'abc' }],
    [{ since: 'abc', epoch: 'abc' }],
    [{ since: 1 }],
    [{ since: 1, epoch: 'bad epoch!' }],
  ])('refuses a malformed resume query %j with 400 before any DO', async (query) => {
    const { upgrade } = await import('./helpers');
    const res = await upgrade(`/ws/comments/${unique('resume')}`, {
      query: query as Record<string, string>,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_query');
  });
});

describe('hibernation and eviction', () => {
  it('keeps its roster, its log and its open sockets across an eviction', async () => {
    const [a, b] = await Promise.all([register(), register()]);
    const itemId = unique('evict');
    const sa = await connect(`/ws/comments/${itemId}`, { token: a.token });
    const sb1 = await connect(`/ws/comments/${itemId}`, { token: b.token });
    const sb2 = await connect(`/ws/comments/${itemId}`, { token: b.token });
    const w = await sa.next<CommentWelcome>('welcome');
    await sb1.next('welcome');
    await sb2.next('welcome');
    await post(sa, 2);

    await evictDurableObject(stubOf(itemId));

    // Same sockets still work, and the sequence continues where it was.
    sb1.send({ type: 'comment.create', id: 'after', body: 'after eviction' });
    expect(await sb1.next<AckFrame>((f) => f.type === 'ack' && f.id === 'after')).toMatchObject({
      seq: 3,
    });
    expect(
      (await sa.next<CommentCreatedEvent>((f) => f.type === 'comment.created' && f.seq === 3))
        .comment.body,
    ).toBe('after eviction');
    // The roster was rebuilt from the hibernated sockets.
    const fresh = await connect(`/ws/comments/${itemId}`, { query: { since: 0, epoch: w.epoch } });
    const welcome = await fresh.next<CommentWelcome>('welcome');
    expect(welcome.snapshot.presence).toMatchObject({ users: 2, connections: 4 });
    expect(welcome.epoch).toBe(w.epoch);
    expect(welcome.recovery).toEqual({ requested: true, recovered: true, missed: 3 });
    // And leaving after the eviction still updates it.
    sb1.close();
    sb2.close();
    expect(await sa.next<PresenceLeftFrame>('presence.left')).toMatchObject({
      user: { id: b.id },
      users: 1,
      connections: 2,
    });
    sa.close();
    fresh.close();
  });

  it('sweeps ghost sockets that stopped sending heartbeats', async () => {
    const [a, b] = await Promise.all([register(), register()]);
    const itemId = unique('ghost');
    const ghost = await connect(`/ws/comments/${itemId}`, { token: a.token });
    const live = await connect(`/ws/comments/${itemId}`, { token: b.token });
    await ghost.next('welcome');
    await live.next('welcome');
    const stub = stubOf(itemId);
    // A sweep now closes nothing: both were seen moments ago.
    expect(await runInDurableObject(stub, (room: CommentRoom) => room.sweep())).toEqual({
      closed: 0,
    });
    // The sweep scheduled by the connections runs as an alarm.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // Two minutes on, with no heartbeat from either, both are ghosts.
    const result = await runInDurableObject(stub, (room: CommentRoom) =>
      room.sweep(Date.now() + 120_000),
    );
    expect(result).toEqual({ closed: 2 });
    expect((await ghost.closed()).code).toBe(4408);
    expect((await live.closed()).code).toBe(4408);
    const fresh = await connect(`/ws/comments/${itemId}`);
    expect((await fresh.next<CommentWelcome>('welcome')).snapshot.presence).toMatchObject({
      users: 0,
      connections: 1,
    });
    fresh.close();
  });

  it('retries loading after a failed load instead of failing every request until eviction', async () => {
    const user = await register();
    const itemId = unique('flaky');
    const outcome = await runInDurableObject(stubOf(itemId), async (room: CommentRoom) => {
      const loader = room as unknown as { load: () => Promise<void> };
      const realLoad = loader.load.bind(room);
      loader.load = async () => {
        throw new Error('D1 hiccup');
      };
      const comment = (body: string) => ({ type: 'comment.create', body });
      const first = await room.request(user, comment('first try')).then(
        () => 'ok',
        (err: Error) => err.message,
      );
      loader.load = realLoad;
      const second = await room.request(user, comment('second try'));
      return { first, second: second.ok };
    });
    expect(outcome).toEqual({ first: 'D1 hiccup', second: true });
  });

  it('completes the close handshake with the client’s code', async () => {
    const user = await register();
    const s = await connect(`/ws/comments/${unique('close')}`, { token: user.token });
    await s.next('welcome');
    s.close(4000, 'bye');
    expect(await s.closed()).toMatchObject({ code: 4000 });
  });
});
