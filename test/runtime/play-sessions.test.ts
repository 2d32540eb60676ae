// Multiplayer play sessions: who may open and join, votes and live tallies, everyone-voted and
// the alarm deadline, the tie rule, late joiners, and the path saved in D1 at the end.
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type {
  ChosenEvent,
  EndedEvent,
  PassageEvent,
  PlaySessionInfo,
  PlaySessionRecord,
  PlayWelcome,
  VotesEvent,
} from '../../worker/protocol/stories';
import type { FrameQueue } from '../support/frames';
import { api, connect, drained, register, type TestUser, upgrade } from './helpers';
import { createStory, fourChoiceGraph, playRoom, publish } from './story-fixtures';

async function openSession(
  host: TestUser,
  options: { maxPlayers?: number; choiceSeconds?: number } = {},
): Promise<PlaySessionInfo> {
  const story = await createStory(host, { graph: fourChoiceGraph });
  await publish(host, story.id);
  const res = await api(`/api/stories/${story.id}/sessions`, {
    method: 'POST',
    token: host.token,
    json: options,
  });
  if (res.status !== 201) throw new Error(`open failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { session: PlaySessionInfo }).session;
}

async function join(sessionId: string, user: TestUser) {
  const socket = await connect(`/ws/play/${sessionId}`, { token: user.token });
  const welcome = await socket.next<PlayWelcome>('welcome');
  return { socket, welcome };
}

let ids = 0;
async function ask(socket: FrameQueue, frame: object) {
  ids += 1;
  const id = `r${ids}`;
  socket.send({ ...frame, id });
  return socket.next<{ type: string; code?: string }>((f) => f.id === id);
}

describe('play sessions', () => {
  it('opens only for published stories with passages, for signed-in hosts', async () => {
    const host = await register();
    const draft = await createStory(host, { graph: fourChoiceGraph });
    const post = (storyId: string, token?: string) =>
      api(`/api/stories/${storyId}/sessions`, { method: 'POST', token, json: {} });
    expect((await post(draft.id, host.token)).status).toBe(409);
    const bare = await createStory(host);
    await publish(host, bare.id);
    expect((await post(bare.id, host.token)).status).toBe(409);
    await publish(host, draft.id);
    expect((await post(draft.id)).status).toBe(401);
    const opened = await post(draft.id, host.token);
    expect(opened.status).toBe(201);
    const { session } = (await opened.json()) as { session: PlaySessionInfo };
    expect(session).toMatchObject({ status: 'lobby', maxPlayers: 8, choiceSeconds: 30 });
    const bad = await api(`/api/stories/${draft.id}/sessions`, {
      method: 'POST',
      token: host.token,
      json: { maxPlayers: 0 },
    });
    expect(bad.status).toBe(400);
  });

  it('seats players up to the cap, keeps a seat for one who drops, and refuses anonymous sockets', async () => {
    const [host, p2, p3] = await Promise.all([register(), register(), register()]);
    const session = await openSession(host, { maxPlayers: 2 });
    // The host's seat is reserved when the session opens.
    const two = await join(session.id, p2);
    expect((await upgrade(`/ws/play/${session.id}`, { token: p3.token })).status).toBe(409);
    const h = await join(session.id, host);
    expect(two.welcome.snapshot).toMatchObject({ seats: 2, step: null, passage: null });
    const full = await upgrade(`/ws/play/${session.id}`, { token: p3.token });
    expect(full.status).toBe(409);
    expect(((await full.json()) as { error: { code: string } }).error.code).toBe('session_full');
    two.socket.close();
    const back = await join(session.id, p2);
    expect(back.welcome.snapshot.seats).toBe(2);
    expect((await upgrade(`/ws/play/${session.id}`)).status).toBe(401);
    expect((await upgrade('/ws/play/no-such-session', { token: p3.token })).status).toBe(404);
    h.socket.close();
    back.socket.close();
  });

  it('lets only the host start, shows everyone the same passage, and tallies votes live', async () => {
    const [host, p2, p3] = await Promise.all([register(), register(), register()]);
    const session = await openSession(host);
    const players = [
      await join(session.id, host),
      await join(session.id, p2),
      await join(session.id, p3),
    ];
    const [h, b, c] = players as [(typeof players)[0], (typeof players)[0], (typeof players)[0]];
    expect((await ask(b.socket, { type: 'play.start' })).code).toBe('not_host');
    expect((await ask(b.socket, { type: 'play.vote', choiceId: 'left' })).code).toBe(
      'session_not_playing',
    );
    expect((await ask(h.socket, { type: 'play.start' })).type).toBe('ack');
    expect((await ask(h.socket, { type: 'play.start' })).code).toBe('session_already_started');
    for (const p of players) {
      const passage = await p.socket.next<PassageEvent>('play.passage');
      expect(passage).toMatchObject({ step: 0, passage: { id: 'start' } });
      expect(passage.passage.choices.map((ch) => ch.id)).toEqual(['left', 'right']);
      expect(passage.deadline).toBeGreaterThan(Date.now());
    }
    expect((await ask(b.socket, { type: 'play.vote', choiceId: 'nowhere' })).code).toBe(
      'invalid_choice',
    );
    await ask(b.socket, { type: 'play.vote', choiceId: 'right' });
    const tally = await c.socket.next<VotesEvent>('play.votes');
    expect(tally).toMatchObject({ step: 0, tallies: { left: 0, right: 1 }, voted: 1, players: 3 });
    // A changed vote counts once, for the new choice.
    await ask(b.socket, { type: 'play.vote', choiceId: 'left' });
    expect((await c.socket.next<VotesEvent>('play.votes')).tallies).toEqual({ left: 1, right: 0 });
    for (const p of players) p.socket.close();
  });

  it('moves everyone on as soon as every present player has voted; the most votes win', async () => {
    const [host, p2, p3] = await Promise.all([register(), register(), register()]);
    const session = await openSession(host);
    const h = await join(session.id, host);
    const b = await join(session.id, p2);
    const c = await join(session.id, p3);
    await ask(h.socket, { type: 'play.start' });
    await ask(h.socket, { type: 'play.vote', choiceId: 'right' });
    await ask(b.socket, { type: 'play.vote', choiceId: 'right' });
    expect(c.socket.all('play.chosen')).toHaveLength(0);
    await ask(c.socket, { type: 'play.vote', choiceId: 'left' });
    const chosen = await c.socket.next<ChosenEvent>('play.chosen');
    expect(chosen).toMatchObject({
      step: 0,
      choiceId: 'right',
      reason: 'all_voted',
      tallies: { left: 1, right: 2 },
    });
    expect(await c.socket.next<PassageEvent>('play.passage')).toMatchObject({ step: 0 });
    expect(await c.socket.next<PassageEvent>('play.passage')).toMatchObject({
      step: 1,
      passage: { id: 'b' },
    });
    for (const p of [h, b, c]) p.socket.close();
  });

  it('stops waiting for a player who left', async () => {
    const [host, p2] = await Promise.all([register(), register()]);
    const session = await openSession(host);
    const h = await join(session.id, host);
    const b = await join(session.id, p2);
    await ask(h.socket, { type: 'play.start' });
    await ask(h.socket, { type: 'play.vote', choiceId: 'left' });
    b.socket.close();
    expect(await h.socket.next<ChosenEvent>('play.chosen')).toMatchObject({
      choiceId: 'left',
      reason: 'all_voted',
    });
    h.socket.close();
  });

  it('decides on the alarm when the deadline passes, breaking a tie for the choice listed first', async () => {
    const [host, p2, p3] = await Promise.all([register(), register(), register()]);
    const session = await openSession(host, { choiceSeconds: 1 });
    const h = await join(session.id, host);
    const b = await join(session.id, p2);
    const c = await join(session.id, p3);
    await ask(h.socket, { type: 'play.start' });
    // One vote each for right and left, the third player silent: a tie at the deadline.
    await ask(b.socket, { type: 'play.vote', choiceId: 'right' });
    await ask(c.socket, { type: 'play.vote', choiceId: 'left' });
    // The room sleeps meanwhile: the deadline is an alarm, not a timer in memory.
    await evictDurableObject(playRoom(session.id));
    const chosen = await h.socket.next<ChosenEvent>('play.chosen', 5000);
    expect(chosen).toMatchObject({
      step: 0,
      choiceId: 'left',
      reason: 'deadline',
      tallies: { left: 1, right: 1 },
    });
    // Nobody votes on the next passage: with no votes the first choice wins too.
    const next = await h.socket.next<ChosenEvent>(
      (f) => f.type === 'play.chosen' && f.step === 1,
      5000,
    );
    expect(next).toMatchObject({ choiceId: 'swim', reason: 'deadline' });
    for (const p of [h, b, c]) p.socket.close();
  });

  it('lands a late joiner and a reconnecting player on the current passage with tallies and deadline', async () => {
    const [host, p2, late] = await Promise.all([register(), register(), register()]);
    const session = await openSession(host);
    const h = await join(session.id, host);
    const b = await join(session.id, p2);
    await ask(h.socket, { type: 'play.start' });
    await ask(h.socket, { type: 'play.vote', choiceId: 'right' });
    await ask(b.socket, { type: 'play.vote', choiceId: 'right' });
    const onB = await b.socket.next<PassageEvent>((f) => f.type === 'play.passage' && f.step === 1);
    await ask(b.socket, { type: 'play.vote', choiceId: 'climb' });
    const l = await join(session.id, late);
    expect(l.welcome.snapshot).toMatchObject({
      step: 1,
      passage: { id: 'b' },
      tallies: { climb: 1, back: 0 },
      deadline: onB.deadline,
      myVote: null,
    });
    b.socket.close();
    const again = await join(session.id, p2);
    expect(again.welcome.snapshot).toMatchObject({
      step: 1,
      myVote: 'climb',
      deadline: onB.deadline,
    });
    for (const p of [h, l, again]) p.socket.close();
  });

  it('saves the path in D1 when the session reaches an ending, and reads it back', async () => {
    const [host, p2] = await Promise.all([register(), register()]);
    const session = await openSession(host);
    const h = await join(session.id, host);
    const b = await join(session.id, p2);
    await ask(h.socket, { type: 'play.start' });
    for (const [step, choiceId] of [
      [0, 'left'],
      [1, 'swim'],
      [2, 'open'],
    ] as const) {
      await h.socket.next<PassageEvent>((f) => f.type === 'play.passage' && f.step === step);
      await ask(h.socket, { type: 'play.vote', choiceId });
      await ask(b.socket, { type: 'play.vote', choiceId });
    }
    const ended = await b.socket.next<EndedEvent>('play.ended');
    expect(ended).toMatchObject({ reason: 'ending', steps: 4 });
    expect((await ask(b.socket, { type: 'play.vote', choiceId: 'open' })).code).toBe(
      'session_not_playing',
    );
    await drained(playRoom(session.id));
    const res = await api(`/api/sessions/${session.id}`);
    const record = ((await res.json()) as { session: PlaySessionRecord }).session;
    expect(record).toMatchObject({ status: 'ended', endReason: 'ending', hostId: host.id });
    expect(record.path.map((p) => [p.passageId, p.choiceId, p.reason])).toEqual([
      ['start', 'left', 'all_voted'],
      ['a', 'swim', 'all_voted'],
      ['c', 'open', 'all_voted'],
      ['good', null, null],
    ]);
    expect(record.path[0]?.tallies).toEqual({ left: 2, right: 0 });
    expect((await api('/api/sessions/nope')).status).toBe(404);
    h.socket.close();
    b.socket.close();
  });

  it('lets the host end a session early', async () => {
    const [host, p2] = await Promise.all([register(), register()]);
    const session = await openSession(host);
    const h = await join(session.id, host);
    const b = await join(session.id, p2);
    await ask(h.socket, { type: 'play.start' });
    expect((await ask(b.socket, { type: 'play.end' })).code).toBe('not_host');
    expect((await ask(h.socket, { type: 'play.end' })).type).toBe('ack');
    expect(await b.socket.next<EndedEvent>('play.ended')).toMatchObject({
      reason: 'host_ended',
      steps: 1,
    });
    await drained(playRoom(session.id));
    const record = (
      (await (await api(`/api/sessions/${session.id}`)).json()) as { session: PlaySessionRecord }
    ).session;
    expect(record.path).toEqual([expect.objectContaining({ passageId: 'start', choiceId: null })]);
    h.socket.close();
    b.socket.close();
  });
});
