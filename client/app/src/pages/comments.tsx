// Live comments on one item: new comments as they are posted, "… is typing", and who is here.
import type {
  Comment,
  CommentRoomSnapshot,
  CommentServerFrame,
  PresenceMember,
  PublicUser,
} from '@wavecast/sdk';
import { useChannel, useChannelState } from '@wavecast/sdk/react';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { OnlineDot, usePresence } from '../platform';
import { newKey, useSession } from '../session';
import { describe, Empty, Loading } from '../ui/states';

interface Room {
  comments: Comment[];
  members: PresenceMember[];
  users: number;
}

function reduce(s: Room, f: CommentServerFrame): Room {
  switch (f.type) {
    case 'comment.created':
      return s.comments.some((c) => c.id === f.comment.id)
        ? s
        : { ...s, comments: [...s.comments, f.comment] };
    case 'comment.deleted':
      return { ...s, comments: s.comments.filter((c) => c.id !== f.commentId) };
    case 'presence.joined':
      return {
        ...s,
        users: f.users,
        members: [
          ...s.members.filter((m) => m.user.id !== f.user.id),
          { user: f.user, connections: 1 },
        ],
      };
    case 'presence.left':
      return { ...s, users: f.users, members: s.members.filter((m) => m.user.id !== f.user.id) };
    case 'presence.counts':
      return { ...s, users: f.users };
    default:
      return s;
  }
}

export function typingText(names: string[]): string {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

export function Comments(props: { itemId: string }) {
  const session = useSession();
  const me = session?.user ?? null;
  const [typing, setTyping] = useState<Map<string, { user: PublicUser; until: number }>>(new Map());
  const { channel } = useChannel<CommentServerFrame, CommentRoomSnapshot>(
    (c) => c.commentRoom(props.itemId),
    [props.itemId, me?.id ?? null],
    (frame) => {
      if (frame.type === 'welcome') {
        const snap = frame.snapshot as CommentRoomSnapshot;
        const until = Date.now() + 6000;
        setTyping(new Map(snap.typing.map((u) => [u.id, { user: u, until }])));
      } else if (frame.type === 'typing') {
        setTyping((t) => {
          const next = new Map(t);
          if (frame.isTyping) {
            next.set(frame.user.id, { user: frame.user, until: Date.now() + frame.expiresInMs });
          } else next.delete(frame.user.id);
          return next;
        });
      } else if (frame.type === 'comment.created' || frame.type === 'presence.left') {
        const who = frame.type === 'comment.created' ? frame.comment.user.id : frame.user.id;
        setTyping((t) => {
          if (!t.has(who)) return t;
          const next = new Map(t);
          next.delete(who);
          return next;
        });
      }
    },
  );
  const room = useChannelState<CommentServerFrame, CommentRoomSnapshot, Room>(
    channel,
    (s) => ({ comments: s.recent, members: s.presence.members ?? [], users: s.presence.users }),
    reduce,
  );
  // Typing entries expire on their own (the server sends no "stopped" when a tab just goes away).
  useEffect(() => {
    if (typing.size === 0) return;
    const timer = setInterval(() => {
      const now = Date.now();
      setTyping((t) => {
        const next = new Map([...t].filter(([, v]) => v.until > now));
        return next.size === t.size ? t : next;
      });
    }, 500);
    return () => clearInterval(timer);
  }, [typing.size]);

  const [draft, setDraft] = useState('');
  const [error, setError] = useState<string | null>(null);
  const lastTyping = useRef(0);
  const presence = usePresence([
    ...(room?.members.map((m) => m.user.id) ?? []),
    ...(room?.comments.map((c) => c.user.id) ?? []),
  ]);
  if (!room) return <Loading label="Loading comments…" />;

  const onInput = (value: string) => {
    setDraft(value);
    const now = Date.now();
    if (channel && value && now - lastTyping.current > 2000) {
      lastTyping.current = now;
      channel.send({ type: 'typing', isTyping: true });
    }
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = draft.trim();
    if (!body || !channel) return;
    setDraft('');
    setError(null);
    lastTyping.current = 0;
    channel.send({ type: 'typing', isTyping: false });
    try {
      await channel.request({ type: 'comment.create', id: newKey(), body });
    } catch (err) {
      setError(describe(err));
      setDraft(body);
    }
  };
  const typers = [...typing.values()].filter((t) => t.user.id !== me?.id).map((t) => t.user.name);
  return (
    <section className="comments" aria-label="Comments">
      <h2>Comments</h2>
      <p className="muted" data-testid="here">
        Here now: {room.members.map((m) => m.user.name).join(', ') || 'nobody signed in'} (
        {room.users})
      </p>
      {room.comments.length === 0 ? (
        <Empty>No comments yet.</Empty>
      ) : (
        <ol className="messages" data-testid="comments">
          {room.comments.map((c) => (
            <li key={c.id} data-testid="comment">
              <OnlineDot online={presence[c.user.id]?.online} name={c.user.name} />
              <strong>{c.user.name}</strong> <span className="body">{c.body}</span>
            </li>
          ))}
        </ol>
      )}
      <p className="typing" aria-live="polite" data-testid="typing">
        {typingText(typers)}
      </p>
      {me ? (
        <form onSubmit={submit} className="inline">
          <label className="sr-only" htmlFor={`comment-${props.itemId}`}>
            Comment
          </label>
          <input
            id={`comment-${props.itemId}`}
            value={draft}
            maxLength={2000}
            onChange={(e) => onInput(e.target.value)}
            placeholder="Add a comment"
            autoComplete="off"
          />
          <button type="submit">Post</button>
        </form>
      ) : (
        <p className="muted">Sign in to comment.</p>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
