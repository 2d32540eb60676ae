// The lobby channel, open on every page: the live directory with counts that move, the admin
// view for admins, and a toast when a station goes live.
import type { AdminView, LiveStation, LobbyServerFrame, LobbySnapshot } from '@wavecast/sdk';
import { useChannel, useChannelState } from '@wavecast/sdk/react';
import { createContext, type ReactNode, useContext } from 'react';
import { useSession } from './session';
import { useToast } from './ui/toasts';

export interface LobbyState {
  live: LiveStation[];
  admin: AdminView | null;
}

const LobbyContext = createContext<LobbyState | null>(null);

function reduce(state: LobbyState, frame: LobbyServerFrame): LobbyState {
  switch (frame.type) {
    case 'station.live':
      return {
        ...state,
        live: [...state.live.filter((s) => s.stationId !== frame.station.stationId), frame.station],
      };
    case 'station.offline':
      return { ...state, live: state.live.filter((s) => s.stationId !== frame.stationId) };
    case 'station.metadata':
      return {
        ...state,
        live: state.live.map((s) =>
          s.stationId === frame.stationId ? { ...s, nowPlaying: frame.nowPlaying } : s,
        ),
      };
    case 'listeners': {
      const counts = new Map(frame.stations.map((c) => [c.stationId, c]));
      return {
        ...state,
        live: state.live.map((s) => {
          const c = counts.get(s.stationId);
          return c ? { ...s, listeners: c.listeners, connections: c.connections, peak: c.peak } : s;
        }),
      };
    }
    case 'admin.streams':
      return { ...state, admin: { streams: frame.streams, totals: frame.totals, at: frame.at } };
    default:
      return state;
  }
}

export function LobbyProvider(props: { children: ReactNode }) {
  const session = useSession();
  const toast = useToast();
  const { channel } = useChannel<LobbyServerFrame, LobbySnapshot>(
    (c) => c.lobby(),
    [session?.user.id ?? null],
    (frame) => {
      if (frame.type === 'station.live') {
        toast(`${frame.station.name} is live now`, `/stations/${frame.station.stationId}`);
      }
    },
  );
  const state = useChannelState<LobbyServerFrame, LobbySnapshot, LobbyState>(
    channel,
    (s) => ({ live: s.live, admin: s.admin }),
    reduce,
  );
  return <LobbyContext.Provider value={state}>{props.children}</LobbyContext.Provider>;
}

/** Null until the lobby's first welcome. */
export function useLobby(): LobbyState | null {
  return useContext(LobbyContext);
}
