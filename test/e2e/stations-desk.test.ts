// Stations part two end to end against `wrangler dev` (issue 11): 300 listeners (100 anonymous)
// on one live station. A poll with 200 signed-in voters voting and changing votes concurrently
// ends with tallies equal to D1's and to what every listener saw last; the owner queues 20
// tracks, reorders and advances through five while listeners join and resume, and every
// listener ends with the same queue and now playing; the session's analytics match the
// activity generated here, read live from the station and later from D1.
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { stationDesk, WavecastClient } from '../../client/sdk';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type { AdminView, StationMetadataEvent } from '../../worker/protocol/lobby';
import type {
  NowPlaying,
  PollClosedEvent,
  PollResult,
  PollState,
  PollTalliesFrame,
  QueueAddedEvent,
  QueueItem,
  SessionAnalytics,
  StreamMetadataEvent,
  StreamWelcome,
} from '../../worker/protocol/stream';
import type { Frame, FrameQueue } from '../support/frames';
import { E2E_ADMIN } from './global-setup';
import { api, baseUrl, connect, type E2EUser, register, unique } from './helpers';

type Socket = Awaited<ReturnType<typeof connect>>;

const ANONYMOUS = 100;
const SIGNED_IN = 200;
const SDK_LISTENERS = 3; // of the signed-in ones, on the SDK (partysocket) instead of `ws`
const OPTIONS = ['Jazz', 'Funk', 'Soul', 'Disco'];
const EMOJI = ['❤️', '🔥', '👏'] as const;

async function batched<T, R>(items: T[], width: number, make: (item: T, i: number) => Promise<R>) {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    const slice = items.slice(i, i + width);
    out.push(...(await Promise.all(slice.map((item, j) => make(item, i + j)))));
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  probe: () => Promise<T | null> | T | null,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Registration is rate limited per address (300 a minute): wait out a 429 and go on. */
async function registerPatiently(role?: 'station_owner'): Promise<E2EUser> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await register(role);
    } catch (err) {
      if (attempt > 5 || !String(err).includes('429')) throw err;
      await sleep(10_000);
    }
  }
}

async function registerAdmin(): Promise<E2EUser> {
  const creds = { email: E2E_ADMIN, password: 'correct horse battery' };
  const res = await api<{ user: Omit<E2EUser, 'token'>; token: string }>('/api/auth/register', {
    method: 'POST',
    json: { ...creds, displayName: 'Admin' },
  });
  if (res.status === 201) return { ...res.body.user, token: res.body.token };
  const login = await api<{ user: Omit<E2EUser, 'token'>; token: string }>('/api/auth/login', {
    method: 'POST',
    json: creds,
  });
  return { ...login.body.user, token: login.body.token };
}

let ids = 0;
/** Sends a frame with a fresh id and waits for its answer. */
async function ask<T = unknown>(socket: FrameQueue, frame: object, timeoutMs = 20_000) {
  ids += 1;
  const id = `e${ids}`;
  socket.send({ ...frame, id });
  return socket.next<(AckFrame<T> | ErrorFrame) & { result?: T; code?: string }>(
    (f) => f.id === id && (f.type === 'ack' || f.type === 'error'),
    timeoutMs,
  );
}

/** The owner's frames, paced under the per-connection frame limit (10 a second). */
async function ownerAsk<T = unknown>(socket: FrameQueue, frame: object) {
  const answer = await ask<T>(socket, frame);
  await sleep(110);
  if (answer.type !== 'ack') throw new Error(`${JSON.stringify(frame)}: ${JSON.stringify(answer)}`);
  return answer as AckFrame<T> & { result: T };
}

interface View {
  queue: string[];
  nowPlaying: string | null;
}

/** Applies queue and now-playing events after `base` to a starting view (like a client). */
function apply(
  start: { queue: QueueItem[]; nowPlaying: NowPlaying | null },
  frames: Frame[],
  base: number,
) {
  let queue = [...start.queue];
  let nowPlaying = start.nowPlaying;
  for (const f of frames) {
    if (typeof f.seq !== 'number' || f.seq <= base) continue;
    if (f.type === 'queue.added') {
      const e = f as unknown as QueueAddedEvent;
      queue.splice(e.position, 0, e.item);
    } else if (f.type === 'queue.removed') {
      queue = queue.filter((i) => i.id !== f.itemId);
    } else if (f.type === 'queue.moved') {
      const item = queue.find((i) => i.id === f.itemId);
      queue = queue.filter((i) => i.id !== f.itemId);
      if (item) queue.splice(f.position as number, 0, item);
    } else if (f.type === 'queue.cleared') {
      queue = [];
    } else if (f.type === 'stream.metadata') {
      const e = f as unknown as StreamMetadataEvent;
      nowPlaying = e.nowPlaying;
      if (e.queueItemId) queue = queue.filter((i) => i.id !== e.queueItemId);
    }
  }
  return { queue, nowPlaying };
}

const viewOf = (s: { queue: QueueItem[]; nowPlaying: NowPlaying | null }): View => ({
  queue: s.queue.map((i) => i.trackName),
  nowPlaying: s.nowPlaying?.trackName ?? null,
});

/** What a `ws` listener knows: its welcome's snapshot plus every newer event it received. */
function wsView(socket: FrameQueue): View {
  const welcome = socket.all<StreamWelcome>('welcome').at(-1);
  if (!welcome) throw new Error('no welcome');
  return viewOf(apply(welcome.snapshot, socket.received, welcome.seq));
}

function lastSeq(socket: FrameQueue): number {
  let seq = 0;
  for (const f of socket.received) if (typeof f.seq === 'number' && f.type !== 'ack') seq = f.seq;
  return seq;
}

describe('stations part two end to end', () => {
  it('300 listeners: a concurrent poll, a queue through joins and resumes, analytics that match', async () => {
    const owner = await registerPatiently('station_owner');
    const admin = await registerAdmin();
    const users = await batched(Array.from({ length: SIGNED_IN }), 10, () => registerPatiently());
    const station = (
      await api<{ station: { id: string } }>('/api/stations', {
        method: 'POST',
        token: owner.token,
        json: { name: unique('Desk FM') },
      })
    ).body.station;
    const lobbyDash = await connect('/ws');
    await lobbyDash.next('welcome');

    const ownerSocket = await connect(`/ws/stations/${station.id}`, { token: owner.token });
    await ownerSocket.next<StreamWelcome>('welcome');
    const started = await ownerAsk<{ session: { id: string } }>(ownerSocket, {
      type: 'stream.start',
      showTitle: 'Desk Live',
      trackName: 'Intro',
    });
    const sessionId = started.result.session.id;

    // 300 listeners: 100 anonymous, 197 signed in on `ws`, 3 signed in on the SDK.
    let anonymousConnections = 0;
    let joins = 0;
    const anon = await batched(Array.from({ length: ANONYMOUS }), 25, async () => {
      const s = await connect(`/ws/stations/${station.id}`);
      await s.next('welcome', 20_000);
      anonymousConnections += 1;
      joins += 1;
      return s;
    });
    const wsUsers = users.slice(SDK_LISTENERS);
    const signed = await batched(wsUsers, 25, async (u) => {
      const s = await connect(`/ws/stations/${station.id}`, { token: u.token });
      await s.next('welcome', 20_000);
      joins += 1;
      return s;
    });
    const sdk = users.slice(0, SDK_LISTENERS).map((u) => {
      const client = new WavecastClient({ baseUrl: baseUrl(), token: u.token, WebSocket });
      const channel = client.station(station.id);
      return { user: u, channel, ...stationDesk(client, station.id, channel) };
    });
    await until('SDK welcomes', () => (sdk.every((c) => c.channel.snapshot) ? true : null));
    joins += SDK_LISTENERS;
    const everyone: Socket[] = [...anon, ...signed];
    expect(everyone.length + sdk.length).toBe(300);
    await ownerSocket.next(
      (f) => f.type === 'listeners' && f.listeners === 301 && f.connections === 301,
      30_000,
    );

    // ---- a poll: 200 voters vote and change their votes concurrently ----
    const opened = await ownerAsk<{ poll: PollState }>(ownerSocket, {
      type: 'poll.create',
      question: 'What next?',
      options: OPTIONS,
      durationSeconds: 600,
    });
    const pollId = opened.result.poll.id;
    await Promise.all(everyone.map((s) => s.next('poll.opened', 20_000)));
    await until('SDK polls', () => (sdk.every((c) => c.poll.poll?.id === pollId) ? true : null));
    // Anonymous listeners see it but cannot vote.
    for (const s of anon.slice(0, 5)) {
      expect(await ask(s, { type: 'poll.vote', pollId, choices: [0] })).toMatchObject({
        code: 'auth_required',
      });
    }
    const ballots = new Map<string, number>();
    let changedBallots = 0;
    const voters = [
      ...signed.map((socket, i) => ({
        id: wsUsers[i]!.id,
        vote: (c: number) => ask(socket, { type: 'poll.vote', pollId, choices: [c] }),
      })),
      ...sdk.map((c) => ({ id: c.user.id, vote: (choice: number) => c.poll.vote([choice]) })),
    ];
    const round = async (who: typeof voters, pick: (i: number) => number) => {
      const answers = await Promise.all(who.map((v, i) => v.vote(pick(i))));
      answers.forEach((a, i) => {
        const v = who[i]!;
        expect(a.type, JSON.stringify(a)).toBe('ack');
        const result = (a as AckFrame<{ changed: boolean; choices: number[] }>).result;
        if (result?.changed) changedBallots += 1;
        ballots.set(v.id, result?.choices[0] ?? -1);
      });
    };
    await round(voters, (i) => i % 4);
    // Half change their minds, all at once; then a quarter again (some to the same choice).
    await round(voters.slice(0, 100), (i) => (i + 1) % 4);
    await round(voters.slice(0, 50), (i) => (i % 2 === 0 ? (i + 2) % 4 : (i + 1) % 4));
    const want = [0, 0, 0, 0];
    for (const c of ballots.values()) want[c] = (want[c] ?? 0) + 1;
    expect(ballots.size).toBe(SIGNED_IN);
    // The coalesced tallies end exact: wait for the owner to see them, then close.
    await until('exact tallies at the owner', () =>
      JSON.stringify(ownerSocket.all<PollTalliesFrame>('poll.tallies').at(-1)?.tallies) ===
      JSON.stringify(want)
        ? true
        : null,
    );
    const closed = await ownerAsk<{ poll: PollState }>(ownerSocket, { type: 'poll.close', pollId });
    expect(closed.result.poll).toMatchObject({
      tallies: want,
      voters: SIGNED_IN,
      votes: SIGNED_IN,
    });
    for (const s of everyone) {
      const final = await s.next<PollClosedEvent>('poll.closed', 20_000);
      expect(final.poll.tallies).toEqual(want);
      const lastTallies = s.all<PollTalliesFrame>('poll.tallies').at(-1);
      expect(lastTallies?.tallies).toEqual(want);
    }
    await until('SDK closed polls', () =>
      sdk.every((c) => c.poll.poll?.open === false) ? true : null,
    );
    for (const c of sdk) expect(c.poll.poll?.tallies).toEqual(want);
    const saved = await until('the poll in D1', async () => {
      const res = await api<{ polls: PollResult[] }>(
        `/api/stations/${station.id}/sessions/${sessionId}/polls`,
      );
      return res.body.polls[0] ?? null;
    });
    expect(saved).toMatchObject({ id: pollId, tallies: want, voters: SIGNED_IN, votes: SIGNED_IN });
    expect(saved.eligible).toBe(SIGNED_IN + 1); // the voters and the owner

    // ---- chat, reactions and favourites for the analytics ----
    for (const [i, s] of signed.slice(0, 15).entries()) {
      for (let m = 0; m < 2; m++) {
        expect((await ask(s, { type: 'chat.send', body: `msg ${i}.${m}` })).type).toBe('ack');
      }
    }
    const reactions: Record<string, number> = {};
    await Promise.all(
      signed.slice(20, 40).map(async (s, i) => {
        const emoji = EMOJI[i % EMOJI.length] as string;
        const a = await ask<{ counted: boolean }>(s, { type: 'reaction', emoji });
        expect(a.result?.counted).toBe(true);
        reactions[emoji] = (reactions[emoji] ?? 0) + 1;
      }),
    );
    for (const u of wsUsers.slice(50, 60)) {
      expect(
        (await api(`/api/stations/${station.id}/favourite`, { method: 'PUT', token: u.token }))
          .status,
      ).toBe(200);
    }
    for (const u of wsUsers.slice(50, 52)) {
      await api(`/api/stations/${station.id}/favourite`, { method: 'DELETE', token: u.token });
    }

    // ---- the queue: 20 tracks, reorders, five advances while listeners join and resume ----
    const tracks: QueueItem[] = [];
    for (let i = 0; i < 20; i++) {
      const a = await ownerAsk<{ item: QueueItem }>(ownerSocket, {
        type: 'queue.add',
        trackName: `Track ${i + 1}`,
        artistName: `Artist ${i % 5}`,
        durationSeconds: 180 + i,
      });
      tracks.push(a.result.item);
      if (i === 9) {
        // Ten listeners drop without a goodbye (to resume later), ten leave and join again.
        for (const s of [...anon.slice(10, 15), ...signed.slice(100, 105)]) s.raw.terminate();
        for (const s of [...anon.slice(15, 20), ...signed.slice(105, 110)]) s.close();
      }
    }
    await ownerAsk(ownerSocket, { type: 'queue.move', itemId: tracks[19]!.id, position: 0 });
    await ownerAsk(ownerSocket, { type: 'queue.move', itemId: tracks[0]!.id, position: 5 });
    await ownerAsk(ownerSocket, { type: 'queue.remove', itemId: tracks[10]!.id });
    // The dropped ones resume from what they saw; the others join afresh.
    const dropped = [...anon.slice(10, 15), ...signed.slice(100, 105)];
    const droppedTokens = [
      ...Array(5).fill(undefined),
      ...wsUsers.slice(100, 105).map((u) => u.token),
    ];
    const resumed = await Promise.all(
      dropped.map(async (old, i) => {
        const welcome = old.all<StreamWelcome>('welcome')[0]!;
        const s = await connect(`/ws/stations/${station.id}`, {
          token: droppedTokens[i],
          query: { since: lastSeq(old), epoch: welcome.epoch },
        });
        const w = await s.next<StreamWelcome>('welcome', 20_000);
        expect(w.recovery).toMatchObject({ requested: true, recovered: true });
        return { old, socket: s };
      }),
    );
    anonymousConnections += 5;
    joins += 10;
    for (let n = 0; n < 3; n++) await ownerAsk(ownerSocket, { type: 'queue.next' });
    const rejoined = await Promise.all(
      [...Array(5).fill(undefined), ...wsUsers.slice(105, 110).map((u) => u.token)].map(
        async (token) => {
          const s = await connect(`/ws/stations/${station.id}`, { token });
          await s.next('welcome', 20_000);
          return s;
        },
      ),
    );
    anonymousConnections += 5;
    joins += 10;
    await ownerAsk(ownerSocket, { type: 'queue.move', itemId: tracks[15]!.id, position: 1 });
    for (let n = 0; n < 2; n++) await ownerAsk(ownerSocket, { type: 'queue.next' });
    const truth = (
      await api<{ queue: QueueItem[]; nowPlaying: NowPlaying }>(`/api/stations/${station.id}/queue`)
    ).body;
    const expected = viewOf(truth);
    expect(expected.queue).toHaveLength(14); // 20 − 1 removed − 5 played
    // Played in order: Track 20 (moved to the front), then 2, 3, 4, 5... as reordered.
    const played = ownerSocket
      .all<StreamMetadataEvent>(
        (f) => f.type === 'stream.metadata' && typeof f.queueItemId === 'string',
      )
      .map((e) => e.nowPlaying.trackName);
    expect(played).toHaveLength(5);
    expect(played[0]).toBe('Track 20');
    expect(expected.nowPlaying).toBe(played.at(-1));
    const lastEventSeq = lastSeq(ownerSocket);

    const live = [
      ...everyone.filter(
        (s) =>
          !dropped.includes(s) &&
          !anon.slice(15, 20).includes(s) &&
          !signed.slice(105, 110).includes(s),
      ),
      ...resumed.map((r) => r.socket),
      ...rejoined,
    ];
    expect(live.length + sdk.length).toBe(300);
    for (const s of live) {
      const welcome = s.all<StreamWelcome>('welcome').at(-1);
      if ((welcome?.seq ?? 0) < lastEventSeq) await s.next((f) => f.seq === lastEventSeq, 20_000);
      expect(wsView(s)).toEqual(expected);
    }
    // A resumed listener also ends right when it applies the replay on top of what it had.
    for (const { old, socket } of resumed) {
      const first = old.all<StreamWelcome>('welcome')[0]!;
      const before = apply(first.snapshot, old.received, first.seq);
      expect(viewOf(apply(before, socket.received, lastSeq(old)))).toEqual(expected);
    }
    await until('SDK queues', () =>
      sdk.every(
        (c) =>
          JSON.stringify(viewOf({ queue: c.queue.items, nowPlaying: c.queue.nowPlaying })) ===
          JSON.stringify(expected),
      )
        ? true
        : null,
    );
    // The lobby got the same now-playing update.
    await lobbyDash.next(
      (f) =>
        f.type === 'station.metadata' &&
        (f as unknown as StationMetadataEvent).stationId === station.id &&
        (f as unknown as StationMetadataEvent).nowPlaying.trackName === expected.nowPlaying,
      20_000,
    );

    // ---- analytics: live from the station, then from D1 ----
    const totalReactions = Object.values(reactions).reduce((a, b) => a + b, 0);
    const distinct = 1 + SIGNED_IN + anonymousConnections;
    const analyticsPath = `/api/stations/${station.id}/sessions/${sessionId}/analytics`;
    const liveStats = await until('live analytics', async () => {
      const res = await api<SessionAnalytics>(analyticsPath, { token: owner.token });
      const sum = Object.values(res.body.reactions).reduce((a, b) => a + (b ?? 0), 0);
      return res.status === 200 && sum === totalReactions && res.body.listeners.current === 301
        ? res.body
        : null;
    });
    expect(liveStats).toMatchObject({
      live: true,
      listeners: { current: 301, peak: 301, distinct },
      chatMessages: 30,
      reactions,
      pollVotes: changedBallots,
      favouritesGained: 10,
      favouritesLost: 2,
    });
    expect(liveStats.polls).toEqual([
      expect.objectContaining({ pollId, voters: SIGNED_IN, eligible: SIGNED_IN + 1, open: false }),
    ]);
    expect(liveStats.minutes.reduce((n, m) => n + m.joins, 0)).toBe(joins);
    const seconds = (Date.now() - liveStats.startedAt) / 1000;
    expect(liveStats.averageListeningSeconds).toBeGreaterThan(0);
    expect(liveStats.averageListeningSeconds).toBeLessThanOrEqual(seconds);
    expect((await api(analyticsPath, { token: users[0]!.token })).status).toBe(403);
    // The owner's dashboard got live analytics frames; listeners none.
    const frame = await ownerSocket.next((f) => f.type === 'analytics', 20_000);
    expect(frame).toMatchObject({ analytics: { sessionId } });
    expect(live.some((s) => s.all('analytics').length > 0)).toBe(false);
    // The admin lobby view shows this station's engagement and sums it.
    const adminView = (await api<AdminView>('/api/admin/streams', { token: admin.token })).body;
    const mine = adminView.streams.find((s) => s.stationId === station.id);
    expect(mine?.engagement?.favouritesGained).toBe(10);
    expect(adminView.totals.engagement.pollVotes).toBeGreaterThanOrEqual(
      mine?.engagement?.pollVotes ?? 0,
    );

    // Stop, start the next show; the first session is then read from D1 and still matches.
    const stopped = await ownerAsk(ownerSocket, { type: 'stream.stop' });
    expect(stopped.type).toBe('ack');
    const ended = (await api<SessionAnalytics>(analyticsPath, { token: owner.token })).body;
    expect(ended).toMatchObject({ live: false, chatMessages: 30, pollVotes: changedBallots });
    await ownerAsk(ownerSocket, { type: 'stream.start', showTitle: 'Next show' });
    const fromD1 = await until('the session in D1', async () => {
      const res = await api<SessionAnalytics>(analyticsPath, { token: owner.token });
      return res.status === 200 && res.body.minutes.length === ended.minutes.length
        ? res.body
        : null;
    });
    expect({ ...fromD1, at: 0 }).toEqual({ ...ended, at: 0 });

    for (const s of [...live, ownerSocket, lobbyDash]) s.close();
    for (const c of sdk) c.channel.close();
  }, 400_000);
});
