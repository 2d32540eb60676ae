// A comment room: the comments on one item, typing indicators and who is here. Comments are a
// message lane (stored here, sequenced, in D1 through the outbox); typing is ephemeral.
import { ChannelError } from '../../channel/errors';
import { MessageLane } from '../../channel/messages';
import { Throttle } from '../../channel/rate-limit';
import {
  type Call,
  ChannelRoom,
  type Connection,
  type Handled,
  type Handlers,
} from '../../channel/room';
import { commentStore } from '../../db/comments';
import {
  COMMENT_PAGE_SIZE,
  type Comment,
  type CommentCreatedEvent,
  type CommentDeletedEvent,
  type CommentRoomSnapshot,
  type commentFrames,
} from '../../protocol/comments';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import { comments } from './kind';

/** Typing expires on every client after this long unless renewed. */
export const TYPING_TTL_MS = 5000;
/** A user's repeated "still typing" is passed on at most this often. */
export const TYPING_THROTTLE_MS = 1000;

type Unsequenced<T> = Omit<T, 'seq' | 'at'>;

export class CommentRoom extends ChannelRoom<typeof commentFrames, CommentRoomSnapshot> {
  readonly #comments: MessageLane<
    Comment,
    Unsequenced<CommentCreatedEvent>,
    Unsequenced<CommentDeletedEvent>
  >;
  readonly #typing = new Map<string, { user: PublicUser; until: number }>();
  readonly #typingThrottle = new Throttle(TYPING_THROTTLE_MS);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, comments);
    this.#comments = new MessageLane(this.kit, {
      name: 'comments',
      channelId: this.channelId,
      pageSize: COMMENT_PAGE_SIZE,
      store: commentStore,
      created: (comment) => ({ type: 'comment.created', comment }),
      deleted: (commentId, deletedBy) => ({ type: 'comment.deleted', commentId, deletedBy }),
    });
  }

  protected override load(): Promise<void> {
    return this.#comments.seed();
  }

  protected snapshot(): CommentRoomSnapshot {
    return {
      itemId: this.channelId,
      recent: this.#comments.recent(),
      presence: this.presenceSnapshot(),
      typing: this.#typingNow().map((t) => t.user),
    };
  }

  protected readonly handlers: Handlers<typeof commentFrames> = {
    'comment.create': (call, frame) => this.#create(call, frame.body),
    'comment.delete': (call, frame) => this.#delete(call, frame.commentId),
    typing: (call, frame) => {
      this.#setTyping(call.user, frame.isTyping);
      return {};
    },
  };

  protected override onLeave(conn: Connection, lastOfUser: boolean): void {
    const user = lastOfUser ? conn.user : null;
    if (user && this.#typing.has(user.id)) this.#setTyping(user, false);
  }

  // ---- RPC for the REST routes ------------------------------------------------------

  /** A page of comments, newest first: current from this room, older ones from D1. */
  history(limit: number, before?: string) {
    return this.rpc(async () => {
      const page = await this.#comments.page(limit, before);
      return { comments: page.messages, nextCursor: page.nextCursor };
    });
  }

  // ---- behaviour -------------------------------------------------------------------

  #create(call: Call, body: string): Handled {
    const user = call.user;
    const comment: Comment = {
      id: crypto.randomUUID(),
      user: { id: user.id, name: user.name, role: user.role },
      body,
      createdAt: Date.now(),
    };
    const handled = this.commit(call, (tx) => {
      const { seq } = this.#comments.post(tx, comment);
      return { seq, result: { comment } };
    });
    if (this.#typing.has(user.id)) this.#setTyping(user, false);
    return handled;
  }

  async #delete(call: Call, commentId: string): Promise<Handled> {
    const user = call.user;
    const authorId = await this.#comments.author(commentId);
    if (authorId === null) throw new ChannelError(ErrorCode.notFound, 'no such comment', 404);
    if (authorId !== user.id && user.role !== 'admin') {
      throw new ChannelError(
        ErrorCode.forbidden,
        'only the author or an admin may delete a comment',
        403,
      );
    }
    return this.commit(call, (tx) => {
      const { seq } = this.#comments.remove(tx, commentId, authorId, user.id);
      return { seq, result: { commentId } };
    });
  }

  #typingNow(): { user: PublicUser; until: number }[] {
    const now = Date.now();
    for (const [id, t] of this.#typing) if (t.until <= now) this.#typing.delete(id);
    return [...this.#typing.values()];
  }

  #setTyping(user: PublicUser, isTyping: boolean): void {
    const was = this.#typing.has(user.id) && (this.#typing.get(user.id)?.until ?? 0) > Date.now();
    if (isTyping) {
      // A change of state always passes; a repeated "still typing" is throttled.
      if (was && !this.#typingThrottle.allow(user.id)) return;
      if (!was) this.#typingThrottle.allow(user.id);
      this.#typing.set(user.id, { user, until: Date.now() + TYPING_TTL_MS });
    } else {
      if (!was) return;
      this.#typing.delete(user.id);
    }
    const frame = { type: 'typing', user, isTyping, expiresInMs: TYPING_TTL_MS };
    this.broadcast(frame, (c) => c.userId !== user.id);
  }
}
