// Stories: the list, a story's page (the live text, the co-author editor with the other authors'
// cursors, live comments) and play sessions with live votes and the countdown.
import type { PlaySessionInfo, StoryGraph, StoryView } from '@wavecast/sdk';
import { PlaySession, StoriesApi, StoryDocument } from '@wavecast/sdk/stories';
import { type FormEvent, useEffect, useMemo, useRef, useState } from 'react';
import * as Y from 'yjs';
import { Link, navigate } from '../router';
import { client, type Session, useSession } from '../session';
import { describe, Empty, ErrorBox, Loading, useApi } from '../ui/states';
import { SignInFirst } from './auth';
import { Comments } from './comments';

const stories = new StoriesApi(client);

const SAMPLE_GRAPH: StoryGraph = {
  start: 'gate',
  passages: [
    {
      id: 'gate',
      text: 'You stand at the gate of an old radio tower. Which way?',
      choices: [
        { id: 'stairs', label: 'Climb the stairs', to: 'top' },
        { id: 'cellar', label: 'Go down to the cellar', to: 'cellar' },
      ],
    },
    { id: 'top', text: 'The city hums below. The end.', choices: [] },
    { id: 'cellar', text: 'Old tapes, still warm. The end.', choices: [] },
  ],
};

export function StoriesList() {
  const session = useSession();
  const published = useApi(() => stories.list({ limit: 50 }), [session?.user.id]);
  const mine = useApi(
    () => (session ? stories.mine() : Promise.resolve({ stories: [] as StoryView[] })),
    [session?.user.id],
  );
  const [error, setError] = useState<string | null>(null);
  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      const { story } = await stories.create({
        title: String(f.get('title')),
        body: String(f.get('body') ?? ''),
        graph: f.get('graph') ? SAMPLE_GRAPH : null,
      });
      navigate(`/stories/${story.id}`);
    } catch (err) {
      setError(describe(err));
    }
  };
  const list = (items: StoryView[] | undefined, empty: string) =>
    !items || items.length === 0 ? (
      <Empty>{empty}</Empty>
    ) : (
      <ul className="list">
        {items.map((s) => (
          <li key={s.id}>
            <Link to={`/stories/${s.id}`}>{s.title}</Link>{' '}
            {!s.published && <span className="badge">Draft</span>}
          </li>
        ))}
      </ul>
    );
  return (
    <>
      <h1>Stories</h1>
      <h2>Published</h2>
      {published.loading ? (
        <Loading />
      ) : published.error ? (
        <ErrorBox error={published.error} onRetry={published.reload} />
      ) : (
        list(published.data?.stories, 'Nothing published yet.')
      )}
      {session && (
        <>
          <h2>Yours</h2>
          {mine.loading ? <Loading /> : list(mine.data?.stories, 'You have no stories yet.')}
          <h2>Write a story</h2>
          <form onSubmit={create} className="stack narrow">
            <label>
              Title
              <input name="title" required maxLength={200} />
            </label>
            <label>
              Opening text
              <textarea name="body" rows={3} />
            </label>
            <label className="choice">
              <input type="checkbox" name="graph" /> Start with a choose-your-path outline (for play
              sessions)
            </label>
            {error && (
              <p className="form-error" role="alert">
                {error}
              </p>
            )}
            <button type="submit" className="primary">
              Create story
            </button>
          </form>
        </>
      )}
    </>
  );
}

export function StoryPage(props: { id: string }) {
  const session = useSession();
  const view = useApi(() => stories.get(props.id), [props.id, session?.user.id]);
  if (view.loading) return <Loading label="Opening the story…" />;
  if (view.error || !view.data) return <ErrorBox error={view.error} onRetry={view.reload} />;
  const story = view.data.story;
  const isOwner = session?.user.id === story.ownerId;
  return (
    <article className="story">
      <h1>{story.title}</h1>
      <p className="muted">{story.published ? 'Published' : 'Draft'}</p>
      <LiveText storyId={story.id} session={session} />
      {isOwner && <OwnerTools story={story} onChange={view.reload} />}
      {story.graph && story.published && session && <PlayLauncher storyId={story.id} />}
      <Comments itemId={`story-${story.id}`} />
    </article>
  );
}

const COLORS = ['#b4005a', '#0057b8', '#1b7a00', '#8a4b00', '#6a00b8', '#00767a'];

interface Cursor {
  name: string;
  color: string;
  index: number;
}

/** The story's text from its live document: an editor for co-authors, read-only otherwise. */
function LiveText(props: { storyId: string; session: Session | null }) {
  const [text, setText] = useState<string | null>(null);
  const [canEdit, setCanEdit] = useState(false);
  const [cursors, setCursors] = useState<Cursor[]>([]);
  const live = useRef<StoryDocument | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const name = props.session?.user.name ?? 'Reader';
  useEffect(() => {
    const doc = new StoryDocument(client, props.storyId, new Y.Doc());
    live.current = doc;
    const color = COLORS[doc.doc.clientID % COLORS.length] ?? '#b4005a';
    doc.awareness.setLocalStateField('user', { name, color });
    const refresh = () => setText(doc.text.toString());
    const readCursors = () => {
      const found: Cursor[] = [];
      for (const [clientId, state] of doc.awareness.getStates()) {
        if (clientId === doc.doc.clientID) continue;
        const s = state as { user?: { name: string; color: string }; cursor?: unknown };
        if (!s.user || !s.cursor) continue;
        const abs = Y.createAbsolutePositionFromRelativePosition(
          Y.createRelativePositionFromJSON(s.cursor),
          doc.doc,
        );
        if (abs) found.push({ name: s.user.name, color: s.user.color, index: abs.index });
      }
      setCursors(found);
    };
    doc.text.observe(() => {
      refresh();
      readCursors();
    });
    doc.awareness.on('change', readCursors);
    const offSynced = doc.on('synced', () => {
      refresh();
      setCanEdit(doc.canEdit);
    });
    const offStory = doc.on('story', () => setCanEdit(doc.canEdit));
    return () => {
      offSynced();
      offStory();
      doc.destroy();
      live.current = null;
    };
  }, [props.storyId, name]);

  // Keep the caret where it was when others' edits arrive.
  const applied = useRef<string | null>(null);
  useEffect(() => {
    const el = area.current;
    if (!el || text === null || el.value === text) return;
    const doc = live.current;
    const start = el.selectionStart;
    const rel = doc ? Y.createRelativePositionFromTypeIndex(doc.text, start) : null;
    el.value = text;
    applied.current = text;
    if (doc && rel && document.activeElement === el) {
      const abs = Y.createAbsolutePositionFromRelativePosition(rel, doc.doc);
      if (abs) el.setSelectionRange(abs.index, abs.index);
    }
  }, [text]);

  const publishCursor = () => {
    const doc = live.current;
    const el = area.current;
    if (!doc || !el) return;
    const rel = Y.createRelativePositionFromTypeIndex(doc.text, el.selectionStart);
    doc.awareness.setLocalStateField('cursor', Y.relativePositionToJSON(rel));
  };

  const onInput = () => {
    const doc = live.current;
    const el = area.current;
    if (!doc || !el) return;
    const before = doc.text.toString();
    const after = el.value;
    let start = 0;
    while (start < before.length && start < after.length && before[start] === after[start]) start++;
    let endBefore = before.length;
    let endAfter = after.length;
    while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
      endBefore--;
      endAfter--;
    }
    doc.doc.transact(() => {
      if (endBefore > start) doc.text.delete(start, endBefore - start);
      if (endAfter > start) doc.text.insert(start, after.slice(start, endAfter));
    }, 'local');
    publishCursor();
  };

  if (text === null) return <Loading label="Loading the text…" />;
  if (!canEdit) {
    return (
      <section className="story-text" aria-label="Story">
        <p data-testid="story-text" className="prose">
          {text || <span className="muted">(empty)</span>}
        </p>
      </section>
    );
  }
  return (
    <section className="editor" aria-label="Editor">
      <label htmlFor="story-editor">Story text (you are editing live with your co-authors)</label>
      <textarea
        id="story-editor"
        ref={area}
        defaultValue={text}
        rows={10}
        data-testid="story-editor"
        onInput={onInput}
        onSelect={publishCursor}
        onKeyUp={publishCursor}
        onClick={publishCursor}
      />
      <div className="cursors" data-testid="cursors" aria-live="polite">
        {cursors.length === 0 ? (
          <span className="muted">No other author is here.</span>
        ) : (
          cursors.map((c) => (
            <span
              key={`${c.name}-${c.index}`}
              className="cursor-tag"
              style={{ borderColor: c.color }}
            >
              {c.name} at {lineCol(text, c.index)}
            </span>
          ))
        )}
      </div>
      <CursorPreview text={text} cursors={cursors} />
    </section>
  );
}

function lineCol(text: string, index: number): string {
  const lines = text.slice(0, index).split('\n');
  return `line ${lines.length}, column ${(lines.at(-1)?.length ?? 0) + 1}`;
}

/** The text with a caret where each other author is. */
function CursorPreview(props: { text: string; cursors: Cursor[] }) {
  const parts = useMemo(() => {
    const sorted = [...props.cursors].sort((a, b) => a.index - b.index);
    const out: (string | Cursor)[] = [];
    let at = 0;
    for (const c of sorted) {
      out.push(props.text.slice(at, c.index), c);
      at = c.index;
    }
    out.push(props.text.slice(at));
    return out;
  }, [props.text, props.cursors]);
  if (props.cursors.length === 0) return null;
  return (
    <div className="preview prose" aria-hidden="true">
      {parts.map((p, i) =>
        typeof p === 'string' ? (
          // biome-ignore lint/suspicious/noArrayIndexKey: fixed order within one render
          <span key={i}>{p}</span>
        ) : (
          // biome-ignore lint/suspicious/noArrayIndexKey: fixed order within one render
          <span key={i} className="caret" style={{ borderColor: p.color }}>
            <span style={{ background: p.color }}>{p.name}</span>
          </span>
        ),
      )}
    </div>
  );
}

function OwnerTools(props: { story: StoryView; onChange: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [coauthor, setCoauthor] = useState('');
  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      props.onChange();
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <section className="panel" aria-label="Story settings">
      <h2>Settings</h2>
      <div className="inline wrap">
        {props.story.published ? (
          <button type="button" onClick={() => act(() => stories.unpublish(props.story.id))}>
            Unpublish
          </button>
        ) : (
          <button
            type="button"
            className="primary"
            onClick={() => act(() => stories.publish(props.story.id))}
          >
            Publish
          </button>
        )}
      </div>
      <form
        className="inline wrap"
        onSubmit={(e) => {
          e.preventDefault();
          void act(() => stories.addCoauthor(props.story.id, coauthor.trim()));
          setCoauthor('');
        }}
      >
        <label>
          Add a co-author (user id)
          <input value={coauthor} onChange={(e) => setCoauthor(e.target.value)} required />
        </label>
        <button type="submit">Add</button>
      </form>
      <p className="muted">Co-authors: {props.story.coauthorIds.length}</p>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function PlayLauncher(props: { storyId: string }) {
  const [error, setError] = useState<string | null>(null);
  const open = async () => {
    try {
      const { session } = await stories.openSession(props.storyId, { choiceSeconds: 30 });
      navigate(`/play/${session.id}`);
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <section className="panel" aria-label="Play">
      <h2>Play together</h2>
      <button type="button" className="primary" onClick={open}>
        Open a play session
      </button>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

export function PlayPage(props: { id: string }) {
  const session = useSession();
  const [game, setGame] = useState<PlaySession | null>(null);
  const [, setTick] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [info, setInfo] = useState<PlaySessionInfo | null>(null);
  const userId = session?.user.id ?? null;
  useEffect(() => {
    if (!userId) return;
    const g = new PlaySession(client, props.id);
    setGame(g);
    const off = g.channel.on('*', () => {
      setInfo(g.info);
      setTick((t) => t + 1);
    });
    return () => {
      off();
      g.close();
    };
  }, [props.id, userId]);
  // The countdown: re-render a few times a second while a deadline runs.
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), 250);
    return () => clearInterval(timer);
  }, []);
  if (!session) return <SignInFirst what="to play" />;
  if (!game || !info) return <Loading label="Joining the session…" />;
  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(describe(err));
    }
  };
  const isHost = info.host.id === session.user.id;
  const left = game.deadline ? Math.max(0, Math.ceil((game.deadline - Date.now()) / 1000)) : null;
  return (
    <article>
      <h1>{info.title}</h1>
      <p className="muted">
        Hosted by {info.host.name} · {info.status}
      </p>
      {game.ended && (
        <p role="status" data-testid="ended">
          The session has ended after {game.ended.steps} step{game.ended.steps === 1 ? '' : 's'}.
        </p>
      )}
      {game.passage ? (
        <section aria-label="Passage" className="panel">
          <p className="prose" data-testid="passage">
            {game.passage.text}
          </p>
          {left !== null && !game.ended && (
            <p data-testid="countdown">
              <strong>{left}</strong> s left to vote
            </p>
          )}
          <ul className="choices">
            {game.passage.choices.map((c) => (
              <li key={c.id}>
                <button
                  type="button"
                  disabled={!!game.ended}
                  aria-pressed={game.myVote === c.id}
                  onClick={() => act(() => game.vote(c.id))}
                >
                  {c.label} <span data-testid={`votes-${c.id}`}>{game.tallies[c.id] ?? 0}</span>{' '}
                  votes
                </button>
              </li>
            ))}
          </ul>
        </section>
      ) : game.ended ? null : (
        <Empty>Waiting for the host to start.</Empty>
      )}
      {isHost && !game.ended && (
        <div className="inline">
          {!game.passage && (
            <button type="button" className="primary" onClick={() => act(() => game.start())}>
              Start
            </button>
          )}
          <button type="button" className="danger" onClick={() => act(() => game.end())}>
            End session
          </button>
        </div>
      )}
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}
