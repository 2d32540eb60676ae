// A comment room: the comments on one item (a story, a post), typing indicators and who is here.
import { and, desc, eq, isNull } from 'drizzle-orm';
import { assertNever, ChannelError, signedIn } from '../channel/errors';
import { Throttle } from '../channel/rate-limit';
import { ChannelRoom, type Connection, frameTypesOf, type Handled } from '../channel/room';
import { authorColumns, authorOf, db, schema } from '../db/client';
import {
  COMMENT_PAGE_SIZE,
  type Comment,
  type CommentClientFrame,
  type CommentRoomSnapshot,
  commentClientFrame,
} from '../protocol/comments';
import { ErrorCode, type PublicUser } from '../protocol/core';

/** Typing expires on every client after this long unless renewed. */
export const TYPING_TTL_MS = 5000;
/** A user's repeated "still typing" is passed on at most this often. */
export const TYPING_THROTTLE_MS = 1000;

export const commentChannel = (itemId: string) => `comments:${itemId}`;

export class CommentRoom extends ChannelRoom<CommentClientFrame, CommentRoomSnapshot> {
  protected readonly frames = commentClientFrame;
  #itemId = '';
  #recent: Comment[] = [];
  readonly #typing = new Map<string, { user: PublicUser; until: number }>();
  readonly #typingThrottle = new Throttle(TYPING_THROTTLE_MS);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { kind: 'comments', frameTypes: frameTypesOf(commentClientFrame) });
  }

  protected override async load(channel: string): Promise<void> {
    this.#itemId = channel.slice('comments:'.length);
    const rows = await db(this.env.DB)
      .select({
        id: schema.comments.id,
        body: schema.comments.body,
        createdAt: schema.comments.createdAt,
        ...authorColumns,
      })
      .from(schema.comments)
      .innerJoin(schema.users, eq(schema.users.id, schema.comments.userId))
      .where(and(eq(schema.comments.itemId, this.#itemId), isNull(schema.comments.deletedAt)))
      .orderBy(desc(schema.comments.createdAt), desc(schema.comments.id))
      .limit(COMMENT_PAGE_SIZE);
    this.#recent = rows.reverse().map((r) => ({
      id: r.id,
      itemId: this.#itemId,
      user: authorOf(r),
      body: r.body,
      createdAt: r.createdAt,
    }));
  }

  protected snapshot(): CommentRoomSnapshot {
    return {
      itemId: this.#itemId,
      recent: this.#recent,
      presence: this.presenceSnapshot(),
      typing: this.#typingNow().map((t) => t.user),
    };
  }

  protected async onFrame(conn: Connection, frame: CommentClientFrame): Promise<Handled> {
    switch (frame.type) {
      case 'ping':
        return {};
      case 'comment.create': {
        const { comment, seq } = await this.#create(signedIn(conn.att.user), frame.body);
        return { seq, result: { comment } };
      }
      case 'comment.delete': {
        const { commentId, seq } = await this.#delete(signedIn(conn.att.user), frame.commentId);
        return { seq, result: { commentId } };
      }
      case 'typing':
        this.#setTyping(signedIn(conn.att.user), frame.isTyping);
        return {};
      default:
        return assertNever(frame);
    }
  }

  protected override onLeave(conn: Connection, lastOfUser: boolean): void {
    if (lastOfUser && conn.att.user && this.#typing.has(conn.att.user.id)) {
      this.#setTyping(conn.att.user, false);
    }
  }

  // ---- RPC for the REST routes: the same path as a WebSocket frame ----------------

  postComment(itemId: string, user: PublicUser, body: string, requestId?: string) {
    return this.rpc(commentChannel(itemId), async () => {
      if (!requestId) return this.#create(user, body);
      return (await this.idempotent(`u:${user.id}:${requestId}`, () => this.#create(user, body)))
        .value;
    });
  }

  deleteComment(itemId: string, user: PublicUser, commentId: string) {
    return this.rpc(commentChannel(itemId), () => this.#delete(user, commentId));
  }

  // ---- behaviour -------------------------------------------------------------------

  #create(user: PublicUser, body: string): Promise<{ comment: Comment; seq: number }> {
    return this.exclusive(async () => {
      const comment: Comment = {
        id: crypto.randomUUID(),
        itemId: this.#itemId,
        user,
        body,
        createdAt: Date.now(),
      };
      // Stored first, then sequenced and broadcast: an acknowledged comment is durable.
      await db(this.env.DB).insert(schema.comments).values({
        id: comment.id,
        itemId: comment.itemId,
        userId: user.id,
        body,
        createdAt: comment.createdAt,
      });
      if (this.#typing.has(user.id)) this.#setTyping(user, false);
      const event = this.publish({ type: 'comment.created', comment });
      this.#recent.push(comment);
      if (this.#recent.length > COMMENT_PAGE_SIZE) this.#recent.shift();
      return { comment, seq: event.seq };
    });
  }

  #delete(user: PublicUser, commentId: string): Promise<{ commentId: string; seq: number }> {
    return this.exclusive(async () => {
      const database = db(this.env.DB);
      const row = await database.query.comments.findFirst({
        where: and(eq(schema.comments.id, commentId), eq(schema.comments.itemId, this.#itemId)),
      });
      if (!row || row.deletedAt !== null) {
        throw new ChannelError(ErrorCode.notFound, 'no such comment', 404);
      }
      if (row.userId !== user.id && user.role !== 'admin') {
        throw new ChannelError(
          ErrorCode.forbidden,
          'only the author or an admin may delete a comment',
          403,
        );
      }
      await database
        .update(schema.comments)
        .set({ deletedAt: Date.now(), deletedBy: user.id })
        .where(eq(schema.comments.id, commentId));
      const event = this.publish({ type: 'comment.deleted', commentId, deletedBy: user.id });
      this.#recent = this.#recent.filter((c) => c.id !== commentId);
      return { commentId, seq: event.seq };
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
    this.broadcast(frame, (c) => c.att.user?.id !== user.id);
  }
}
