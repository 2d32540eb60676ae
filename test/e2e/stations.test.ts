// Live stations end to end against `wrangler dev` (issue 3): an owner goes live over its socket;
// 200 listener tabs (anonymous and signed in, some users with two tabs) see the live event in
// the lobby, join the stream, and the count converges to the exact number; chat order is the
// same at every listener; a listener cut abruptly resumes and misses nothing; everyone leaves
// and the count returns to zero while the peak stays on the session.
import { describe, expect, it } from 'vitest';
import type { AckFrame } from '../../worker/protocol/core';
import type {
  AdminStreamsFrame,
  LobbyListenersFrame,
  LobbyWelcome,
  StationLiveEvent,
  StationOfflineEvent,
} from '../../worker/protocol/lobby';
import type {
  ChatMessageEvent,
  ListenersFrame,
  StreamStoppedEvent,
  StreamWelcome,
} from '../../worker/protocol/stream';
import type { FrameQueue } from '../support/frames';
import { E2E_ADMIN } from './global-setup';
import { api, connect, type E2EUser, register, unique } from './helpers';

type Socket = Awaited<ReturnType<typeof connect>>;

const ANONYMOUS_TABS = 60;
const SIGNED_IN_USERS = 100;
const USERS_WITH_TWO_TABS = 40;
const TABS = ANONYMOUS_TABS + SIGNED_IN_USERS + USERS_WITH_TWO_TABS; // 200

/** Runs `make` for every item, `width` at a time (PBKDF2 and upgrades are not free). */
async function batched<T, R>(items: T[], width: number, make: (item: T, i: number) => Promise<R>) {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    const slice = items.slice(i, i + width);
    out.push(...(await Promise.all(slice.map((item, j) => make(item, i + j)))));
  }
  return out;
}

async function registerAdmin(): Promise<E2EUser> {
  const res = await api<{ user: Omit<E2EUser, 'token'>; token: string }>('/api/auth/register', {
    method: 'POST',
    json: { email: E2E_ADMIN, password: 'correct horse battery', displayName: 'Admin' },
  });
  if (res.status === 201) return { ...res.body.user, token: res.body.token };
  const login = await api<{ user: Omit<E2EUser, 'token'>; token: string }>('/api/auth/login', {
    method: 'POST',
    json: { email: E2E_ADMIN, password: 'correct horse battery' },
  });
  return { ...login.body.user, token: login.body.token };
}

function lobbyCount(socket: FrameQueue, stationId: string, want: (n: number) => boolean) {
  return socket.next<LobbyListenersFrame>(
    (f) =>
      f.type === 'listeners' &&
      (f as unknown as LobbyListenersFrame).stations.some(
        (s) => s.stationId === stationId && want(s.listeners),
      ),
    20_000,
  );
}

function chatLog(socket: FrameQueue): string[] {
  return socket
    .all<ChatMessageEvent>('chat.message')
    .map((e) => `${e.seq}:${e.message.id}:${e.message.body}`);
}

async function chatCount(socket: FrameQueue, n: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (socket.all('chat.message').length < n) {
    if (Date.now() > deadline) {
      throw new Error(`saw ${socket.all('chat.message').length} of ${n} chat messages`);
    }
    await socket.next((f) => f.type === 'chat.message', deadline - Date.now()).catch(() => {});
  }
}

describe('live station end to end', () => {
  it('200 listeners: lobby live event, exact counts both ways, one chat order, lossless resume', async () => {
    const owner = await register('station_owner', 'Owner');
    const admin = await registerAdmin();
    const users = await batched(Array.from({ length: SIGNED_IN_USERS }), 10, () => register());
    const station = (
      await api<{ station: { id: string } }>('/api/stations', {
        method: 'POST',
        token: owner.token,
        json: { name: unique('E2E FM') },
      })
    ).body.station;

    // The tabs: anonymous ones, one per signed-in user, and a second tab for some users.
    const tabTokens: (string | undefined)[] = [
      ...Array.from({ length: ANONYMOUS_TABS }, () => undefined),
      ...users.map((u) => u.token),
      ...users.slice(0, USERS_WITH_TWO_TABS).map((u) => u.token),
    ];
    expect(tabTokens).toHaveLength(TABS);

    // Every tab opens the lobby (its dashboard) first.
    const dashboards = await batched(tabTokens, 25, async (token) => {
      const socket = await connect('/ws', { token });
      await socket.next<LobbyWelcome>('welcome');
      return socket;
    });
    const adminDash = await connect('/ws', { token: admin.token });
    expect((await adminDash.next<LobbyWelcome>('welcome')).snapshot.admin).not.toBeNull();

    // The owner goes live over its socket (seed 000 startStream).
    const ownerSocket = await connect(`/ws/stations/${station.id}`, { token: owner.token });
    await ownerSocket.next<StreamWelcome>('welcome');
    ownerSocket.send({
      type: 'stream.start',
      id: 'go-live',
      showTitle: 'Load Test Live',
      hostName: 'Owner',
      showType: 'music',
    });
    const started = await ownerSocket.next<AckFrame>('ack', 10_000);
    expect(started).toMatchObject({ id: 'go-live' });
    await Promise.all(
      dashboards.map(async (d) => {
        const live = await d.next<StationLiveEvent>(
          (f) =>
            f.type === 'station.live' &&
            (f as unknown as StationLiveEvent).station.stationId === station.id,
          10_000,
        );
        expect(live.station.session.showTitle).toBe('Load Test Live');
      }),
    );

    // Every tab joins the stream.
    const tabs = await batched(tabTokens, 25, async (token) => {
      const socket = await connect(`/ws/stations/${station.id}`, { token });
      await socket.next<StreamWelcome>('welcome');
      return socket;
    });
    // Keep three dashboards (anonymous, signed in, admin) to watch counts; close the rest.
    const watchers = [dashboards[0] as Socket, dashboards[ANONYMOUS_TABS] as Socket, adminDash];
    for (const d of dashboards) if (!watchers.includes(d)) d.close();

    const listeners = SIGNED_IN_USERS + ANONYMOUS_TABS + 1; // + the owner's own socket
    const connections = TABS + 1;
    await ownerSocket.next<ListenersFrame>(
      (f) => f.type === 'listeners' && f.connections === connections && f.listeners === listeners,
      20_000,
    );
    for (const w of watchers) await lobbyCount(w, station.id, (n) => n === listeners);
    const exact = await api<{ station: { listeners: number; connections: number; peak: number } }>(
      `/api/stations/${station.id}`,
    );
    expect(exact.body.station).toMatchObject({ listeners, connections, peak: listeners });
    await adminDash.next<AdminStreamsFrame>(
      (f) =>
        f.type === 'admin.streams' &&
        (f as unknown as AdminStreamsFrame).streams.some(
          (s) => s.stationId === station.id && s.listeners === listeners,
        ),
      20_000,
    );

    // Chat, phase one: 10 users send 3 messages each, all at once.
    const senderTab = (i: number) => tabs[ANONYMOUS_TABS + i] as Socket;
    const send = async (from: number, to: number) => {
      await Promise.all(
        Array.from({ length: to - from }, async (_, k) => {
          const tab = senderTab(from + k);
          for (let m = 0; m < 3; m++) {
            const id = `u${from + k}-m${m}`;
            tab.send({ type: 'chat.send', id, body: `message ${m} from user ${from + k}` });
            const ack = await tab.next(
              (f) => (f.type === 'ack' || f.type === 'error') && f.id === id,
            );
            expect(ack.type, JSON.stringify(ack)).toBe('ack');
          }
        }),
      );
    };
    await send(0, 10);
    await Promise.all(tabs.map((t) => chatCount(t, 30)));

    // A signed-in listener with one tab is cut abruptly (no close handshake).
    const dropIndex = ANONYMOUS_TABS + USERS_WITH_TWO_TABS + 5;
    const dropped = tabs[dropIndex] as Socket;
    const dropToken = tabTokens[dropIndex];
    const droppedWelcome = dropped.received[0] as unknown as StreamWelcome;
    const lastSeen = Math.max(...dropped.all<ChatMessageEvent>('chat.message').map((e) => e.seq));
    dropped.raw.terminate();
    await ownerSocket.next<ListenersFrame>(
      (f) => f.type === 'listeners' && f.connections === connections - 1,
      20_000,
    );

    // Phase two while it is away: 10 other users send 3 each.
    await send(10, 20);
    const stayed = tabs.filter((t) => t !== dropped);
    await Promise.all(stayed.map((t) => chatCount(t, 60)));

    const reference = chatLog(ownerSocket).slice(-60);
    expect(reference).toHaveLength(60);
    const seqs = reference.map((line) => Number(line.split(':')[0]));
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i));
    for (const t of stayed) expect(chatLog(t)).toEqual(reference);

    // It resumes from the last seq it saw and ends with exactly the same history.
    const resumed = await connect(`/ws/stations/${station.id}`, {
      token: dropToken,
      query: { since: lastSeen, epoch: droppedWelcome.epoch },
    });
    const welcome = await resumed.next<StreamWelcome>('welcome');
    expect(welcome.recovery).toEqual({ requested: true, recovered: true, missed: 30 });
    await chatCount(resumed, 30);
    expect([...chatLog(dropped), ...chatLog(resumed)]).toEqual(reference);
    await ownerSocket.next<ListenersFrame>(
      (f) => f.type === 'listeners' && f.connections === connections,
      20_000,
    );

    // Everyone leaves: the count goes back to zero, the peak stays.
    for (const t of [...stayed, resumed]) t.close();
    ownerSocket.close();
    for (const w of watchers) await lobbyCount(w, station.id, (n) => n === 0);
    const after = await api<{ station: { listeners: number; connections: number; peak: number } }>(
      `/api/stations/${station.id}`,
    );
    expect(after.body.station).toMatchObject({ listeners: 0, connections: 0, peak: listeners });

    // The owner stops over REST; dashboards hear it, and the session keeps its numbers.
    const stop = await api<{ session: StreamStoppedEvent['session'] }>(
      `/api/stations/${station.id}/live`,
      { method: 'DELETE', token: owner.token },
    );
    expect(stop.status).toBe(200);
    expect(stop.body.session).toMatchObject({
      peakListeners: listeners,
      distinctListeners: listeners,
      chatMessageCount: 60,
    });
    for (const w of watchers) {
      await w.next<StationOfflineEvent>(
        (f) => f.type === 'station.offline' && f.stationId === station.id,
        10_000,
      );
    }
    const sessions = await api<{ sessions: { peakListeners: number; endedAt: number | null }[] }>(
      `/api/stations/${station.id}/sessions`,
    );
    expect(sessions.body.sessions[0]).toMatchObject({ peakListeners: listeners });
    expect(sessions.body.sessions[0]?.endedAt).not.toBeNull();
    for (const w of watchers) w.close();
  });
});
