// The admin dashboard: every live stream with its listeners and engagement (live from the
// lobby's admin view), moderation links, and the platform's metrics as charts (from
// GET /api/admin/metrics, read every two seconds; the server's numbers are at most 5 s behind).
import { useStore } from '@wavecast/sdk/react';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { useLobby } from '../lobby';
import { usePlatform } from '../platform';
import { Link } from '../router';
import { client, useSession } from '../session';
import { describe, Empty, LineChart, Loading, useAction } from '../ui/states';
import { SignInFirst } from './auth';

interface Latency {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

interface AdminMetrics {
  at: number;
  platform: { connections: number; peak: number; occupied: number };
  kinds: Record<
    string,
    {
      connections: number;
      opened: number;
      eventsPublished: number;
      framesReceived: number;
      errors: Record<string, number>;
      latencyMs: { frame: Latency };
    }
  >;
  window: { handled: number; failures: number; failureRatio: number };
}

interface Sample {
  connections: number;
  total: number;
  peak: number;
  eventsPerSecond: number;
  errors: number;
  latency: number;
}

const HISTORY = 60;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

function sample(m: AdminMetrics, previous: { m: AdminMetrics; s: Sample } | null): Sample {
  const kinds = Object.values(m.kinds);
  const events = sum(kinds.map((k) => k.eventsPublished + k.framesReceived));
  let eventsPerSecond = 0;
  if (previous) {
    const before = sum(
      Object.values(previous.m.kinds).map((k) => k.eventsPublished + k.framesReceived),
    );
    const seconds = Math.max(1, (m.at - previous.m.at) / 1000);
    eventsPerSecond = Math.max(0, (events - before) / seconds);
  }
  return {
    connections: m.platform.connections,
    total: sum(kinds.map((k) => k.opened)),
    peak: m.platform.peak,
    eventsPerSecond,
    errors: sum(kinds.map((k) => sum(Object.values(k.errors)))),
    latency: Math.max(0, ...kinds.map((k) => k.latencyMs.frame.p95 ?? 0)),
  };
}

function useMetrics(enabled: boolean) {
  const [history, setHistory] = useState<Sample[]>([]);
  const [error, setError] = useState<string | null>(null);
  const last = useRef<{ m: AdminMetrics; s: Sample } | null>(null);
  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let reading = false;
    const read = async () => {
      // One read at a time, and never an older snapshot after a newer one: under load a read can
      // outlast the interval, and two overlapping answers may arrive out of order.
      if (reading) return;
      reading = true;
      try {
        const m = await client.request<AdminMetrics>('GET', '/api/admin/metrics');
        if (stopped || (last.current && m.at < last.current.m.at)) return;
        const s = sample(m, last.current);
        last.current = { m, s };
        setHistory((h) => [...h.slice(-(HISTORY - 1)), s]);
        setError(null);
      } catch (err) {
        if (!stopped) setError(describe(err));
      } finally {
        reading = false;
      }
    };
    void read();
    const timer = setInterval(read, 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [enabled]);
  return { history, error };
}

export function Admin() {
  const session = useSession();
  const lobby = useLobby();
  const isAdmin = session?.user.role === 'admin';
  const metrics = useMetrics(isAdmin);
  if (!session) return <SignInFirst what="to see the dashboard" />;
  if (!isAdmin) return <p className="state error">This page is for admins.</p>;
  const admin = lobby?.admin;
  const series = (pick: (s: Sample) => number) => metrics.history.map(pick);
  return (
    <>
      <h1>Platform</h1>
      <section aria-label="Totals" className="totals">
        {admin ? (
          <dl className="facts inline-facts">
            <dt>Live stations</dt>
            <dd data-testid="admin-live-stations">{admin.totals.liveStations}</dd>
            <dt>Listeners</dt>
            <dd data-testid="admin-listeners">{admin.totals.listeners}</dd>
            <dt>Chat / min</dt>
            <dd>{admin.totals.messagesPerMinute}</dd>
            <dt>Reactions</dt>
            <dd>{admin.totals.reactions}</dd>
          </dl>
        ) : (
          <Loading />
        )}
      </section>
      <h2>Live streams</h2>
      {!admin ? (
        <Loading />
      ) : admin.streams.length === 0 ? (
        <Empty>No stream is live.</Empty>
      ) : (
        <div className="table-wrap">
          <table data-testid="admin-streams">
            <thead>
              <tr>
                <th scope="col">Station</th>
                <th scope="col">Listeners</th>
                <th scope="col">Peak</th>
                <th scope="col">Chat / min</th>
                <th scope="col">Reactions</th>
                <th scope="col">Moderate</th>
              </tr>
            </thead>
            <tbody>
              {admin.streams.map((s) => (
                <tr key={s.stationId}>
                  <th scope="row">{s.name}</th>
                  <td data-testid={`admin-listeners-${s.stationId}`}>{s.listeners}</td>
                  <td>{s.peak}</td>
                  <td>{s.messagesPerMinute}</td>
                  <td>{s.reactionTotal}</td>
                  <td>
                    <Link to={`/stations/${s.stationId}`}>Open {s.name}</Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Announcements />
      <h2>Metrics</h2>
      {metrics.error && (
        <p className="form-error" role="alert">
          {metrics.error}
        </p>
      )}
      {metrics.history.length === 0 ? (
        <Loading label="Reading metrics…" />
      ) : (
        <div className="charts">
          <LineChart
            title="Connections now"
            values={series((s) => s.connections)}
            testId="chart-connections"
          />
          <LineChart
            title="Connections opened (total)"
            values={series((s) => s.total)}
            testId="chart-opened"
          />
          <LineChart title="Peak connections" values={series((s) => s.peak)} />
          <LineChart title="Events per second" values={series((s) => s.eventsPerSecond)} />
          <LineChart title="Errors (total)" values={series((s) => s.errors)} />
          <LineChart title="Frame latency p95" unit="ms" values={series((s) => s.latency)} />
        </div>
      )}
    </>
  );
}

/** System announcements: post one to every open page (the banner), or withdraw it. */
function Announcements() {
  const platform = usePlatform();
  const current = useStore(platform?.announcements, []);
  const act = useAction();
  const post = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const minutes = Number(f.get('minutes'));
    const ok = await act.run(() =>
      client.request('POST', '/api/admin/announcements', {
        message: String(f.get('message')),
        level: String(f.get('level')),
        ...(minutes > 0 ? { expiresInSeconds: minutes * 60 } : {}),
      }),
    );
    if (ok) form.reset();
  };
  return (
    <section className="panel" aria-label="Announcements">
      <h2>Announcements</h2>
      {current.length === 0 ? (
        <Empty>No announcement is showing.</Empty>
      ) : (
        <ul className="list">
          {current.map((a) => (
            <li key={a.id}>
              {a.message} <span className="badge">{a.level}</span>{' '}
              <button
                type="button"
                disabled={act.busy}
                onClick={() =>
                  act.run(() => client.request('DELETE', `/api/admin/announcements/${a.id}`))
                }
              >
                Withdraw
              </button>
            </li>
          ))}
        </ul>
      )}
      <form onSubmit={post} className="inline wrap">
        <label>
          Message
          <input name="message" required maxLength={1000} />
        </label>
        <label>
          Level
          <select name="level" defaultValue="info">
            <option value="info">Info</option>
            <option value="warning">Warning</option>
            <option value="error">Error</option>
          </select>
        </label>
        <label>
          Minutes shown (empty: until withdrawn)
          <input name="minutes" type="number" min={1} max={10080} />
        </label>
        <button type="submit" className="primary" disabled={act.busy}>
          Announce
        </button>
      </form>
      {act.shown}
    </section>
  );
}
