// A station: now playing, LIVE state and the listener count as they change, chat with optimistic
// sends (reconciled by the ack, never doubled after a reconnect), reactions, favourite, and for
// the owner (or an admin): Go Live / Stop, now playing and chat moderation.
import type {
  Channel,
  ChatMessage,
  ListenerCounts,
  ReactionEmoji,
  StreamServerFrame,
  StreamSnapshot,
} from '@wavecast/sdk';
import { stationDesk } from '@wavecast/sdk';
import { useChannel, useChannelState } from '@wavecast/sdk/react';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { OnlineDot, usePresence } from '../platform';
import { client, newKey, useSession } from '../session';
import { describe, Empty, ErrorBox, LiveBadge, Loading, useAction, useApi } from '../ui/states';
import { track } from './directory';
import { AnalyticsPanel, PollPanel, QueuePanel } from './station-desk';

const REACTIONS: ReactionEmoji[] = ['❤️', '🔥', '👏', '😂', '🎉', '👍'];

interface Pending {
  id: string;
  body: string;
  failed?: string;
}

function reduce(s: StreamSnapshot, f: StreamServerFrame): StreamSnapshot {
  switch (f.type) {
    case 'stream.started':
      return { ...s, live: true, session: f.session, nowPlaying: f.nowPlaying, chat: [] };
    case 'stream.stopped':
      return { ...s, live: false, session: null };
    case 'stream.metadata':
      return { ...s, nowPlaying: f.nowPlaying };
    case 'listeners':
      return { ...s, listeners: f as ListenerCounts };
    case 'chat.message':
      return s.chat.some((m) => m.id === f.message.id) ? s : { ...s, chat: [...s.chat, f.message] };
    case 'chat.deleted':
      return { ...s, chat: s.chat.filter((m) => m.id !== f.messageId) };
    case 'moderation':
      return { ...s, you: { ...s.you, muted: f.action === 'mute', mutedUntil: f.until } };
    default:
      return s;
  }
}

export function StationPage(props: { id: string }) {
  const session = useSession();
  const me = session?.user ?? null;
  const [pending, setPending] = useState<Pending[]>([]);
  const [burst, setBurst] = useState<Partial<Record<ReactionEmoji, number>>>({});
  const burstTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  // The show desk's helpers must see the channel's first welcome: made with the channel.
  const desk = useRef<ReturnType<typeof stationDesk> | null>(null);
  const { channel, state } = useChannel<StreamServerFrame, StreamSnapshot>(
    (c) => {
      const station = c.station(props.id);
      desk.current = stationDesk(c, props.id, station);
      return station;
    },
    [props.id, me?.id ?? null],
    (frame) => {
      if (frame.type === 'chat.message' && frame.message.user.id === me?.id) {
        // Our own message arrived: it replaces the oldest optimistic copy with the same text.
        setPending((p) => {
          const i = p.findIndex((x) => x.body === frame.message.body && !x.failed);
          return i < 0 ? p : [...p.slice(0, i), ...p.slice(i + 1)];
        });
      }
      if (frame.type === 'reactions') {
        setBurst(frame.counts);
        clearTimeout(burstTimer.current);
        burstTimer.current = setTimeout(() => setBurst({}), 4000);
      }
    },
  );
  const snap = useChannelState(channel, (s) => s, reduce);
  const terminal = channel?.terminal;

  if (terminal) {
    return <ErrorBox error={new Error(terminal.reason || 'You cannot open this station.')} />;
  }
  if (!snap) return <Loading label="Tuning in…" />;
  const { station, live, nowPlaying, listeners, you } = snap;

  const send = async (body: string) => {
    if (!channel) return;
    const id = newKey();
    setPending((p) => [...p, { id, body }]);
    try {
      await channel.request({ type: 'chat.send', id, body });
      setPending((p) => p.filter((x) => x.id !== id));
    } catch (err) {
      setPending((p) => p.map((x) => (x.id === id ? { ...x, failed: describe(err) } : x)));
    }
  };

  return (
    <article className="station">
      <header className="station-head">
        <div>
          <h1>{station.name}</h1>
          <p className="muted">{station.genre ?? ''}</p>
        </div>
        <div className="station-status">
          <LiveBadge live={live} />
          <p>
            <strong data-testid="listener-count">{listeners.listeners}</strong> listening
            <span className="muted"> · peak {listeners.peak}</span>
          </p>
          {state !== 'open' && <p className="muted">({state})</p>}
          {me && <Favourite stationId={station.id} />}
        </div>
      </header>
      <section className="now" aria-label="Now playing">
        <h2>Now playing</h2>
        {live && nowPlaying ? (
          <>
            <p className="track" data-testid="now-playing">
              {track(nowPlaying)}
            </p>
            <p className="muted">
              {nowPlaying.showTitle}
              {nowPlaying.hostName ? ` with ${nowPlaying.hostName}` : ''}
            </p>
          </>
        ) : (
          <Empty>Off air. This page updates when the station goes live.</Empty>
        )}
      </section>
      {you.canManage && channel && <OwnerPanel live={live} channel={channel} />}
      {desk.current && (
        <QueuePanel queue={desk.current.queue} canManage={you.canManage} live={live} />
      )}
      {desk.current && (
        <PollPanel poll={desk.current.poll} canManage={you.canManage} signedIn={!!me} />
      )}
      {you.canManage && channel && <AnalyticsPanel channel={channel} />}
      <section aria-label="Reactions" className="reactions">
        {REACTIONS.map((emoji) => (
          <button
            key={emoji}
            type="button"
            disabled={!me || !live}
            aria-label={`React ${emoji}`}
            onClick={() => channel?.send({ type: 'reaction', emoji })}
          >
            {emoji} {burst[emoji] ? <small>{burst[emoji]}</small> : null}
          </button>
        ))}
      </section>
      <Chat
        messages={snap.chat}
        pending={pending}
        canWrite={!!me && !you.muted}
        muted={you.muted}
        canModerate={you.canManage}
        myId={me?.id ?? null}
        onSend={send}
        onRetry={(p) => {
          setPending((all) => all.filter((x) => x.id !== p.id));
          void send(p.body);
        }}
        onDelete={(m) => channel?.request({ type: 'chat.delete', messageId: m.id })}
        onModerate={(m, action) =>
          channel?.request({ type: 'chat.moderate', userId: m.user.id, action })
        }
      />
    </article>
  );
}

function Chat(props: {
  messages: ChatMessage[];
  pending: Pending[];
  canWrite: boolean;
  muted: boolean;
  canModerate: boolean;
  myId: string | null;
  onSend: (body: string) => void;
  onRetry: (p: Pending) => void;
  onDelete: (m: ChatMessage) => void;
  onModerate: (m: ChatMessage, action: 'mute' | 'ban') => void;
}) {
  const [draft, setDraft] = useState('');
  const list = useRef<HTMLOListElement>(null);
  const count = props.messages.length + props.pending.length;
  const presence = usePresence(props.messages.map((m) => m.user.id));
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll when the count changes
  useEffect(() => {
    list.current?.scrollTo({ top: list.current.scrollHeight });
  }, [count]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const body = draft.trim();
    if (!body) return;
    props.onSend(body);
    setDraft('');
  };
  return (
    <section className="chat" aria-label="Chat">
      <h2>Chat</h2>
      {count === 0 ? (
        <Empty>No messages yet. Say hello!</Empty>
      ) : (
        <ol className="messages" ref={list} data-testid="chat" aria-live="polite">
          {props.messages.map((m) => (
            <li key={m.id} data-testid="chat-message">
              <OnlineDot online={presence[m.user.id]?.online} name={m.user.name} />
              <strong>{m.user.name}</strong> <span className="body">{m.body}</span>
              {props.canModerate && m.user.id !== props.myId && (
                <span className="mod">
                  <button type="button" onClick={() => props.onDelete(m)}>
                    Delete
                  </button>
                  <button type="button" onClick={() => props.onModerate(m, 'mute')}>
                    Mute {m.user.name}
                  </button>
                  <button type="button" onClick={() => props.onModerate(m, 'ban')}>
                    Ban {m.user.name}
                  </button>
                </span>
              )}
            </li>
          ))}
          {props.pending.map((p) => (
            <li key={p.id} className="pending" data-testid="chat-pending">
              <strong>You</strong> <span className="body">{p.body}</span>{' '}
              {p.failed ? (
                <>
                  <span className="form-error">not sent: {p.failed}</span>{' '}
                  <button type="button" onClick={() => props.onRetry(p)}>
                    Retry
                  </button>
                </>
              ) : (
                <small className="muted">sending…</small>
              )}
            </li>
          ))}
        </ol>
      )}
      {props.canWrite ? (
        <form onSubmit={submit} className="inline">
          <label className="sr-only" htmlFor="chat-input">
            Message
          </label>
          <input
            id="chat-input"
            value={draft}
            maxLength={500}
            onChange={(e) => setDraft(e.target.value)}
            placeholder="Write a message"
            autoComplete="off"
          />
          <button type="submit">Send</button>
        </form>
      ) : (
        <p className="muted">{props.muted ? 'You are muted here.' : 'Sign in to chat.'}</p>
      )}
    </section>
  );
}

function Favourite(props: { stationId: string }) {
  const info = useApi(
    () =>
      client.request<{ station: { favourited: boolean; favourites: number } }>(
        'GET',
        `/api/stations/${props.stationId}`,
      ),
    [props.stationId],
  );
  const [busy, setBusy] = useState(false);
  const fav = info.data?.station.favourited ?? false;
  const toggle = async () => {
    setBusy(true);
    try {
      const res = await client.request<{ favourited: boolean; favourites: number }>(
        fav ? 'DELETE' : 'PUT',
        `/api/stations/${props.stationId}/favourite`,
      );
      if (info.data) info.setData({ station: { ...info.data.station, ...res } });
    } finally {
      setBusy(false);
    }
  };
  return (
    <button type="button" aria-pressed={fav} disabled={busy || info.loading} onClick={toggle}>
      {fav ? '★ Favourite' : '☆ Favourite'}
    </button>
  );
}

function OwnerPanel(props: { live: boolean; channel: Channel<StreamServerFrame, StreamSnapshot> }) {
  const act = useAction();
  const run = (frame: { type: string; [k: string]: unknown }) =>
    act.run(() => props.channel.request(frame));
  const fields = (form: FormData, names: string[]) =>
    Object.fromEntries(
      names.flatMap((n) => {
        const v = String(form.get(n) ?? '').trim();
        return v ? [[n, v]] : [];
      }),
    );
  const goLive = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    await run({ type: 'stream.start', ...fields(f, ['showTitle', 'trackName', 'artistName']) });
  };
  const changeTrack = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    if (await run({ type: 'stream.metadata', ...fields(f, ['trackName', 'artistName']) })) {
      form.reset();
    }
  };
  return (
    <section className="panel" aria-label="Broadcast controls">
      <h2>Broadcast</h2>
      {props.live ? (
        <>
          <form onSubmit={changeTrack} className="inline wrap">
            <label>
              Track
              <input name="trackName" required maxLength={200} />
            </label>
            <label>
              Artist
              <input name="artistName" maxLength={200} />
            </label>
            <button type="submit" disabled={act.busy}>
              Update now playing
            </button>
          </form>
          <button
            type="button"
            className="danger"
            disabled={act.busy}
            onClick={() => run({ type: 'stream.stop' })}
          >
            Stop broadcast
          </button>
        </>
      ) : (
        <form onSubmit={goLive} className="inline wrap">
          <label>
            Show title
            <input name="showTitle" required maxLength={120} />
          </label>
          <label>
            First track
            <input name="trackName" maxLength={200} />
          </label>
          <label>
            Artist
            <input name="artistName" maxLength={200} />
          </label>
          <button type="submit" className="primary" disabled={act.busy}>
            Go Live
          </button>
        </form>
      )}
      {act.shown}
    </section>
  );
}
