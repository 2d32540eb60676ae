// Live engagement analytics of a broadcast session (issue 11): per-minute buckets in the
// station's object (boundaries, gaps, listening time), written to D1 as they close; the session
// analytics route for owners and admins, equal from the object and from D1; the owner's live
// `analytics` frame; the admin lobby view summing engagement over live stations.
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { SequenceLog } from '../../worker/channel/log';
import type { ChannelKit, Tx } from '../../worker/channel/room';
import type { MinuteRecord } from '../../worker/db/engagement';
import type { AdminView } from '../../worker/protocol/lobby';
import type {
  AnalyticsFrame,
  ListenerCounts,
  PollState,
  SessionAnalytics,
} from '../../worker/protocol/stream';
import { MINUTE_MS, SessionAnalyticsBook } from '../../worker/rooms/stream/analytics';
import type { FrameQueue } from '../support/frames';
import { api, drained, env, register, type TestUser } from './helpers';
import {
  closeAll,
  createStation,
  type ErrorBody,
  goLive,
  listen,
  stopLive,
  streamRoom,
} from './station-fixtures';

/** A kit over the object's own SQLite whose outbox only records what a commit would write. */
function recordingKit(sql: SqlStorage) {
  const written: MinuteRecord[] = [];
  const tx: Tx = {
    publish: (event) => ({ ...event, seq: 0 }),
    outbox: (_op, payload) => {
      written.push(payload as MinuteRecord);
    },
  };
  const kit = {
    label: 'analytics test',
    sql,
    log: new SequenceLog(sql, { maxEvents: 100, maxAgeMs: 60_000 }),
    outbox: { register: () => {} },
    env,
    commit: (_call: unknown, apply: (t: Tx) => unknown) => apply(tx),
    transaction: (fn: () => unknown) => fn(),
    broadcast: () => {},
    task: () => {},
    schedule: async () => {},
    scheduleSoon: () => {},
  } as unknown as ChannelKit;
  return { kit, tx, written };
}

const counts = (listeners: number, distinct: number, peak = listeners): ListenerCounts => ({
  listeners,
  connections: listeners,
  users: 0,
  anonymous: listeners,
  peak,
  distinct,
});

let ids = 0;
async function ask(socket: FrameQueue, frame: object) {
  ids += 1;
  const id = `a${ids}`;
  socket.send({ ...frame, id });
  return socket.next<{ type: string; result?: unknown; code?: string }>(
    (f) => f.id === id && (f.type === 'ack' || f.type === 'error'),
  );
}

async function analyticsOf(user: TestUser, stationId: string, sessionId: string) {
  const res = await api(`/api/stations/${stationId}/sessions/${sessionId}/analytics`, {
    token: user.token,
  });
  if (res.status !== 200) throw new Error(`analytics: ${res.status} ${await res.text()}`);
  return (await res.json()) as SessionAnalytics;
}

describe('per-minute buckets', () => {
  it('close on the minute boundary, fill quiet minutes and split listening time between them', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    await runInDurableObject(streamRoom(station.id), (_room, state) => {
      const { kit, tx, written } = recordingKit(state.storage.sql);
      const book = new SessionAnalyticsBook(kit, station.id);
      const t0 = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
      book.start('s-1', counts(2, 2), ['a:1', 'a:2'], t0 + 59_000);
      book.chat(counts(2, 2), t0 + 59_999); // the last millisecond of the first minute
      expect(written).toEqual([]);
      book.chat(counts(2, 2), t0 + 60_000); // the first of the next: the first minute closes
      expect(written).toHaveLength(1);
      expect(written[0]).toMatchObject({
        sessionId: 's-1',
        stationId: station.id,
        minute: t0,
        chatMessages: 1,
        listeners: 2,
        listeningMs: 2 * 1000,
      });
      book.joined('a:3', true, counts(3, 3), t0 + 61_000);
      book.left('a:1', true, counts(2, 3, 3), t0 + 90_000);
      book.reactions({ '🔥': 4, '❤️': 1 }, counts(2, 3, 3), t0 + 100_000);
      book.ballot(counts(2, 3, 3), t0 + 110_000);
      book.favourite(1, counts(2, 3, 3), t0 + 115_000);
      book.favourite(-1, counts(2, 3, 3), t0 + 116_000);
      // Nothing until three minutes later: the second minute closes, the third is filled in.
      book.roll(counts(2, 3, 3), t0 + 185_000);
      expect(written.map((m) => m.minute)).toEqual([t0, t0 + 60_000, t0 + 120_000]);
      expect(written[1]).toMatchObject({
        chatMessages: 1,
        joins: 1,
        peak: 3,
        listeners: 2,
        distinct: 3,
        reactions: { '🔥': 4, '❤️': 1 },
        pollVotes: 1,
        favouritesGained: 1,
        favouritesLost: 1,
        // a:2 the whole minute, a:1 until :30, a:3 from :01.
        listeningMs: 60_000 + 30_000 + 59_000,
      });
      expect(written[2]).toMatchObject({ chatMessages: 0, listeners: 2, listeningMs: 120_000 });
      const live = book.summary(counts(2, 3, 3), [], t0 + 185_000);
      expect(live?.minutes.at(-1)).toMatchObject({ minute: t0 + 180_000, listeningMs: 10_000 });
      book.stop(tx, counts(2, 3, 3), t0 + 185_000);
      expect(written.map((m) => m.minute)).toEqual([t0, t0 + 60_000, t0 + 120_000, t0 + 180_000]);
      expect(written[3]).toMatchObject({ listeningMs: 10_000 });
      const s = book.summary(counts(2, 3, 3), [], t0 + 999_000);
      expect(s).toMatchObject({
        live: false,
        endedAt: t0 + 185_000,
        listeners: { current: 0, peak: 3, distinct: 3 },
        chatMessages: 2,
        reactions: { '🔥': 4, '❤️': 1 },
        pollVotes: 1,
        favouritesGained: 1,
        favouritesLost: 1,
        listeningSeconds: 281,
        averageListeningSeconds: 93.67,
      });
      // 126 s of session: per-minute rates over 2.1 minutes.
      expect(s?.chatPerMinute).toBe(0.95);
      expect(s?.reactionsPerMinute).toEqual({ '🔥': 1.9, '❤️': 0.48 });
      // After the stop nothing counts toward the session any more.
      book.chat(counts(2, 3, 3), t0 + 200_000);
      expect(book.summary(counts(0, 3, 3), [], t0 + 200_000)?.chatMessages).toBe(2);
    });
  });

  it('count a signed-in user’s listening once across tabs, from the first to the last', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    await runInDurableObject(streamRoom(station.id), (_room, state) => {
      const { kit, tx } = recordingKit(state.storage.sql);
      const book = new SessionAnalyticsBook(kit, station.id);
      const t0 = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
      book.start('s-2', counts(0, 0), [], t0);
      book.joined('u:ann', true, counts(1, 1), t0 + 1000); // first tab
      book.joined('u:ann', false, counts(1, 1), t0 + 2000); // second tab
      book.left('u:ann', false, counts(1, 1), t0 + 10_000); // not her last
      book.left('u:ann', true, counts(0, 1), t0 + 21_000); // her last
      book.stop(tx, counts(0, 1, 1), t0 + 30_000);
      expect(book.summary(counts(0, 1, 1), [], t0 + 30_000)).toMatchObject({
        listeningSeconds: 20,
        averageListeningSeconds: 20,
      });
    });
  });
});

describe('session analytics', () => {
  it('match the activity, reach the owner live, and read the same from D1 once written', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const { session } = await goLive(owner, station.id);
    const desk = await listen(station.id, owner.token);
    const users = await Promise.all([register(), register(), register()]);
    const tabs = await Promise.all(users.map((u) => listen(station.id, u.token)));
    const anon = await listen(station.id);
    for (const [i, t] of tabs.entries())
      await ask(t.socket, { type: 'chat.send', body: `hi ${i}` });
    await ask(tabs[0]!.socket, { type: 'reaction', emoji: '🔥' });
    await ask(tabs[1]!.socket, { type: 'reaction', emoji: '🔥' });
    await ask(tabs[2]!.socket, { type: 'reaction', emoji: '👏' });
    const poll = (await ask(desk.socket, {
      type: 'poll.create',
      question: 'Louder?',
      options: ['yes', 'no'],
    })) as { result: { poll: PollState } };
    await ask(tabs[0]!.socket, { type: 'poll.vote', pollId: poll.result.poll.id, choices: [0] });
    await ask(tabs[1]!.socket, { type: 'poll.vote', pollId: poll.result.poll.id, choices: [1] });
    await ask(tabs[1]!.socket, { type: 'poll.vote', pollId: poll.result.poll.id, choices: [0] });
    for (const u of users.slice(0, 2)) {
      await api(`/api/stations/${station.id}/favourite`, { method: 'PUT', token: u.token });
    }
    // A second PUT by the same user gains nothing.
    await api(`/api/stations/${station.id}/favourite`, { method: 'PUT', token: users[0]!.token });
    // Reactions are flushed once a second; wait until they are counted.
    await tabs[2]!.socket.next((f) => f.type === 'reactions');
    let live = await analyticsOf(owner, station.id, session.id);
    for (
      let i = 0;
      i < 50 && Object.values(live.reactions).reduce((a, b) => a + (b ?? 0), 0) < 3;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 100));
      live = await analyticsOf(owner, station.id, session.id);
    }
    expect(live).toMatchObject({
      stationId: station.id,
      sessionId: session.id,
      live: true,
      endedAt: null,
      listeners: { current: 5, peak: 5, distinct: 5 },
      chatMessages: 3,
      reactions: { '🔥': 2, '👏': 1 },
      pollVotes: 3,
      favouritesGained: 2,
      favouritesLost: 0,
    });
    expect(live.polls).toEqual([
      expect.objectContaining({ pollId: poll.result.poll.id, open: true, voters: 2, votes: 2 }),
    ]);
    expect(live.polls[0]?.eligible).toBe(4);
    expect(live.polls[0]?.participation).toBe(0.5);
    expect(live.minutes.length).toBeGreaterThanOrEqual(1);
    expect(live.minutes.reduce((n, m) => n + m.joins, 0)).toBe(5);
    // The owner's dashboard gets the live frame; listeners never do.
    const frame = await desk.socket.next<AnalyticsFrame>(
      (f) => f.type === 'analytics' && (f as unknown as AnalyticsFrame).analytics.pollVotes === 3,
      8000,
    );
    expect(frame.analytics).toMatchObject({ sessionId: session.id, chatMessages: 3 });
    expect(
      [...tabs, { socket: anon.socket }].some((t) => t.socket.all('analytics').length > 0),
    ).toBe(false);
    // One listener leaves and a favourite is lost: averaged listening time is over everyone.
    await api(`/api/stations/${station.id}/favourite`, {
      method: 'DELETE',
      token: users[1]!.token,
    });
    await closeAll([anon.socket]);
    expect((await stopLive(owner, station.id)).status).toBe(200);
    const ended = await analyticsOf(owner, station.id, session.id);
    expect(ended).toMatchObject({
      live: false,
      listeners: { current: 0, peak: 5, distinct: 5 },
      chatMessages: 3,
      favouritesGained: 2,
      favouritesLost: 1,
    });
    expect(ended.averageListeningSeconds).toBeGreaterThan(0);
    expect(ended.polls[0]).toMatchObject({ open: false, voters: 2 });
    // A new session makes the room forget the old buckets: D1 answers with the same numbers.
    await drained(streamRoom(station.id));
    const { results } = await env.DB.prepare(
      'SELECT minute, chat_messages FROM session_minutes WHERE session_id = ? ORDER BY minute',
    )
      .bind(session.id)
      .all<{ minute: number; chat_messages: number }>();
    expect(results.map((r) => r.minute)).toEqual(ended.minutes.map((m) => m.minute));
    await goLive(owner, station.id, { showTitle: 'Second show' });
    const fromD1 = await analyticsOf(owner, station.id, session.id);
    expect({ ...fromD1, at: 0 }).toEqual({ ...ended, at: 0 });
    await closeAll([desk.socket, ...tabs.map((t) => t.socket)]);
  });

  it('is for the owner and admins only; an unknown session is session_not_found', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const { session } = await goLive(owner, station.id);
    const path = `/api/stations/${station.id}/sessions/${session.id}/analytics`;
    expect((await api(path)).status).toBe(401);
    const listener = await register();
    const refused = await api(path, { token: listener.token });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('forbidden');
    const missing = await api(`/api/stations/${station.id}/sessions/nope/analytics`, {
      token: owner.token,
    });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('session_not_found');
    const other = await createStation(owner);
    const elsewhere = await api(`/api/stations/${other.id}/sessions/${session.id}/analytics`, {
      token: owner.token,
    });
    expect(elsewhere.status).toBe(404);
  });

  it('sum across live stations in the admin lobby view', async () => {
    const admin = await register('admin');
    const owners = await Promise.all([register('station_owner'), register('station_owner')]);
    const stations = await Promise.all(owners.map((o) => createStation(o)));
    const fans = await Promise.all([register(), register(), register()]);
    for (const [i, s] of stations.entries()) await goLive(owners[i]!, s.id);
    // Two favourites on the first station, one on the second.
    for (const fan of fans.slice(0, 2)) {
      await api(`/api/stations/${stations[0]!.id}/favourite`, { method: 'PUT', token: fan.token });
    }
    await api(`/api/stations/${stations[1]!.id}/favourite`, {
      method: 'PUT',
      token: fans[2]!.token,
    });
    let view: AdminView | null = null;
    for (let i = 0; i < 50; i++) {
      const res = await api('/api/admin/streams', { token: admin.token });
      view = (await res.json()) as AdminView;
      const mine = view.streams.filter((s) => stations.some((st) => st.id === s.stationId));
      if (mine.reduce((n, s) => n + (s.engagement?.favouritesGained ?? 0), 0) === 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const mine = view?.streams.filter((s) => stations.some((st) => st.id === s.stationId)) ?? [];
    expect(mine.map((s) => s.engagement?.favouritesGained).sort()).toEqual([1, 2]);
    const total = view?.totals.engagement.favouritesGained ?? 0;
    expect(total).toBe(
      view?.streams.reduce((n, s) => n + (s.engagement?.favouritesGained ?? 0), 0),
    );
    expect(total).toBeGreaterThanOrEqual(3);
  });
});
