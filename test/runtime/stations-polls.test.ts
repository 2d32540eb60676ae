// Live polls on a station (issue 11): the owner or an admin opens one during a broadcast;
// signed-in listeners vote (one ballot per user across tabs, changeable until it closes);
// anonymous listeners see it but cannot vote; tallies are coalesced and end exact; closing is
// sequenced (by the owner, by the alarm, or by the show stopping) and saved in D1; every bad
// input has a stable code.
import { evictDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type {
  PollBallotFrame,
  PollClosedEvent,
  PollOpenedEvent,
  PollResult,
  PollState,
  PollTalliesFrame,
  StreamWelcome,
} from '../../worker/protocol/stream';
import type { FrameQueue } from '../support/frames';
import { api, drained, register, type TestUser } from './helpers';
import {
  closeAll,
  createStation,
  type ErrorBody,
  goLive,
  listen,
  stopLive,
  streamRoom,
} from './station-fixtures';

let ids = 0;
/** Sends a frame with a fresh id and returns its ack or error. */
async function ask<T = unknown>(socket: FrameQueue, frame: object, timeoutMs = 5000) {
  ids += 1;
  const id = `q${ids}`;
  socket.send({ ...frame, id });
  return socket.next<(AckFrame<T> | ErrorFrame) & { code?: string; result?: T }>(
    (f) => f.id === id && (f.type === 'ack' || f.type === 'error'),
    timeoutMs,
  );
}

const QUESTION = { question: 'Next genre?', options: ['Jazz', 'Funk', 'Soul'] };

async function liveWithOwner() {
  const owner = await register('station_owner');
  const station = await createStation(owner);
  const session = (await goLive(owner, station.id)).session;
  const desk = await listen(station.id, owner.token);
  return { owner, station, session, desk: desk.socket };
}

async function openPoll(socket: FrameQueue, fields: object = {}): Promise<PollState> {
  const ack = await ask<{ poll: PollState }>(socket, {
    type: 'poll.create',
    ...QUESTION,
    ...fields,
  });
  if (ack.type !== 'ack' || !ack.result) throw new Error(`poll.create: ${JSON.stringify(ack)}`);
  return ack.result.poll;
}

async function pollRows(stationId: string): Promise<PollResult[]> {
  await drained(streamRoom(stationId));
  const res = await api(`/api/stations/${stationId}/polls`);
  return ((await res.json()) as { polls: PollResult[] }).polls;
}

describe('opening a poll', () => {
  it('is the owner’s: everyone, anonymous included, sees it live and in the welcome', async () => {
    const { station, desk, session } = await liveWithOwner();
    const anon = await listen(station.id);
    const poll = await openPoll(desk, { durationSeconds: 60 });
    expect(poll).toMatchObject({
      question: 'Next genre?',
      options: ['Jazz', 'Funk', 'Soul'],
      multiple: false,
      open: true,
      sessionId: session.id,
      tallies: [0, 0, 0],
      votes: 0,
      voters: 0,
    });
    expect(poll.closesAt - poll.openedAt).toBe(60_000);
    const opened = await anon.socket.next<PollOpenedEvent>('poll.opened');
    expect(opened.poll.id).toBe(poll.id);
    expect(opened.seq).toBeGreaterThan(0);
    const late = await listen(station.id);
    expect(late.welcome.snapshot.poll).toMatchObject({ id: poll.id, open: true });
    expect(late.welcome.snapshot.you.ballot).toBeNull();
    await closeAll([desk, anon.socket, late.socket]);
  });

  it('may be opened by an admin, over REST too, and by nobody else', async () => {
    const { station, desk } = await liveWithOwner();
    const listener = await register();
    const other = await listen(station.id, listener.token);
    expect(await ask(other.socket, { type: 'poll.create', ...QUESTION })).toMatchObject({
      type: 'error',
      code: 'forbidden',
    });
    const anon = await listen(station.id);
    expect(await ask(anon.socket, { type: 'poll.create', ...QUESTION })).toMatchObject({
      code: 'auth_required',
    });
    const rest = await api(`/api/stations/${station.id}/polls`, {
      method: 'POST',
      token: listener.token,
      json: QUESTION,
    });
    expect(rest.status).toBe(403);
    const admin = await register('admin');
    const byAdmin = await api(`/api/stations/${station.id}/polls`, {
      method: 'POST',
      token: admin.token,
      json: { ...QUESTION, multiple: true, durationSeconds: 30 },
      headers: { 'idempotency-key': 'admin-poll-1' },
    });
    expect(byAdmin.status).toBe(201);
    const body = (await byAdmin.json()) as { poll: PollState; seq: number };
    expect(body.poll).toMatchObject({ multiple: true, openedBy: admin.id });
    expect((await desk.next<PollOpenedEvent>('poll.opened')).seq).toBe(body.seq);
    // The same key again answers the first poll and opens nothing new.
    const again = await api(`/api/stations/${station.id}/polls`, {
      method: 'POST',
      token: admin.token,
      json: { ...QUESTION, multiple: true, durationSeconds: 30 },
      headers: { 'idempotency-key': 'admin-poll-1' },
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { poll: PollState }).poll.id).toBe(body.poll.id);
    await closeAll([desk, other.socket, anon.socket]);
  });

  it('refuses bad polls with stable codes, over the socket and REST', async () => {
    const { owner, station, desk } = await liveWithOwner();
    const bad: [object, string][] = [
      [{ question: 'One?', options: ['only'] }, 'options'],
      [{ question: 'Many?', options: Array.from({ length: 11 }, (_, i) => `o${i}`) }, 'options'],
      [{ question: 'Same?', options: ['a', 'A'] }, 'options'],
      [{ question: 'Empty?', options: ['a', ' '] }, 'options.1'],
      [{ question: '', options: ['a', 'b'] }, 'question'],
      [{ question: 'Short?', options: ['a', 'b'], durationSeconds: 2 }, 'durationSeconds'],
      [{ question: 'Long?', options: ['a', 'b'], durationSeconds: 86_401 }, 'durationSeconds'],
      [{ question: 'Type?', options: ['a', 'b'], multiple: 'yes' }, 'multiple'],
      [{ question: 'Extra?', options: ['a', 'b'], colour: 'red' }, '(frame)'],
    ];
    for (const [fields, path] of bad) {
      const answer = await ask(desk, { type: 'poll.create', ...fields });
      expect(answer, JSON.stringify(fields)).toMatchObject({
        type: 'error',
        code: 'invalid_frame',
      });
      const issues = (answer as ErrorFrame).issues ?? [];
      if (path !== '(frame)') expect(issues.map((i) => i.path)).toContain(path);
      const rest = await api(`/api/stations/${station.id}/polls`, {
        method: 'POST',
        token: owner.token,
        json: fields,
      });
      expect(rest.status).toBe(400);
      expect(((await rest.json()) as ErrorBody).error.code).toBe('invalid_body');
    }
    await openPoll(desk);
    expect(await ask(desk, { type: 'poll.create', ...QUESTION })).toMatchObject({
      code: 'poll_already_open',
    });
    desk.close();
  });

  it('needs a broadcast: not_live while offline', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const desk = await listen(station.id, owner.token);
    expect(await ask(desk.socket, { type: 'poll.create', ...QUESTION })).toMatchObject({
      code: 'not_live',
    });
    desk.socket.close();
  });
});

describe('voting', () => {
  it('counts one ballot per user across tabs; a changed vote moves the tallies', async () => {
    const { station, desk } = await liveWithOwner();
    const poll = await openPoll(desk);
    const [ann, bob] = await Promise.all([register(), register()]);
    const annTab1 = await listen(station.id, ann.token);
    const annTab2 = await listen(station.id, ann.token);
    const bobTab = await listen(station.id, bob.token);
    expect(
      await ask(annTab1.socket, { type: 'poll.vote', pollId: poll.id, choices: [0] }),
    ).toMatchObject({ type: 'ack', result: { pollId: poll.id, changed: true, choices: [0] } });
    // Her other tab learns her ballot; voting the same again from it changes nothing.
    expect(await annTab2.socket.next<PollBallotFrame>('poll.ballot')).toMatchObject({
      pollId: poll.id,
      choices: [0],
    });
    expect(
      await ask(annTab2.socket, { type: 'poll.vote', pollId: poll.id, choices: [0] }),
    ).toMatchObject({ result: { changed: false } });
    await ask(bobTab.socket, { type: 'poll.vote', pollId: poll.id, choices: [0] });
    await ask(annTab2.socket, { type: 'poll.vote', pollId: poll.id, choices: [2] });
    const last = await desk.next<PollTalliesFrame>(
      (f) =>
        f.type === 'poll.tallies' &&
        JSON.stringify((f as unknown as PollTalliesFrame).tallies) === '[1,0,1]',
    );
    expect(last).toMatchObject({ pollId: poll.id, votes: 2, voters: 2 });
    // A new tab of hers shows her ballot in its welcome.
    const annTab3 = await listen(station.id, ann.token);
    expect(annTab3.welcome.snapshot.you.ballot).toEqual([2]);
    expect(annTab3.welcome.snapshot.poll).toMatchObject({ tallies: [1, 0, 1], voters: 2 });
    await closeAll([desk, annTab1.socket, annTab2.socket, annTab3.socket, bobTab.socket]);
  });

  it('shows votes and voters apart on a multiple-choice poll', async () => {
    const { station, desk } = await liveWithOwner();
    const poll = await openPoll(desk, { multiple: true });
    const users = await Promise.all([register(), register()]);
    const tabs = await Promise.all(users.map((u) => listen(station.id, u.token)));
    await ask(tabs[0]!.socket, { type: 'poll.vote', pollId: poll.id, choices: [0, 1, 2] });
    await ask(tabs[1]!.socket, { type: 'poll.vote', pollId: poll.id, choices: [2] });
    const tallies = await desk.next<PollTalliesFrame>(
      (f) => f.type === 'poll.tallies' && (f as unknown as PollTalliesFrame).voters === 2,
    );
    expect(tallies).toMatchObject({ tallies: [1, 1, 2], votes: 4, voters: 2 });
    await closeAll([desk, ...tabs.map((t) => t.socket)]);
  });

  it('refuses every bad ballot with a stable code and counts nothing', async () => {
    const { station, desk } = await liveWithOwner();
    const poll = await openPoll(desk);
    const voter = await register();
    const tab = await listen(station.id, voter.token);
    const anon = await listen(station.id);
    const cases: [object, string][] = [
      [{ pollId: poll.id, choices: [0, 1] }, 'too_many_choices'],
      [{ pollId: poll.id, choices: [3] }, 'unknown_option'],
      [{ pollId: poll.id, choices: [-1] }, 'unknown_option'],
      [{ pollId: 'nope', choices: [0] }, 'poll_not_found'],
      [{ pollId: poll.id, choices: [] }, 'invalid_frame'],
      [{ pollId: poll.id, choices: ['0'] }, 'invalid_frame'],
      [{ pollId: poll.id, choices: [0.5] }, 'invalid_frame'],
      [{ pollId: poll.id }, 'invalid_frame'],
    ];
    for (const [fields, code] of cases) {
      expect(
        await ask(tab.socket, { type: 'poll.vote', ...fields }),
        JSON.stringify(fields),
      ).toMatchObject({
        type: 'error',
        code,
      });
    }
    expect(
      await ask(anon.socket, { type: 'poll.vote', pollId: poll.id, choices: [0] }),
    ).toMatchObject({
      code: 'auth_required',
    });
    const multi = await ask<{ poll: PollState }>(desk, { type: 'poll.close', pollId: poll.id });
    expect(multi.type).toBe('ack');
    const second = await openPoll(desk, { multiple: true });
    expect(
      await ask(tab.socket, { type: 'poll.vote', pollId: second.id, choices: [1, 1] }),
    ).toMatchObject({
      code: 'duplicate_choice',
    });
    // REST: anonymous 401, a closed poll 409, a bad body 400.
    const noToken = await api(`/api/stations/${station.id}/polls/${second.id}/votes`, {
      method: 'POST',
      json: { choices: [0] },
    });
    expect(noToken.status).toBe(401);
    const closed = await api(`/api/stations/${station.id}/polls/${poll.id}/votes`, {
      method: 'POST',
      token: voter.token,
      json: { choices: [0] },
    });
    expect(closed.status).toBe(409);
    expect(((await closed.json()) as ErrorBody).error.code).toBe('poll_closed');
    const badBody = await api(`/api/stations/${station.id}/polls/${second.id}/votes`, {
      method: 'POST',
      token: voter.token,
      json: { choices: 'all' },
    });
    expect(badBody.status).toBe(400);
    const ok = await api(`/api/stations/${station.id}/polls/${second.id}/votes`, {
      method: 'POST',
      token: voter.token,
      json: { choices: [0, 2] },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ pollId: second.id, changed: true, choices: [0, 2] });
    const nothing = (await pollRows(station.id)).find((p) => p.id === poll.id);
    expect(nothing).toMatchObject({ votes: 0, voters: 0, tallies: [0, 0, 0] });
    await closeAll([desk, tab.socket, anon.socket]);
  });

  it('coalesces a burst of ballots into a few tally frames, the last one exact', async () => {
    const { station, desk } = await liveWithOwner();
    const poll = await openPoll(desk);
    const users = await Promise.all(Array.from({ length: 24 }, () => register()));
    const watcher = await listen(station.id);
    const tabs = await Promise.all(users.map((u) => listen(station.id, u.token)));
    await Promise.all(
      tabs.map((t, i) => ask(t.socket, { type: 'poll.vote', pollId: poll.id, choices: [i % 3] })),
    );
    // Then half of them change their minds.
    await Promise.all(
      tabs
        .slice(0, 12)
        .map((t, i) =>
          ask(t.socket, { type: 'poll.vote', pollId: poll.id, choices: [(i + 1) % 3] }),
        ),
    );
    const want = [0, 0, 0];
    tabs.forEach((_, i) => {
      const choice = i < 12 ? (i + 1) % 3 : i % 3;
      want[choice] = (want[choice] ?? 0) + 1;
    });
    const last = await watcher.socket.next<PollTalliesFrame>(
      (f) =>
        f.type === 'poll.tallies' &&
        JSON.stringify((f as unknown as PollTalliesFrame).tallies) === JSON.stringify(want),
    );
    expect(last).toMatchObject({ votes: 24, voters: 24 });
    const frames = watcher.socket.all<PollTalliesFrame>('poll.tallies');
    expect(frames.length).toBeLessThan(36);
    expect(frames.at(-1)).toEqual(last);
    await ask(desk, { type: 'poll.close', pollId: poll.id });
    const closed = await watcher.socket.next<PollClosedEvent>('poll.closed');
    expect(closed.poll).toMatchObject({ tallies: want, votes: 24, voters: 24, open: false });
    await closeAll([desk, watcher.socket, ...tabs.map((t) => t.socket)]);
  });
});

describe('closing', () => {
  it('by the owner is sequenced: a resuming listener replays it, a new one sees the result', async () => {
    const { owner, station, desk, session } = await liveWithOwner();
    const voter = await register();
    const tab = await listen(station.id, voter.token);
    const poll = await openPoll(desk);
    await ask(tab.socket, { type: 'poll.vote', pollId: poll.id, choices: [1] });
    const anon = await listen(station.id);
    const since = anon.welcome.seq;
    const epoch = anon.welcome.epoch;
    anon.socket.close();
    const outsider = await register();
    const notOwner = await listen(station.id, outsider.token);
    expect(await ask(notOwner.socket, { type: 'poll.close', pollId: poll.id })).toMatchObject({
      code: 'forbidden',
    });
    const closing = await api(`/api/stations/${station.id}/polls/${poll.id}/close`, {
      method: 'POST',
      token: owner.token,
    });
    expect(closing.status).toBe(200);
    const closedBody = (await closing.json()) as { poll: PollState; seq: number };
    expect(closedBody.poll).toMatchObject({
      open: false,
      closeReason: 'owner',
      tallies: [0, 1, 0],
    });
    expect(await ask(desk, { type: 'poll.close', pollId: poll.id })).toMatchObject({
      code: 'poll_closed',
    });
    expect(
      await ask(tab.socket, { type: 'poll.vote', pollId: poll.id, choices: [0] }),
    ).toMatchObject({ code: 'poll_closed' });
    const resumed = await listen(station.id, undefined, { since, epoch });
    expect(resumed.welcome.recovery).toMatchObject({ recovered: true });
    const replayed = await resumed.socket.next<PollClosedEvent>('poll.closed');
    expect(replayed.seq).toBe(closedBody.seq);
    expect(replayed.poll.tallies).toEqual([0, 1, 0]);
    const fresh = await listen(station.id);
    expect(fresh.welcome.snapshot.poll).toMatchObject({ id: poll.id, open: false, voters: 1 });
    // Saved in D1, listed per station and per session.
    const [row] = await pollRows(station.id);
    expect(row).toMatchObject({
      id: poll.id,
      sessionId: session.id,
      tallies: [0, 1, 0],
      votes: 1,
      voters: 1,
      closeReason: 'owner',
    });
    expect(row?.eligible).toBeGreaterThanOrEqual(2);
    const perSession = await api(`/api/stations/${station.id}/sessions/${session.id}/polls`);
    expect(((await perSession.json()) as { polls: PollResult[] }).polls.map((p) => p.id)).toEqual([
      poll.id,
    ]);
    await closeAll([desk, tab.socket, notOwner.socket, resumed.socket, fresh.socket]);
  });

  it('by the alarm when its time is up, also after the object was evicted', async () => {
    const { station, desk } = await liveWithOwner();
    const voter = await register();
    const tab = await listen(station.id, voter.token);
    const poll = await openPoll(desk, { durationSeconds: 10 });
    await ask(tab.socket, { type: 'poll.vote', pollId: poll.id, choices: [2] });
    await evictDurableObject(streamRoom(station.id));
    const closed = await tab.socket.next<PollClosedEvent>('poll.closed', 15_000);
    expect(closed.poll).toMatchObject({ id: poll.id, closeReason: 'timer', tallies: [0, 0, 1] });
    expect(closed.poll.closedAt).toBeGreaterThanOrEqual(poll.closesAt);
    const [row] = await pollRows(station.id);
    expect(row).toMatchObject({ id: poll.id, closeReason: 'timer', voters: 1 });
    await closeAll([desk, tab.socket]);
  }, 30_000);

  it('when the show stops, before stream.stopped', async () => {
    const { owner, station, desk } = await liveWithOwner();
    const poll = await openPoll(desk);
    expect((await stopLive(owner, station.id)).status).toBe(200);
    const closed = await desk.next<PollClosedEvent>('poll.closed');
    const stopped = await desk.next<{ seq: number }>('stream.stopped');
    expect(closed.poll).toMatchObject({ id: poll.id, closeReason: 'stream_stopped' });
    expect(closed.seq).toBeLessThan(stopped.seq);
    desk.close();
  });
});

describe('results', () => {
  it('export as CSV for the owner and admins only', async () => {
    const { owner, station, desk, session } = await liveWithOwner();
    const poll = await openPoll(desk, { question: 'Best, "really"?', options: ['=1+1', 'b,c'] });
    await ask(desk, { type: 'poll.vote', pollId: poll.id, choices: [1] });
    await ask(desk, { type: 'poll.close', pollId: poll.id });
    await drained(streamRoom(station.id));
    const res = await api(`/api/stations/${station.id}/polls/export`, { token: owner.token });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const lines = (await res.text()).trim().split('\r\n');
    expect(lines[0]).toBe(
      'poll_id,session_id,question,multiple,opened_at,closed_at,close_reason,option_index,option,option_votes,votes,voters,eligible',
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(`${poll.id},${session.id},"Best, ""really""?",false,`);
    expect(lines[1]).toContain(",owner,0,'=1+1,0,1,1,");
    expect(lines[2]).toContain(',owner,1,"b,c",1,1,1,');
    const perSession = await api(
      `/api/stations/${station.id}/sessions/${session.id}/polls/export`,
      { token: owner.token },
    );
    expect((await perSession.text()).trim().split('\r\n')).toHaveLength(3);
    const listener: TestUser = await register();
    for (const token of [listener.token, undefined]) {
      const refused = await api(`/api/stations/${station.id}/polls/export`, { token });
      expect(refused.status).toBe(token ? 403 : 401);
    }
    const list = await api(`/api/stations/${station.id}/polls?limit=0`);
    expect(list.status).toBe(400);
    desk.close();
  });

  it('lists the open poll as current beside the saved results', async () => {
    const { station, desk } = await liveWithOwner();
    const poll = await openPoll(desk);
    const res = await api(`/api/stations/${station.id}/polls`);
    const body = (await res.json()) as { current: PollState | null; polls: PollResult[] };
    expect(body.current?.id).toBe(poll.id);
    expect(body.polls).toEqual([]);
    const missing = await api('/api/stations/nope/polls');
    expect(missing.status).toBe(404);
    const welcome: StreamWelcome = (await listen(station.id)).welcome;
    expect(welcome.snapshot.poll?.id).toBe(poll.id);
    desk.close();
  });
});
