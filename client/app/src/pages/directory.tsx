// The live directory: stations on air with LIVE badges and listener counts that move, then every
// station. Live state comes from the lobby channel; the full list from REST.
import type { NowPlaying } from '@wavecast/sdk';
import { useLobby } from '../lobby';
import { Link } from '../router';
import { client } from '../session';
import { Empty, ErrorBox, LiveBadge, Loading, useApi } from '../ui/states';

interface StationRow {
  id: string;
  name: string;
  genre: string | null;
  description: string;
}

export function track(np: NowPlaying | null): string {
  if (!np) return '';
  if (np.trackName) return np.artistName ? `${np.trackName} — ${np.artistName}` : np.trackName;
  return np.showTitle;
}

export function Directory() {
  const lobby = useLobby();
  const live = [...(lobby?.live ?? [])].sort((a, b) => b.listeners - a.listeners);
  // The full list is REST; it is read again whenever a station goes on or off air, so a new
  // station shows up without a refresh.
  const onAir = live
    .map((s) => s.stationId)
    .sort()
    .join(',');
  const all = useApi(
    () => client.request<{ stations: StationRow[] }>('GET', '/api/stations?limit=100'),
    [onAir],
  );
  const liveIds = new Set(live.map((s) => s.stationId));
  const offAir = (all.data?.stations ?? []).filter((s) => !liveIds.has(s.id));
  return (
    <>
      <h1>Live now</h1>
      {!lobby ? (
        <Loading label="Finding live stations…" />
      ) : live.length === 0 ? (
        <Empty>No station is live right now. This list updates by itself when one goes live.</Empty>
      ) : (
        <ul className="cards" data-testid="live-list">
          {live.map((s) => (
            <li key={s.stationId} className="card" data-testid={`station-${s.stationId}`}>
              <div className="card-head">
                <LiveBadge live />
                <Link to={`/stations/${s.stationId}`}>
                  <h2>{s.name}</h2>
                </Link>
              </div>
              <p className="now-playing" data-testid="now-playing">
                {track(s.nowPlaying)}
              </p>
              <p className="muted">
                <span data-testid="listener-count">{s.listeners}</span> listening
                {s.genre ? ` · ${s.genre}` : ''}
              </p>
            </li>
          ))}
        </ul>
      )}
      <h2>All stations</h2>
      {all.loading && !all.data ? (
        <Loading />
      ) : all.error ? (
        <ErrorBox error={all.error} onRetry={all.reload} />
      ) : offAir.length === 0 ? (
        <Empty>No other stations yet.</Empty>
      ) : (
        <ul className="list">
          {offAir.map((s) => (
            <li key={s.id}>
              <Link to={`/stations/${s.id}`}>{s.name}</Link>{' '}
              <span className="muted">{s.genre ?? ''}</span> <LiveBadge live={false} />
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
