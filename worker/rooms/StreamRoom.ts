// A station's live channel. LiveRoom (rooms/stream/live-room.ts) owns going live, now playing,
// listener counts and the lobby reports; this adds chat, moderation and reactions, the frame
// switch and the RPC the REST routes call. Decisions in docs/stations.md.
import { assertNever, ChannelError } from '../channel/errors';
import type { Connection, Handled } from '../channel/room';
import { CloseCode, ErrorCode, type PublicUser } from '../protocol/core';
import {
  CHAT_PAGE_SIZE,
  type ChatMessage,
  type MetadataUpdate,
  type ModerationRequest,
  type ReactionEmoji,
  type ShowInfo,
  type StreamClientFrame,
  type StreamSnapshot,
} from '../protocol/stream';
import { CHAT_BURST, CHAT_REFILL_SECONDS } from './stream/engagement';
import { LiveRoom, REACTION_WINDOW_MS, stationChannel } from './stream/live-room';
import { ModerationBook } from './stream/moderation';
import {
  readChatMessage,
  readChatPage,
  readUserRole,
  recordChat,
  recordChatDeletion,
  recordModeration,
} from './stream/records';

export { stationChannel };

export class StreamRoom extends LiveRoom {
  readonly #moderation: ModerationBook;
  #recent: ChatMessage[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#moderation = new ModerationBook(this.sql);
  }

  protected override async load(channel: string): Promise<void> {
    await super.load(channel);
    const page = await readChatPage(this.env.DB, this.stationId, CHAT_PAGE_SIZE);
    this.#recent = page.messages.reverse();
  }

  protected override async authorize(user: PublicUser | null): Promise<void> {
    await this.requireStation();
    if (user && this.#moderation.status(user.id).banned) {
      throw new ChannelError(ErrorCode.banned, 'you are banned from this station', 403);
    }
  }

  protected snapshot(conn: Connection): StreamSnapshot {
    const user = conn.att.user;
    const mod = user ? this.#moderation.status(user.id) : null;
    return {
      ...this.status(conn),
      chat: this.#recent,
      you: {
        canManage: this.canManage(user),
        muted: mod?.muted ?? false,
        mutedUntil: mod?.mutedUntil ?? null,
      },
    };
  }

  protected async onFrame(conn: Connection, frame: StreamClientFrame): Promise<Handled> {
    const user = conn.att.user;
    switch (frame.type) {
      case 'ping':
        return {};
      case 'stream.start': {
        const { type: _type, id: _id, ...show } = frame;
        const { seq, ...result } = await this.start(user, show);
        return { seq, result };
      }
      case 'stream.stop': {
        const { seq, ...result } = await this.stop(user);
        return { seq, result };
      }
      case 'stream.metadata': {
        const { type: _type, id: _id, ...patch } = frame;
        const { seq, ...result } = await this.changeMetadata(user, patch);
        return { seq, result };
      }
      case 'chat.send': {
        const { seq, message } = await this.#send(writer(user), frame.body);
        return { seq, result: { message } };
      }
      case 'chat.delete': {
        const { seq, messageId } = await this.#delete(writer(user), frame.messageId);
        return { seq, result: { messageId } };
      }
      case 'chat.moderate': {
        const { type: _type, id: _id, ...request } = frame;
        return { result: await this.#moderate(user, request) };
      }
      case 'reaction':
        return { result: { counted: this.#react(writer(user), frame.emoji) } };
      default:
        return assertNever(frame);
    }
  }

  protected override async onTask(name: string): Promise<void> {
    if (name === 'reactions') this.#flushReactions();
    else await super.onTask(name);
  }

  // ---- RPC for the REST routes: the same paths as the socket frames ---------------

  getStatus(stationId: string) {
    return this.rpc(stationChannel(stationId), async () => {
      await this.requireStation();
      return this.status();
    });
  }

  goLive(stationId: string, user: PublicUser, show: ShowInfo) {
    return this.rpc(stationChannel(stationId), () => this.start(user, show));
  }

  stopLive(stationId: string, user: PublicUser) {
    return this.rpc(stationChannel(stationId), () => this.stop(user));
  }

  updateNowPlaying(stationId: string, user: PublicUser, patch: MetadataUpdate) {
    return this.rpc(stationChannel(stationId), () => this.changeMetadata(user, patch));
  }

  postChat(stationId: string, user: PublicUser, body: string, requestId?: string) {
    return this.rpc(stationChannel(stationId), async () => {
      if (!requestId) return this.#send(user, body);
      // The same key as a socket frame's id: a retry over either path is applied once.
      const key = `u:${user.id}:${requestId}`;
      return (await this.idempotent(key, () => this.#send(user, body))).value;
    });
  }

  deleteChat(stationId: string, user: PublicUser, messageId: string) {
    return this.rpc(stationChannel(stationId), () => this.#delete(user, messageId));
  }

  moderate(stationId: string, moderator: PublicUser, request: ModerationRequest) {
    return this.rpc(stationChannel(stationId), () => this.#moderate(moderator, request));
  }

  restrictions(stationId: string, user: PublicUser) {
    return this.rpc(stationChannel(stationId), async () => {
      await this.requireManager(user);
      return { restrictions: this.#moderation.active() };
    });
  }

  stationUpdated(stationId: string) {
    return this.rpc(stationChannel(stationId), async () => ({
      station: await this.reloadStation(),
    }));
  }

  // ---- chat ------------------------------------------------------------------------

  #send(user: PublicUser, body: string) {
    return this.exclusive(async () => {
      await this.requireStation();
      this.#assertMayChat(user);
      const now = Date.now();
      if (!this.chatMeter.allow(user.id, now)) {
        throw new ChannelError(
          ErrorCode.rateLimited,
          `slow down: ${CHAT_BURST} messages at once, then one every ${CHAT_REFILL_SECONDS} seconds`,
          429,
        );
      }
      const message: ChatMessage = {
        id: crypto.randomUUID(),
        stationId: this.stationId,
        sessionId: this.session?.id ?? null,
        user: { id: user.id, name: user.name, role: user.role },
        body,
        createdAt: now,
      };
      // Stored first, then sequenced and broadcast: an acknowledged message is durable.
      await recordChat(this.env.DB, message);
      this.chatMeter.record(message.sessionId !== null, now);
      const event = this.publish({ type: 'chat.message', message });
      this.#recent.push(message);
      if (this.#recent.length > CHAT_PAGE_SIZE) this.#recent.shift();
      this.coalesce('lobby');
      return { message, seq: event.seq };
    });
  }

  #delete(user: PublicUser, messageId: string) {
    return this.exclusive(async () => {
      await this.requireStation();
      const row = await readChatMessage(this.env.DB, this.stationId, messageId);
      if (!row || row.deletedAt !== null) {
        throw new ChannelError(ErrorCode.notFound, 'no such message', 404);
      }
      const byAuthor = row.userId === user.id;
      if (!byAuthor && !this.canManage(user)) {
        throw new ChannelError(
          ErrorCode.forbidden,
          'only its author, the station owner or an admin may delete a message',
          403,
        );
      }
      const now = Date.now();
      const moderation = byAuthor
        ? null
        : {
            stationId: this.stationId,
            targetUserId: row.userId,
            action: 'delete_message' as const,
            moderatorId: user.id,
            reason: `message ${messageId}`,
            expiresAt: null,
            createdAt: now,
          };
      await recordChatDeletion(this.env.DB, messageId, user.id, now, moderation);
      const event = this.publish({ type: 'chat.deleted', messageId, deletedBy: user.id });
      this.#recent = this.#recent.filter((m) => m.id !== messageId);
      return { messageId, seq: event.seq };
    });
  }

  #assertMayChat(user: PublicUser): void {
    const status = this.#moderation.status(user.id);
    if (status.banned) {
      throw new ChannelError(ErrorCode.banned, 'you are banned from this station', 403);
    }
    if (status.muted) {
      const until = status.mutedUntil
        ? `until ${new Date(status.mutedUntil).toISOString()}`
        : 'until a moderator lifts it';
      throw new ChannelError(ErrorCode.muted, `you are muted in this chat ${until}`, 403);
    }
  }

  // ---- moderation ------------------------------------------------------------------

  #moderate(moderator: PublicUser | null, request: ModerationRequest) {
    return this.exclusive(async () => {
      const by = await this.requireManager(moderator);
      if (request.userId === by.id || request.userId === this.info().ownerId) {
        throw new ChannelError(
          ErrorCode.forbidden,
          'the station owner and moderators cannot be muted or banned here',
          403,
        );
      }
      const role = await readUserRole(this.env.DB, request.userId);
      if (role === null) throw new ChannelError(ErrorCode.notFound, 'no such user', 404);
      if (role === 'admin') {
        throw new ChannelError(ErrorCode.forbidden, 'admins cannot be muted or banned', 403);
      }
      const now = Date.now();
      const restricts = request.action === 'mute' || request.action === 'ban';
      const until =
        restricts && request.durationSeconds ? now + request.durationSeconds * 1000 : null;
      const reason = request.reason ?? null;
      await recordModeration(this.env.DB, {
        stationId: this.stationId,
        targetUserId: request.userId,
        action: request.action,
        moderatorId: by.id,
        reason,
        expiresAt: until,
        createdAt: now,
      });
      this.#moderation.apply(request.userId, request.action, until, by.id, reason, now);
      if (request.action === 'ban') {
        this.closeUser(request.userId, CloseCode.forbidden, 'banned from this station');
      } else if (request.action === 'mute' || request.action === 'unmute') {
        this.broadcast(
          { type: 'moderation', action: request.action, until, reason },
          (c) => c.att.user?.id === request.userId,
        );
      }
      return { userId: request.userId, action: request.action, until };
    });
  }

  // ---- reactions -------------------------------------------------------------------

  #react(user: PublicUser, emoji: ReactionEmoji): boolean {
    if (!this.reactionTally.tap(user.id, emoji)) return false;
    this.coalesce('reactions');
    return true;
  }

  #flushReactions(): void {
    this.ran('reactions');
    const counts = this.reactionTally.drain();
    if (!counts) return;
    this.broadcast({
      type: 'reactions',
      stationId: this.stationId,
      counts,
      windowMs: REACTION_WINDOW_MS,
    });
    this.coalesce('lobby');
  }
}

/** Anonymous listeners read; writing (chat, reactions) needs a signed-in user. */
function writer(user: PublicUser | null): PublicUser {
  if (!user) {
    throw new ChannelError(
      ErrorCode.authRequired,
      'anonymous listeners can read but not write: sign in to chat or react',
      401,
    );
  }
  return user;
}
