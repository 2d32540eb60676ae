// Stories for the in-runtime tests: records over REST, Yjs edits as the SDK would send them.
import { env } from 'cloudflare:workers';
import * as Y from 'yjs';
import {
  BODY_TEXT,
  type StoryGraph,
  type StoryView,
  toBase64,
} from '../../worker/protocol/stories';
import type { FrameQueue } from '../support/frames';
import { api, type TestUser } from './helpers';

/** Four passages, three choices deep: start → (a | b) → c → (end-good | end-bad). */
export const fourChoiceGraph: StoryGraph = {
  start: 'start',
  passages: [
    {
      id: 'start',
      text: 'You wake in a cave.',
      choices: [
        { id: 'left', label: 'Go left', to: 'a' },
        { id: 'right', label: 'Go right', to: 'b' },
      ],
    },
    {
      id: 'a',
      text: 'A river.',
      choices: [
        { id: 'swim', label: 'Swim', to: 'c' },
        { id: 'wait', label: 'Wait', to: 'c' },
      ],
    },
    {
      id: 'b',
      text: 'A wall.',
      choices: [
        { id: 'climb', label: 'Climb', to: 'c' },
        { id: 'back', label: 'Back', to: 'a' },
      ],
    },
    {
      id: 'c',
      text: 'A door.',
      choices: [
        { id: 'open', label: 'Open it', to: 'good' },
        { id: 'knock', label: 'Knock', to: 'bad' },
      ],
    },
    { id: 'good', text: 'Sunlight. The end.', choices: [] },
    { id: 'bad', text: 'Darkness. The end.', choices: [] },
  ],
};

export async function createStory(
  owner: TestUser,
  fields: { title?: string; body?: string; graph?: StoryGraph | null } = {},
): Promise<StoryView> {
  const res = await api('/api/stories', {
    method: 'POST',
    token: owner.token,
    json: {
      title: fields.title ?? 'A story',
      body: fields.body ?? '',
      graph: fields.graph ?? null,
    },
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { story: StoryView }).story;
}

export async function addCoauthor(owner: TestUser, storyId: string, userId: string) {
  const res = await api(`/api/stories/${storyId}/coauthors/${userId}`, {
    method: 'PUT',
    token: owner.token,
  });
  if (res.status !== 200)
    throw new Error(`add co-author failed: ${res.status} ${await res.text()}`);
}

export async function publish(owner: TestUser, storyId: string) {
  const res = await api(`/api/stories/${storyId}/publish`, { method: 'POST', token: owner.token });
  if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
}

export const storyRoom = (storyId: string) =>
  env.STORY_ROOM.get(env.STORY_ROOM.idFromName(`story:${storyId}`));

export const playRoom = (sessionId: string) =>
  env.PLAY_ROOM.get(env.PLAY_ROOM.idFromName(`play:${sessionId}`));

/** A local replica: edits made on it come back as the update a client would send. */
export class Replica {
  readonly doc = new Y.Doc();

  get text(): string {
    return this.doc.getText(BODY_TEXT).toString();
  }

  /** Applies an edit and returns its update (base64), as a client sends it. */
  edit(fn: (text: Y.Text) => void): string {
    let update: Uint8Array | null = null;
    const capture = (u: Uint8Array) => {
      update = update ? Y.mergeUpdates([update, u]) : u;
    };
    this.doc.on('update', capture);
    fn(this.doc.getText(BODY_TEXT));
    this.doc.off('update', capture);
    if (!update) throw new Error('the edit changed nothing');
    return toBase64(update);
  }

  apply(update: string): void {
    Y.applyUpdate(
      this.doc,
      Uint8Array.from(atob(update), (ch) => ch.charCodeAt(0)),
    );
  }

  stateVector(): string {
    return toBase64(Y.encodeStateVector(this.doc));
  }
}

/** Sends an update and waits for its answer. */
export async function sendUpdate(socket: FrameQueue, id: string, update: string) {
  socket.send({ type: 'doc.update', id, update });
  return socket.next<{ type: string; code?: string; seq?: number; result?: { applied: boolean } }>(
    (f) => (f.type === 'ack' || f.type === 'error') && f.id === id,
  );
}
