// Comment rooms end to end against `wrangler dev`: two users with two tabs each (one user on
// plain `ws` sockets, the other on the SDK over partysocket), comments, typing, presence, and a
// dropped connection that resumes without loss.
import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { type Channel, WavecastClient } from '../../client/sdk';
import type {
  CommentCreatedEvent,
  CommentServerFrame,
  CommentWelcome,
} from '../../worker/protocol/comments';
import type { PresenceJoinedFrame, WelcomeFrame } from '../../worker/protocol/core';
import { api, baseUrl, connect, register, unique } from './helpers';

/** A `ws` constructor whose sockets the test can cut abruptly (no close handshake). */
function cuttableWebSocket() {
  const made: WebSocket[] = [];
  class Cuttable extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      made.push(this);
    }
  }
  return { Cuttable, cut: () => made.at(-1)?.terminate(), count: () => made.length };
}

function collect(channel: Channel<CommentServerFrame>) {
  const frames: CommentServerFrame[] = [];
  channel.on('*', (f) => frames.push(f));
  return frames;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('comment room end to end', () => {
  it('two users with two tabs each share comments, typing and presence, and a cut tab resumes without loss', async () => {
    const [ann, ben] = await Promise.all([
      register('listener', 'Ann'),
      register('listener', 'Ben'),
    ]);
    const itemId = unique('story');

    // Ann: two tabs on plain `ws`.
    const ann1 = await connect(`/ws/comments/${itemId}`, { token: ann.token });
    const ann2 = await connect(`/ws/comments/${itemId}`, { token: ann.token });
    await ann1.next('welcome');
    await ann2.next('welcome');

    // Ben: two tabs on the SDK (partysocket), one of them on a socket we can cut.
    const cuttable = cuttableWebSocket();
    const benClient = new WavecastClient({ baseUrl: baseUrl(), token: ben.token, WebSocket });
    const ben1 = benClient.commentRoom(itemId);
    const ben2 = new WavecastClient({
      baseUrl: baseUrl(),
      token: ben.token,
      WebSocket: cuttable.Cuttable,
    }).commentRoom(itemId, { minReconnectionDelay: 1500, maxReconnectionDelay: 1500 });
    const ben1Frames = collect(ben1);
    const ben2Frames = collect(ben2);
    await until(() => ben1.snapshot !== null && ben2.snapshot !== null, 'Ben’s welcomes');

    // Presence: Ann sees Ben join once (two tabs, one person); a late joiner sees 2 users / 4 tabs.
    const benJoined = await ann1.next<PresenceJoinedFrame>('presence.joined');
    expect(benJoined.user.id).toBe(ben.id);
    const late = await connect(`/ws/comments/${itemId}`);
    const lateWelcome = await late.next<CommentWelcome>('welcome');
    expect(lateWelcome.snapshot.presence).toMatchObject({ users: 2, connections: 5 });
    late.close();

    // Comments from both users, over both kinds of client, in one order everywhere.
    ann1.send({ type: 'comment.create', id: 'a1', body: 'Ann says hi' });
    await ann1.next('ack');
    const ack = await ben1.request<{ comment: { id: string } }>({
      type: 'comment.create',
      body: 'Ben says hi',
    });
    expect(ack.seq).toBe(2);
    ann2.send({ type: 'comment.create', id: 'a2', body: 'Ann again' });
    await ann2.next('ack');
    for (const tab of [ann1, ann2]) {
      const bodies = [];
      for (let i = 0; i < 3; i++)
        bodies.push((await tab.next<CommentCreatedEvent>('comment.created')).comment.body);
      expect(bodies).toEqual(['Ann says hi', 'Ben says hi', 'Ann again']);
    }
    await until(
      () => ben2Frames.filter((f) => f.type === 'comment.created').length === 3,
      'comments at Ben’s tab 2',
    );

    // Typing reaches Ben's tabs, not Ann's other tab.
    ann1.send({ type: 'typing', isTyping: true });
    await until(
      () =>
        [ben1Frames, ben2Frames].every((fs) => fs.some((f) => f.type === 'typing' && f.isTyping)),
      'typing at Ben’s tabs',
    );
    ann1.send({ type: 'typing', isTyping: false });
    await until(() => ben1Frames.some((f) => f.type === 'typing' && !f.isTyping), 'typing stopped');
    expect(ann2.all('typing')).toEqual([]);

    // Cut Ben's second tab abruptly; comments keep coming while it is away.
    const welcomesBefore = ben2Frames.filter((f) => f.type === 'welcome').length;
    cuttable.cut();
    for (let i = 1; i <= 5; i++) {
      const res = await api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: ann.token,
        json: { body: `while away ${i}` },
      });
      expect(res.status).toBe(201);
    }
    await until(
      () => ben2Frames.filter((f) => f.type === 'welcome').length > welcomesBefore,
      'Ben’s tab 2 to resume',
    );
    const resumed = ben2Frames.filter((f) => f.type === 'welcome').at(-1) as WelcomeFrame;
    expect(resumed.recovery).toMatchObject({ requested: true, recovered: true });
    await until(
      () => ben2Frames.filter((f) => f.type === 'comment.created').length === 8,
      'all eight comments at tab 2',
    );
    const seqs = ben2Frames
      .filter((f) => f.type === 'comment.created')
      .map((f) => (f as CommentCreatedEvent).seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(cuttable.count()).toBe(2);
    // Tab 1 never dropped and saw the same eight, in the same order.
    await until(
      () => ben1Frames.filter((f) => f.type === 'comment.created').length === 8,
      'eight at tab 1',
    );
    const bodiesAt = (fs: CommentServerFrame[]) =>
      fs
        .filter((f): f is CommentCreatedEvent => f.type === 'comment.created')
        .map((f) => f.comment.body);
    expect(bodiesAt(ben2Frames)).toEqual(bodiesAt(ben1Frames));

    // The cut socket left the roster: 2 users, their 4 tabs, plus this checking socket.
    const check = await connect(`/ws/comments/${itemId}`);
    const checkWelcome = await check.next<CommentWelcome>('welcome');
    expect(checkWelcome.snapshot.presence).toMatchObject({ users: 2, connections: 5 });
    check.close();

    // Ann leaves entirely: Ben hears it once.
    ann1.close();
    ann2.close();
    await until(
      () => ben1Frames.some((f) => f.type === 'presence.left' && f.user.id === ann.id),
      'Ann’s leave',
    );
    expect(ben1Frames.filter((f) => f.type === 'presence.left')).toHaveLength(1);
    ben1.close();
    ben2.close();
  });

  it('never writes a token into the server log, valid or not', async () => {
    const user = await register();
    const room = await connect(`/ws/comments/${unique('story')}`, { token: user.token });
    await room.next('welcome');
    room.send({ type: 'comment.create', id: 'x', body: 'logged?' });
    await room.next('ack');
    room.close();
    await connect('/ws/comments/x', { token: `${user.token}tampered` }).catch(() => undefined);
    await api('/api/me', { token: user.token });
    await api('/api/me', { token: 'eyJhbGciOiJIUzI1NiJ9.broken.signature' });
    // The request lines are printed as they complete; wait until ours are there.
    await until(
      () => readFileSync(inject('serverLog'), 'utf8').includes('GET /api/me 401'),
      'request log lines',
    );
    const log = readFileSync(inject('serverLog'), 'utf8');
    expect(log).toContain(`GET /ws/comments/`);
    expect(log).not.toContain(user.token);
    expect(log).not.toContain(user.token.split('.')[2]);
    expect(log).not.toContain('broken.signature');
    expect(log).not.toMatch(/token=/);
  });

  it('refuses an invalid token before any room is reached', async () => {
    const refused = await connect('/ws/comments/x', { token: 'not-a-token' }).then(
      () => 'opened',
      (err: Error) => err.message,
    );
    expect(refused).toBe('upgrade refused: 401');
  });

  it('stops the SDK from reconnecting after a terminal close code', async () => {
    const user = await register();
    const room = new WavecastClient({
      baseUrl: baseUrl(),
      token: user.token,
      WebSocket,
    }).commentRoom(unique('story'), {
      minReconnectionDelay: 100,
      maxReconnectionDelay: 100,
    });
    const welcomes: unknown[] = [];
    room.on('welcome', (w) => welcomes.push(w));
    await until(() => welcomes.length === 1, 'welcome');
    room.send({ type: 'comment.create', body: 'x'.repeat(70 * 1024) });
    await until(() => room.terminal !== null, 'terminal close');
    expect(room.terminal?.code).toBe(1009);
    expect(room.state).toBe('closed');
    await new Promise((r) => setTimeout(r, 500));
    expect(welcomes).toHaveLength(1);
  });
});
