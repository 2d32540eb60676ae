// A story's channel: its live Yjs document, edited by its co-authors and watched by its readers.
// Updates are committed one by one (stored beside the compacted base, sequenced, replayed on
// resume); cursors are passed on and forgotten; the readable body reaches D1 through the outbox
// once edits settle, and on publish. docs/stories.md.
import { ChannelError } from '../../channel/errors';
import {
  type Call,
  ChannelRoom,
  type Connection,
  type Handled,
  type Handlers,
} from '../../channel/room';
import { bodyWrites, findStory } from '../../db/stories';
import { CloseCode, ErrorCode } from '../../protocol/core';
import {
  type DocUpdateEvent,
  fromBase64,
  type LiveDocument,
  type StoryAccess,
  type StoryChangedEvent,
  StoryErrorCode,
  type StorySnapshot,
  type storyFrames,
  toBase64,
} from '../../protocol/stories';
import { AwarenessRelay } from './awareness';
import { StoryDocument } from './document';
import { canEdit, canRead, story } from './kind';

/** The body is saved to D1 once edits pause this long… */
export const BODY_SETTLE_MS = 2000;
/** …or, while they never pause, at least this often. */
export const BODY_MAX_WAIT_MS = 10_000;
const BODY_TASK = 'body-save';

type Unsequenced<T> = Omit<T, 'seq'>;

export class StoryRoom extends ChannelRoom<typeof storyFrames, StorySnapshot> {
  readonly #document: StoryDocument;
  readonly #awareness = new AwarenessRelay();
  #accessCache: StoryAccess | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    // Editors send an update and a cursor per keystroke batch: a roomier bucket than chat's.
    super(ctx, env, story, { rate: { capacity: 60, refillPerSecond: 30, maxWarnings: 5 } });
    this.#document = new StoryDocument(this.sql, this.kit.transaction);
    this.kit.outbox.register('story.body', bodyWrites);
    this.kit.task(BODY_TASK, () => {
      this.#saveBody();
    });
  }

  /** Once per story: who may read and write, and the document's first text, from D1. */
  protected override async load(): Promise<void> {
    if (this.#access() && this.log.getMeta('doc.seeded')) return;
    const found = await findStory(this.env.DB, this.channelId);
    if (!found) return;
    if (!this.#access()) this.#setAccess(found.access);
    if (!this.log.getMeta('doc.seeded')) {
      // Only into an empty store: a seed that was stored before a crash is not written twice.
      if (this.#document.stored().bytes === 0) this.#document.seed(found.view.body);
      this.log.setMeta('doc.seeded', '1');
    }
  }

  protected override mustExist(): void {
    if (!this.#access()) throw new ChannelError(StoryErrorCode.storyNotFound, 'no such story', 404);
  }

  protected override authorize(user: Connection['user']): void {
    const access = this.#access();
    if (!access || !canRead(access, user)) {
      throw new ChannelError(StoryErrorCode.storyNotFound, 'no such story', 404);
    }
  }

  protected snapshot(conn: Connection): StorySnapshot {
    const access = this.#requireAccess();
    const awareness = this.#awareness.current();
    return {
      story: access,
      canEdit: canEdit(access, conn.user),
      stateVector: toBase64(this.#document.stateVector()),
      ...(conn.user ? {} : { document: toBase64(this.#document.state()) }),
      awareness: awareness ? toBase64(awareness) : null,
      presence: this.presenceSnapshot(),
    };
  }

  protected readonly handlers: Handlers<typeof storyFrames> = {
    'doc.update': (call, frame) => this.#update(call, frame.update),
    'doc.sync': (call, frame) => {
      this.#mayRead(call);
      const missing = this.#document.missing(fromBase64(frame.stateVector));
      if (call.conn) this.sendTo(call.conn, { type: 'doc.synced', update: toBase64(missing) });
      return {};
    },
    'doc.awareness': (call, frame) => {
      this.#mayEdit(call);
      const conn = call.conn;
      if (!conn) return {};
      this.#awareness.receive(conn.cid, fromBase64(frame.update));
      this.broadcast({ type: 'doc.awareness', update: frame.update }, (c) => c !== conn);
      return {};
    },
  };

  protected override onLeave(conn: Connection): void {
    const removal = this.#awareness.leave(conn.cid);
    if (removal) this.broadcast({ type: 'doc.awareness', update: toBase64(removal) });
  }

  // ---- RPC for the routes ------------------------------------------------------------

  /** The route changed the story's record: take the new access rules, tell the sockets. */
  syncStory(access: StoryAccess) {
    return this.rpc(() => {
      const known = this.#access();
      if (known && known.version >= access.version) return { changed: false };
      this.commit(null, (tx) => {
        this.#setAccess(access);
        tx.publish<Unsequenced<StoryChangedEvent>>({ type: 'story.changed', story: access });
        return {};
      });
      for (const conn of [...this.connections()]) {
        if (!canRead(access, conn.user)) {
          this.closeConnection(conn, CloseCode.forbidden, 'no longer allowed to read this story');
        }
      }
      return { changed: true };
    });
  }

  /** Saves the body to D1 now (publishing); resolves once D1 has it. */
  saveBody() {
    return this.rpc(async () => {
      const seq = this.#saveBody();
      await this.kit.outbox.flush();
      if (this.kit.outbox.pending() > 0) {
        throw new ChannelError(ErrorCode.internal, 'the story could not be saved; retry', 503);
      }
      return { seq };
    });
  }

  /** The document as this object holds it: its text, its whole state, its position. */
  live() {
    return this.rpc(
      (): LiveDocument => ({
        body: this.#document.body,
        state: toBase64(this.#document.state()),
        seq: this.log.seq,
      }),
    );
  }

  /** Stored base and updates (tests and operators). */
  storage() {
    return this.#document.stored();
  }

  // ---- behaviour ---------------------------------------------------------------------

  #update(call: Call, encoded: string): Handled {
    this.#mayEdit(call);
    const update = fromBase64(encoded);
    if (!this.#document.apply(update)) return { result: { applied: false } };
    let handled: Handled;
    try {
      handled = this.commit(call, (tx) => {
        this.#document.store(tx, update);
        const event = tx.publish<Unsequenced<DocUpdateEvent>>({
          type: 'doc.update',
          update: encoded,
          by: call.user.id,
        });
        return { seq: event.seq, result: { applied: true } };
      });
    } catch (err) {
      this.#document.forget();
      throw err;
    }
    this.#document.compactIfDue();
    this.#bodyChanged();
    return handled;
  }

  /** Debounces the D1 save on the object's alarm: it survives hibernation and eviction. */
  #bodyChanged(): void {
    const now = Date.now();
    let since = Number(this.log.getMeta('body.dirtySince') ?? '0');
    if (since === 0) {
      since = now;
      this.log.setMeta('body.dirtySince', String(now));
    }
    const at = Math.min(now + BODY_SETTLE_MS, since + BODY_MAX_WAIT_MS);
    this.ctx.waitUntil(
      this.schedule(BODY_TASK, at).catch((err: unknown) => {
        console.error(`${this.kit.label}: scheduling the body save failed`, err);
      }),
    );
  }

  /** One outbox row with the body as of now; D1 keeps the newest (by seq). Also compacts. */
  #saveBody(): number {
    const seq = this.log.seq;
    this.commit(null, (tx) => {
      tx.outbox('story.body', { storyId: this.channelId, body: this.#document.body, seq });
      this.log.setMeta('body.dirtySince', '0');
      return {};
    });
    this.#document.compactIfDue(1);
    return seq;
  }

  #mayRead(call: Call): void {
    if (!canRead(this.#requireAccess(), call.user)) {
      throw new ChannelError(ErrorCode.forbidden, 'you may not read this story', 403);
    }
  }

  #mayEdit(call: Call): void {
    if (!canEdit(this.#requireAccess(), call.user)) {
      throw new ChannelError(
        ErrorCode.forbidden,
        "only the story's owner and co-authors may edit it",
        403,
      );
    }
  }

  #access(): StoryAccess | null {
    if (this.#accessCache === undefined) {
      const raw = this.log.getMeta('story.access');
      this.#accessCache = raw ? (JSON.parse(raw) as StoryAccess) : null;
    }
    return this.#accessCache;
  }

  #requireAccess(): StoryAccess {
    const access = this.#access();
    if (!access) throw new ChannelError(StoryErrorCode.storyNotFound, 'no such story', 404);
    return access;
  }

  #setAccess(access: StoryAccess): void {
    this.log.setMeta('story.access', JSON.stringify(access));
    this.#accessCache = access;
  }
}
