// A station owner's studio: their stations (LIVE or not, with live counts) and a form to create one.
import { type FormEvent, useState } from 'react';
import { useLobby } from '../lobby';
import { Link, navigate } from '../router';
import { client, newKey, useSession } from '../session';
import { Empty, ErrorBox, LiveBadge, Loading, useAction, useApi } from '../ui/states';
import { SignInFirst } from './auth';

interface StationRow {
  id: string;
  ownerId: string;
  name: string;
  genre: string | null;
}

export function Studio() {
  const session = useSession();
  const lobby = useLobby();
  const mine = useApi(
    () => client.request<{ stations: StationRow[] }>('GET', '/api/stations?limit=100'),
    [session?.user.id],
  );
  const [key, setKey] = useState(newKey);
  const act = useAction();
  if (!session) return <SignInFirst what="to run a station" />;
  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    await act.run(async () => {
      const genre = String(f.get('genre') ?? '').trim();
      const { station } = await client.request<{ station: StationRow }>(
        'POST',
        '/api/stations',
        {
          name: String(f.get('name')),
          description: String(f.get('description') ?? ''),
          genre: genre || null,
        },
        { 'idempotency-key': key },
      );
      setKey(newKey());
      navigate(`/stations/${station.id}`);
    });
  };
  const own = (mine.data?.stations ?? []).filter(
    (s) => s.ownerId === session.user.id || session.user.role === 'admin',
  );
  const live = new Map((lobby?.live ?? []).map((s) => [s.stationId, s]));
  return (
    <>
      <h1>Studio</h1>
      <h2>Your stations</h2>
      {mine.loading ? (
        <Loading />
      ) : mine.error ? (
        <ErrorBox error={mine.error} onRetry={mine.reload} />
      ) : own.length === 0 ? (
        <Empty>You have no station yet. Create one below.</Empty>
      ) : (
        <ul className="list">
          {own.map((s) => (
            <li key={s.id}>
              <Link to={`/stations/${s.id}`}>{s.name}</Link> <LiveBadge live={live.has(s.id)} />
              {live.has(s.id) && <span> {live.get(s.id)?.listeners} listening</span>}
            </li>
          ))}
        </ul>
      )}
      <h2>Create a station</h2>
      <form onSubmit={create} className="stack narrow">
        <label>
          Name
          <input name="name" required maxLength={80} />
        </label>
        <label>
          Genre
          <input name="genre" maxLength={40} />
        </label>
        <label>
          Description
          <textarea name="description" maxLength={1000} rows={3} />
        </label>
        {act.shown}
        <button type="submit" className="primary" disabled={act.busy}>
          Create station
        </button>
      </form>
    </>
  );
}
