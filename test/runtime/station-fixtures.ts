// Fixtures for the station, stream and lobby tests: stations over REST, listener sockets,
// the rooms' stubs and D1 rows read directly.

import type { LobbyListenersFrame, LobbyWelcome } from '../../worker/protocol/lobby';
import type {
  BroadcastSession,
  ListenersFrame,
  NowPlaying,
  ShowInfo,
  StreamWelcome,
} from '../../worker/protocol/stream';
import type { FrameQueue } from '../support/frames';
import { api, connect, drained, env, type TestUser, unique } from './helpers';

export interface StationView {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  genre: string | null;
  isLive: boolean;
  currentSessionId: string | null;
  nowPlaying: NowPlaying | null;
  listeners: number;
  connections: number;
  peak: number;
}

export interface ErrorBody {
  error: { code: string; message: string; fields?: { path: string; message: string }[] };
}

export async function createStation(
  owner: TestUser,
  fields: Record<string, unknown> = {},
): Promise<StationView> {
  const res = await api('/api/stations', {
    method: 'POST',
    token: owner.token,
    json: { name: unique('Radio'), genre: 'jazz', ...fields },
  });
  if (res.status !== 201) throw new Error(`create station: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { station: StationView }).station;
}

export const MORNING_SHOW: ShowInfo = {
  showTitle: 'Morning Show',
  hostName: 'DJ Ada',
  showType: 'talk',
  trackId: 'trk-1',
};

export async function goLive(
  owner: TestUser,
  stationId: string,
  show: ShowInfo = MORNING_SHOW,
): Promise<{ session: BroadcastSession; nowPlaying: NowPlaying; seq: number }> {
  const res = await api(`/api/stations/${stationId}/live`, {
    method: 'POST',
    token: owner.token,
    json: show,
  });
  if (res.status !== 201) throw new Error(`go live: ${res.status} ${await res.text()}`);
  return (await res.json()) as { session: BroadcastSession; nowPlaying: NowPlaying; seq: number };
}

export async function stopLive(owner: TestUser, stationId: string): Promise<Response> {
  return api(`/api/stations/${stationId}/live`, { method: 'DELETE', token: owner.token });
}

/** A listener socket on the station, with its welcome already taken. */
export async function listen(
  stationId: string,
  token?: string,
  query?: Record<string, string | number>,
): Promise<{ socket: FrameQueue; welcome: StreamWelcome }> {
  const socket = await connect(`/ws/stations/${stationId}`, { token, query });
  const welcome = await socket.next<StreamWelcome>('welcome');
  return { socket, welcome };
}

export async function openLobby(
  token?: string,
): Promise<{ socket: FrameQueue; welcome: LobbyWelcome }> {
  const socket = await connect('/ws', { token });
  const welcome = await socket.next<LobbyWelcome>('welcome');
  return { socket, welcome };
}

/** Waits for a `listeners` frame of the station's channel that satisfies `match`. */
export function listenersWhere(
  socket: FrameQueue,
  match: (f: ListenersFrame) => boolean,
  timeoutMs = 5000,
): Promise<ListenersFrame> {
  return socket.next<ListenersFrame>(
    (f) => f.type === 'listeners' && match(f as unknown as ListenersFrame),
    timeoutMs,
  );
}

/** Waits for a lobby `listeners` frame naming the station with counts that satisfy `match`. */
export async function lobbyCountWhere(
  socket: FrameQueue,
  stationId: string,
  match: (c: { listeners: number; connections: number; peak: number }) => boolean,
  timeoutMs = 5000,
) {
  const frame = await socket.next<LobbyListenersFrame>((f) => {
    if (f.type !== 'listeners') return false;
    const entry = (f as unknown as LobbyListenersFrame).stations.find(
      (s) => s.stationId === stationId,
    );
    return entry !== undefined && match(entry);
  }, timeoutMs);
  const entry = frame.stations.find((s) => s.stationId === stationId);
  if (!entry) throw new Error('unreachable');
  return entry;
}

export function streamRoom(stationId: string) {
  return env.STREAM_ROOM.get(env.STREAM_ROOM.idFromName(`station:${stationId}`));
}

export function lobbyRoom() {
  return env.LOBBY.get(env.LOBBY.idFromName('lobby'));
}

export interface SessionRow {
  id: string;
  station_id: string;
  show_title: string;
  host_name: string | null;
  show_type: string | null;
  host_user_id: string;
  started_at: number;
  ended_at: number | null;
  peak_listeners: number;
  distinct_listeners: number;
  chat_message_count: number;
}

export async function sessionRows(stationId: string): Promise<SessionRow[]> {
  await drained(streamRoom(stationId));
  const { results } = await env.DB.prepare(
    'SELECT * FROM broadcast_sessions WHERE station_id = ? ORDER BY started_at',
  )
    .bind(stationId)
    .all<SessionRow>();
  return results;
}

export async function stationRow(stationId: string) {
  await drained(streamRoom(stationId));
  return env.DB.prepare(
    'SELECT is_live, current_session_id, now_playing FROM stations WHERE id = ?',
  )
    .bind(stationId)
    .first<{ is_live: number; current_session_id: string | null; now_playing: string | null }>();
}

/** Closes every socket and waits for each close to complete. */
export async function closeAll(sockets: FrameQueue[]): Promise<void> {
  for (const s of sockets) if (!s.closeEvent) s.close();
  await Promise.all(sockets.map((s) => s.closed()));
}
