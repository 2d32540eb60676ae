// A story's live document over its Wavecast channel: a Yjs provider. It keeps a Y.Doc in step
// with the story's channel (resuming like every channel, and answering the Yjs sync handshake
// after a longer absence), sends the local edits of a co-author in small batches, and carries
// awareness (cursors, selections) for editor bindings. docs/stories.md ("The SDK").
import {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from 'y-protocols/awareness';
import * as Y from 'yjs';
import type { PublicUser, WelcomeFrame } from '../../worker/protocol/core';
import type { StoryAccess, StoryServerFrame, StorySnapshot } from '../../worker/protocol/stories';
import {
  BODY_TEXT,
  fromBase64,
  MAX_UPDATE_BYTES,
  toBase64,
} from '../../worker/protocol/story-wire';
import { type Channel, type ChannelOptions, RequestError } from './channel';
import type { WavecastClient } from './index';

export interface StoryDocumentOptions extends Partial<ChannelOptions> {
  /** Local edits are gathered for this long and sent as one update (keeps under the rate limit). */
  flushMs?: number;
  /** Awareness changes (cursor moves) are sent at most this often. */
  awarenessMs?: number;
}

type ProviderEvent = 'synced' | 'error' | 'story';

/** Everything `update`'s holder has that the holder of `stateVector` lacks is an empty update. */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.byteLength <= 2;
}

export class StoryDocument {
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  readonly channel: Channel<StoryServerFrame, StorySnapshot>;
  /** The story's record as the channel last told it. */
  story: StoryAccess | null = null;
  user: PublicUser | null = null;
  /** True once this copy holds everything the channel had when it (re)connected. */
  synced = false;
  readonly #options: Required<Pick<StoryDocumentOptions, 'flushMs' | 'awarenessMs'>>;
  readonly #listeners = new Map<ProviderEvent, Set<(value: unknown) => void>>();
  #outgoing: Uint8Array[] = [];
  #open = false;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #awarenessTimer: ReturnType<typeof setTimeout> | null = null;
  /** Replayed events still to come after a resuming welcome; synced once they are in. */
  #replaying = 0;
  readonly #onDocUpdate = (update: Uint8Array, origin: unknown) => {
    if (origin === this) return;
    this.#outgoing.push(update);
    this.#scheduleFlush();
  };
  readonly #onAwareness = (_: unknown, origin: unknown) => {
    if (origin === 'local') this.#scheduleAwareness();
  };

  constructor(
    client: WavecastClient,
    readonly storyId: string,
    doc: Y.Doc = new Y.Doc(),
    options: StoryDocumentOptions = {},
  ) {
    this.doc = doc;
    this.awareness = new Awareness(doc);
    this.#options = { flushMs: options.flushMs ?? 100, awarenessMs: options.awarenessMs ?? 250 };
    this.channel = client.channel<StoryServerFrame, StorySnapshot>(
      `/ws/stories/${encodeURIComponent(storyId)}`,
      options,
    );
    this.channel.on('welcome', (w) => this.#welcome(w as unknown as WelcomeFrame<StorySnapshot>));
    this.channel.on('doc.update', (e) => {
      this.#apply(e.update);
      this.#replayed();
    });
    this.channel.on('doc.synced', (f) => {
      this.#apply(f.update);
      this.#setSynced();
    });
    this.channel.on('doc.awareness', (f) => {
      applyAwarenessUpdate(this.awareness, fromBase64(f.update), this);
    });
    this.channel.on('story.changed', (e) => {
      this.#setStory(e.story);
      this.#replayed();
    });
    this.channel.socket.addEventListener('close', () => {
      this.#open = false;
      this.synced = false;
    });
    doc.on('update', this.#onDocUpdate);
    this.awareness.on('update', this.#onAwareness);
  }

  /** The story's readable text. */
  get text(): Y.Text {
    return this.doc.getText(BODY_TEXT);
  }

  /** May this user edit (owner or co-author)? Readers watch, read-only. */
  get canEdit(): boolean {
    const { story, user } = this;
    return !!story && !!user && (user.id === story.ownerId || story.coauthorIds.includes(user.id));
  }

  on(event: 'synced', listener: () => void): () => void;
  on(event: 'error', listener: (err: Error) => void): () => void;
  on(event: 'story', listener: (story: StoryAccess) => void): () => void;
  on(event: ProviderEvent, listener: (value: never) => void): () => void {
    const set = this.#listeners.get(event) ?? new Set();
    set.add(listener as (value: unknown) => void);
    this.#listeners.set(event, set);
    return () => set.delete(listener as (value: unknown) => void);
  }

  /** Resolves once this copy holds everything the channel had when it connected. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.on('synced', () => {
        off();
        resolve();
      });
    });
  }

  /** Local edits not yet sent (they go out once connected). */
  get unsent(): number {
    return this.#outgoing.length;
  }

  /** Drops the connection (going offline); local edits keep accumulating. */
  disconnect(): void {
    this.channel.socket.close(1000, 'offline');
  }

  /** Reconnects: resumes from the last position and sends what the channel lacks. */
  connect(): void {
    this.channel.socket.reconnect();
  }

  destroy(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    if (this.#awarenessTimer) clearTimeout(this.#awarenessTimer);
    removeAwarenessStates(this.awareness, [this.doc.clientID], 'destroy');
    this.doc.off('update', this.#onDocUpdate);
    this.awareness.off('update', this.#onAwareness);
    this.awareness.destroy();
    this.channel.close();
  }

  #welcome(welcome: WelcomeFrame<StorySnapshot>): void {
    const { snapshot } = welcome;
    this.user = welcome.user;
    this.#setStory(snapshot.story);
    if (snapshot.awareness)
      applyAwarenessUpdate(this.awareness, fromBase64(snapshot.awareness), this);
    this.#open = true;
    // A co-author pushes whatever the channel lacks: edits made offline, and any whose request
    // was lost. One diff replaces the queue when it fits in one update.
    if (this.canEdit) {
      const diff = Y.encodeStateAsUpdate(this.doc, fromBase64(snapshot.stateVector));
      if (isEmptyUpdate(diff)) this.#outgoing = [];
      else if (diff.byteLength <= MAX_UPDATE_BYTES) this.#outgoing = [diff];
      this.#scheduleFlush();
      if (this.awareness.getLocalState() !== null) this.#scheduleAwareness();
    }
    if (welcome.recovery.recovered) {
      // The missed events follow this frame, in order: synced once the last one is applied.
      this.#replaying = welcome.recovery.missed;
      if (this.#replaying === 0) this.#setSynced();
    } else if (snapshot.document) {
      this.#apply(snapshot.document);
      this.#setSynced();
    } else {
      this.channel.send({ type: 'doc.sync', stateVector: toBase64(Y.encodeStateVector(this.doc)) });
    }
  }

  #apply(update: string): void {
    Y.applyUpdate(this.doc, fromBase64(update), this);
  }

  #replayed(): void {
    if (this.#replaying === 0) return;
    this.#replaying -= 1;
    if (this.#replaying === 0) this.#setSynced();
  }

  #setSynced(): void {
    this.synced = true;
    this.#emit('synced', undefined);
  }

  #setStory(story: StoryAccess): void {
    this.story = story;
    this.#emit('story', story);
  }

  #scheduleFlush(): void {
    if (this.#flushTimer || !this.#open) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.#flush();
    }, this.#options.flushMs);
  }

  /** Sends the queued edits as few updates as the size limit allows. */
  #flush(): void {
    // A reader's local edits never reach the channel (it would refuse them).
    if (this.story && !this.canEdit) this.#outgoing = [];
    if (!this.#open || !this.canEdit || this.#outgoing.length === 0) return;
    const batches: Uint8Array[] = [];
    let current: Uint8Array[] = [];
    let bytes = 0;
    for (const update of this.#outgoing) {
      if (bytes + update.byteLength > MAX_UPDATE_BYTES && current.length > 0) {
        batches.push(Y.mergeUpdates(current));
        current = [];
        bytes = 0;
      }
      current.push(update);
      bytes += update.byteLength;
    }
    if (current.length > 0) batches.push(Y.mergeUpdates(current));
    this.#outgoing = [];
    for (const update of batches) {
      this.channel.request({ type: 'doc.update', update: toBase64(update) }).catch((err: Error) => {
        // Lost in transit: send it again (the channel applies an update once). Refused: report.
        if (err instanceof RequestError && (err.code === 'timeout' || err.code === 'closed')) {
          if (err.code === 'timeout') {
            this.#outgoing.push(update);
            this.#scheduleFlush();
          }
          return;
        }
        this.#emit('error', err);
      });
    }
  }

  #scheduleAwareness(): void {
    if (this.#awarenessTimer || !this.#open) return;
    this.#awarenessTimer = setTimeout(() => {
      this.#awarenessTimer = null;
      if (!this.#open || !this.canEdit) return;
      const update = encodeAwarenessUpdate(this.awareness, [this.doc.clientID]);
      this.channel.send({ type: 'doc.awareness', update: toBase64(update) });
    }, this.#options.awarenessMs);
  }

  #emit(event: ProviderEvent, value: unknown): void {
    for (const listener of this.#listeners.get(event) ?? []) listener(value);
  }
}
