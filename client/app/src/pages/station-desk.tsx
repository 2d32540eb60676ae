// The station's show desk (issue 11): the live poll (vote, and for the owner open and close), the
// track queue (the owner adds, reorders, removes and plays the next), and the owner's live
// analytics as charts. State comes from the SDK's StationPoll / StationQueue helpers, which
// follow the station channel's snapshot and events.
import type {
  Channel,
  SessionAnalytics,
  StationPoll,
  StationQueue,
  StreamServerFrame,
  StreamSnapshot,
} from '@wavecast/sdk';
import { type FormEvent, useEffect, useReducer, useState } from 'react';
import { Empty, LineChart, useAction } from '../ui/states';

/** Re-renders when a helper says it changed. */
function useChanges(source: { onChange(listener: () => void): () => void }) {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => source.onChange(bump), [source]);
}

function secondsLeft(until: number): number {
  return Math.max(0, Math.ceil((until - Date.now()) / 1000));
}

export function PollPanel(props: { poll: StationPoll; canManage: boolean; signedIn: boolean }) {
  const { poll: helper } = props;
  useChanges(helper);
  const [, tick] = useReducer((n: number) => n + 1, 0);
  const poll = helper.poll;
  useEffect(() => {
    if (!poll?.open) return;
    const timer = setInterval(tick, 1000);
    return () => clearInterval(timer);
  }, [poll?.open]);
  const [picked, setPicked] = useState<number[]>([]);
  const act = useAction();
  const total = poll ? Math.max(1, poll.votes) : 1;
  const ballot = helper.ballot ?? [];

  const openPoll = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const options = String(f.get('options') ?? '')
      .split('\n')
      .map((o) => o.trim())
      .filter(Boolean);
    const ok = await act.run(() =>
      helper.open({
        question: String(f.get('question')),
        options,
        multiple: f.get('multiple') === 'on',
        durationSeconds: Number(f.get('duration')) || 120,
      }),
    );
    if (ok) form.reset();
  };

  return (
    <section className="panel" aria-label="Poll">
      <h2>Poll</h2>
      {!poll ? (
        <Empty>No poll yet.</Empty>
      ) : (
        <div data-testid="poll">
          <p>
            <strong>{poll.question}</strong>{' '}
            {poll.open ? (
              <span className="muted" data-testid="poll-time">
                {secondsLeft(poll.closesAt)} s left
              </span>
            ) : (
              <span className="badge">Closed</span>
            )}
          </p>
          <ul className="choices">
            {poll.options.map((option, i) => {
              const votes = poll.tallies[i] ?? 0;
              const mine = ballot.includes(i);
              const chosen = poll.multiple ? picked.includes(i) : mine;
              return (
                <li key={option}>
                  <button
                    type="button"
                    aria-pressed={chosen}
                    disabled={!poll.open || !props.signedIn || act.busy}
                    onClick={() => {
                      if (poll.multiple) {
                        setPicked((p) => (p.includes(i) ? p.filter((x) => x !== i) : [...p, i]));
                      } else void act.run(() => helper.vote([i]));
                    }}
                  >
                    {option} <span data-testid={`poll-votes-${i}`}>{votes}</span>
                    {mine ? ' ✓' : ''}
                  </button>
                  <meter
                    min={0}
                    max={total}
                    value={votes}
                    aria-label={`${option}: ${votes} votes`}
                  />
                </li>
              );
            })}
          </ul>
          {poll.multiple && poll.open && props.signedIn && (
            <button
              type="button"
              disabled={picked.length === 0 || act.busy}
              onClick={() => act.run(() => helper.vote(picked))}
            >
              Vote for {picked.length} option{picked.length === 1 ? '' : 's'}
            </button>
          )}
          <p className="muted">
            <span data-testid="poll-voters">{poll.voters}</span> voted
          </p>
          {props.canManage && poll.open && (
            <button type="button" onClick={() => act.run(() => helper.close())}>
              Close poll
            </button>
          )}
        </div>
      )}
      {props.canManage && !poll?.open && (
        <form onSubmit={openPoll} className="stack">
          <label>
            Question
            <input name="question" required maxLength={200} />
          </label>
          <label>
            Options (one per line, 2–10)
            <textarea name="options" rows={3} required />
          </label>
          <div className="inline wrap">
            <label>
              Seconds open
              <input name="duration" type="number" min={10} max={86400} defaultValue={120} />
            </label>
            <label className="choice">
              <input type="checkbox" name="multiple" /> Several answers allowed
            </label>
          </div>
          <button type="submit" className="primary" disabled={act.busy}>
            Open poll
          </button>
        </form>
      )}
      {act.shown}
    </section>
  );
}

export function QueuePanel(props: { queue: StationQueue; canManage: boolean; live: boolean }) {
  const { queue } = props;
  useChanges(queue);
  const act = useAction();
  const add = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const artist = String(f.get('artist') ?? '').trim();
    const ok = await act.run(() =>
      queue.add({ trackName: String(f.get('track')), artistName: artist || null }),
    );
    if (ok) form.reset();
  };
  if (!props.canManage && queue.items.length === 0) return null;
  return (
    <section className="panel" aria-label="Up next">
      <h2>Up next</h2>
      {queue.items.length === 0 ? (
        <Empty>The queue is empty.</Empty>
      ) : (
        <ol className="queue" data-testid="queue">
          {queue.items.map((item, i) => (
            <li key={item.id}>
              <span className="body">
                {item.trackName}
                {item.artistName ? ` — ${item.artistName}` : ''}
              </span>
              {props.canManage && (
                <span className="mod">
                  <button
                    type="button"
                    disabled={i === 0 || act.busy}
                    aria-label={`Move ${item.trackName} up`}
                    onClick={() => act.run(() => queue.move(item.id, i - 1))}
                  >
                    ↑
                  </button>
                  <button
                    type="button"
                    disabled={i === queue.items.length - 1 || act.busy}
                    aria-label={`Move ${item.trackName} down`}
                    onClick={() => act.run(() => queue.move(item.id, i + 1))}
                  >
                    ↓
                  </button>
                  <button
                    type="button"
                    disabled={act.busy}
                    aria-label={`Remove ${item.trackName}`}
                    onClick={() => act.run(() => queue.remove(item.id))}
                  >
                    Remove
                  </button>
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
      {props.canManage && (
        <>
          <div className="inline wrap">
            <button
              type="button"
              className="primary"
              disabled={!props.live || queue.items.length === 0 || act.busy}
              onClick={() => act.run(() => queue.next())}
            >
              Play next
            </button>
            <button
              type="button"
              disabled={queue.items.length === 0 || act.busy}
              onClick={() => act.run(() => queue.clear())}
            >
              Clear queue
            </button>
          </div>
          <form onSubmit={add} className="inline wrap">
            <label>
              Queue a track
              <input name="track" required maxLength={200} />
            </label>
            <label>
              Its artist
              <input name="artist" maxLength={200} />
            </label>
            <button type="submit" disabled={act.busy}>
              Add to queue
            </button>
          </form>
        </>
      )}
      {act.shown}
    </section>
  );
}

export function AnalyticsPanel(props: { channel: Channel<StreamServerFrame, StreamSnapshot> }) {
  const [analytics, setAnalytics] = useState<SessionAnalytics | null>(null);
  useEffect(
    () =>
      props.channel.on('analytics', (f) => {
        setAnalytics(f.analytics);
      }),
    [props.channel],
  );
  return (
    <section className="panel" aria-label="Live analytics">
      <h2>Live analytics</h2>
      {!analytics ? (
        <Empty>Numbers appear here a few seconds into a broadcast.</Empty>
      ) : (
        <>
          <dl className="facts inline-facts" data-testid="analytics">
            <dt>Listening now</dt>
            <dd data-testid="analytics-current">{analytics.listeners.current}</dd>
            <dt>Peak</dt>
            <dd>{analytics.listeners.peak}</dd>
            <dt>Distinct</dt>
            <dd>{analytics.listeners.distinct}</dd>
            <dt>Chat / min</dt>
            <dd>{analytics.chatPerMinute.toFixed(1)}</dd>
            <dt>Poll votes</dt>
            <dd>{analytics.pollVotes}</dd>
            <dt>Avg. listening</dt>
            <dd>{Math.round(analytics.averageListeningSeconds)} s</dd>
          </dl>
          <div className="charts">
            <LineChart
              title="Listeners per minute"
              values={analytics.minutes.map((m) => m.listeners)}
              testId="chart-listeners"
            />
            <LineChart
              title="Chat per minute"
              values={analytics.minutes.map((m) => m.chatMessages)}
            />
            <LineChart
              title="Reactions per minute"
              values={analytics.minutes.map((m) =>
                Object.values(m.reactions).reduce((a, b) => a + (b ?? 0), 0),
              )}
            />
            <LineChart title="Joins per minute" values={analytics.minutes.map((m) => m.joins)} />
          </div>
        </>
      )}
    </section>
  );
}
