// A station's live channel: the show (live.ts), who is listening (audience.ts), chat as a
// message lane with moderation (moderation.ts), reactions and chat pace (engagement.ts), and
// the coalesced reports that keep listeners, the lobby and D1 in step. docs/stations.md.
import { Coalesced } from '../../channel/coalesce';
import { ChannelError } from '../../channel/errors';
import { MessageLane } from '../../channel/messages';
import { type Call, ChannelRoom, type Connection, type Handlers } from '../../channel/room';
import { findPublicUser } from '../../db/accounts';
import { chatStore, moderationWrites, readStation } from '../../db/stations';
import { CloseCode, ErrorCode, type PublicUser } from '../../protocol/core';
import type { StationReport } from '../../protocol/lobby';
import {
  CHAT_PAGE_SIZE,
  type ChatDeletedEvent,
  type ChatMessage,
  type ChatMessageEvent,
  type ListenerCounts,
  type ModerationRequest,
  type ReactionEmoji,
  type StationInfo,
  type StreamSnapshot,
  type StreamStatus,
  type streamFrames,
} from '../../protocol/stream';
import { lobby } from '../lobby/kind';
import { Audience } from './audience';
import { ShowDesk } from './desk';
import { CHAT_BURST, CHAT_REFILL_SECONDS, ChatMeter, ReactionTally } from './engagement';
import { mayManageStation, station } from './kind';
import { LiveShow } from './live';
import { ModerationBook } from './moderation';
import { restricted } from './notices';

/** Counts reach listeners, and the lobby, at most about once per interval. */
export const LISTENERS_INTERVAL_MS = 1000;
export const LOBBY_INTERVAL_MS = 1000;
/** While live, the lobby hears from the station at least this often (keeps rates fresh). */
export const LOBBY_HEARTBEAT_MS = 30_000;
const LOBBY_RETRY_MS = 2000;
export const REACTION_WINDOW_MS = 1000;

type Unsequenced<T> = Omit<T, 'seq' | 'at'>;

export class StreamRoom extends ChannelRoom<typeof streamFrames, StreamSnapshot> {
  readonly #show: LiveShow;
  readonly #audience: Audience;
  readonly #chatMeter: ChatMeter;
  readonly #reactions: ReactionTally;
  readonly #moderation: ModerationBook;
  readonly #chat: MessageLane<
    ChatMessage,
    Unsequenced<ChatMessageEvent>,
    Unsequenced<ChatDeletedEvent>
  >;
  readonly #listeners: Coalesced;
  readonly #lobby: Coalesced;
  readonly #reactionWindow: Coalesced;
  /** Polls, the track queue and the session's analytics (desk.ts, issue 11). */
  readonly #desk: ShowDesk;
  #station: StationInfo | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, station);
    this.#show = new LiveShow(this.kit, this.channelId);
    this.#audience = new Audience(this.sql, this.log, this.connections());
    this.#chatMeter = new ChatMeter(this.sql, this.log);
    this.#reactions = new ReactionTally(this.log);
    this.#moderation = new ModerationBook(this.sql);
    this.#chat = new MessageLane(this.kit, {
      name: 'chat',
      channelId: this.channelId,
      pageSize: CHAT_PAGE_SIZE,
      store: chatStore,
      created: (message) => ({ type: 'chat.message', message }),
      deleted: (messageId, deletedBy) => ({ type: 'chat.deleted', messageId, deletedBy }),
    });
    this.kit.outbox.register('moderation', moderationWrites);
    this.#listeners = new Coalesced(this.kit, 'listeners', LISTENERS_INTERVAL_MS, () =>
      this.#flushListeners(),
    );
    this.#lobby = new Coalesced(this.kit, 'lobby', LOBBY_INTERVAL_MS, () => this.#reportToLobby());
    this.#reactionWindow = new Coalesced(this.kit, 'reactions', REACTION_WINDOW_MS, () =>
      this.#flushReactions(),
    );
    this.#desk = new ShowDesk({
      kit: this.kit,
      stationId: this.channelId,
      live: () => this.#show.state,
      counts: () => this.#counts(),
      connections: () => this.connections(),
      requireManager: (user) => this.#requireManager(user),
      isManager: (conn) =>
        conn.userId !== null &&
        (conn.userId === this.#station?.ownerId || this.#canManage(conn.user)),
      changeNowPlaying: (tx, patch, itemId) => this.#show.changeMetadata(tx, patch, itemId),
      lobbyNow: () => this.#lobby.flush(),
      lobbySoon: () => this.#lobby.touch(),
    });
  }

  protected override load(): Promise<void> {
    return this.#chat.seed();
  }

  protected override async mustExist(): Promise<void> {
    await this.#requireStation();
  }

  protected override async authorize(user: PublicUser | null): Promise<void> {
    await this.#requireStation();
    if (user && this.#moderation.status(user.id).banned) {
      throw new ChannelError(ErrorCode.banned, 'you are banned from this station', 403);
    }
  }

  protected snapshot(conn: Connection): StreamSnapshot {
    const user = conn.user;
    const mod = user ? this.#moderation.status(user.id) : null;
    const { ballot, ...desk } = this.#desk.snapshot(conn);
    return {
      ...this.#status(conn),
      chat: this.#chat.recent(),
      ...desk,
      you: {
        ballot,
        canManage: this.#canManage(user),
        muted: mod?.muted ?? false,
        mutedUntil: mod?.mutedUntil ?? null,
      },
    };
  }

  protected readonly handlers: Handlers<typeof streamFrames> = {
    'stream.start': async (call, { type: _type, ...show }) => {
      await this.#requireManager(call.user);
      const handled = this.commit(call, (tx) => {
        const { seq, ...result } = this.#show.start(
          tx,
          call.user,
          show,
          this.#audience.opening(this.connections()),
        );
        return { seq, result };
      });
      this.#audience.startSession(this.connections());
      this.#chatMeter.resetSession();
      this.#reactions.resetSession();
      this.#desk.started();
      this.#countsChanged();
      // Live state reaches the lobby at once (in order); only counts are coalesced.
      await this.#lobby.flush();
      return handled;
    },
    'stream.stop': async (call) => {
      await this.#requireManager(call.user);
      const counts = this.#counts();
      const final = {
        peak: counts.peak,
        distinct: counts.distinct,
        chatMessages: this.#chatMeter.sessionCount,
      };
      const handled = this.commit(call, (tx) => {
        this.#desk.stopping(tx);
        const { seq, ...result } = this.#show.stop(tx, final);
        this.#desk.stopped(tx, result.session.endedAt);
        return { seq, result };
      });
      this.#countsChanged();
      await this.#lobby.flush();
      return handled;
    },
    'stream.metadata': async (call, { type: _type, ...patch }) => {
      await this.#requireManager(call.user);
      const handled = this.commit(call, (tx) => {
        const { seq, ...result } = this.#show.changeMetadata(tx, patch);
        return { seq, result };
      });
      await this.#lobby.flush();
      return handled;
    },
    'chat.send': (call, frame) => this.#send(call, frame.body),
    'chat.delete': (call, frame) => this.#delete(call, frame.messageId),
    'chat.moderate': (call, { type: _type, ...request }) => this.#moderate(call, request),
    reaction: (call, frame) => ({ result: { counted: this.#react(call.user, frame.emoji) } }),
    'poll.create': (call, { type: _type, ...poll }) => this.#desk.createPoll(call, poll),
    'poll.vote': (call, frame) => this.#desk.vote(call, frame.pollId, frame.choices),
    'poll.close': (call, frame) => this.#desk.closePoll(call, frame.pollId),
    'queue.add': (call, { type: _type, ...track }) => this.#desk.queueAdd(call, track),
    'queue.remove': (call, frame) => this.#desk.queueRemove(call, frame.itemId),
    'queue.move': (call, frame) => this.#desk.queueMove(call, frame.itemId, frame.position),
    'queue.clear': (call) => this.#desk.queueClear(call),
    'queue.next': (call) => this.#desk.queueNext(call),
  };

  protected override onJoin(conn: Connection, firstOfUser: boolean): void {
    const live = this.#show.state !== null;
    this.#audience.joined(conn, live);
    if (live) this.#audience.notePeak(this.#counts().listeners);
    this.#desk.joined(conn, firstOfUser);
    this.#countsChanged();
  }

  protected override onLeave(conn: Connection, lastOfUser: boolean): void {
    this.#audience.left(conn);
    this.#desk.left(conn, lastOfUser);
    this.#countsChanged();
  }

  // ---- RPC for the REST routes (writes go through `request`, like socket frames) ------

  status() {
    return this.rpc(async () => {
      await this.#requireStation();
      return this.#status();
    });
  }

  history(limit: number, before?: string) {
    return this.rpc(async () => {
      await this.#requireStation();
      return this.#chat.page(limit, before);
    });
  }

  restrictions(user: PublicUser) {
    return this.rpc(async () => {
      await this.#requireManager(user);
      return { restrictions: this.#moderation.active() };
    });
  }

  /** The open (or last) poll with its tallies, for `GET /api/stations/:id/polls`. */
  currentPoll() {
    return this.rpc(async () => {
      await this.#requireStation();
      return { poll: this.#desk.polls.latest };
    });
  }

  trackQueue() {
    return this.rpc(async () => {
      await this.#requireStation();
      return { queue: this.#desk.queue.items, nowPlaying: this.#show.state?.nowPlaying ?? null };
    });
  }

  /** A favourite gained (+1) or lost (-1) while live counts toward the session's engagement. */
  favourited(delta: 1 | -1) {
    return this.rpc(() => this.#desk.favourite(delta));
  }

  sessionAnalytics(user: PublicUser, sessionId: string) {
    return this.rpc(async () => {
      await this.#requireManager(user);
      return this.#desk.sessionAnalytics(sessionId);
    });
  }

  /** The station's row changed in D1: reload it and tell the lobby. */
  stationUpdated() {
    return this.rpc(async () => {
      this.#station = null;
      const info = await this.#requireStation();
      await this.#reportToLobby();
      return { station: info };
    });
  }

  // ---- chat ------------------------------------------------------------------------

  async #send(call: Call, body: string) {
    await this.#requireStation();
    this.#assertMayChat(call.user);
    const now = Date.now();
    if (!this.#chatMeter.allow(call.user.id, now)) {
      throw new ChannelError(
        ErrorCode.rateLimited,
        `slow down: ${CHAT_BURST} messages at once, then one every ${CHAT_REFILL_SECONDS} seconds`,
        429,
      );
    }
    const message: ChatMessage = {
      id: crypto.randomUUID(),
      sessionId: this.#show.state?.session.id ?? null,
      user: { id: call.user.id, name: call.user.name, role: call.user.role },
      body,
      createdAt: now,
    };
    const handled = this.commit(call, (tx) => {
      this.#chatMeter.record(message.sessionId !== null, now);
      const { seq } = this.#chat.post(tx, message);
      return { seq, result: { message } };
    });
    this.#desk.chatSent(message.sessionId !== null);
    this.#lobby.touch();
    return handled;
  }

  async #delete(call: Call, messageId: string) {
    await this.#requireStation();
    const authorId = await this.#chat.author(messageId);
    if (authorId === null) throw new ChannelError(ErrorCode.notFound, 'no such message', 404);
    const byAuthor = authorId === call.user.id;
    if (!byAuthor && !this.#canManage(call.user)) {
      throw new ChannelError(
        ErrorCode.forbidden,
        'only its author, the station owner or an admin may delete a message',
        403,
      );
    }
    const now = Date.now();
    return this.commit(call, (tx) => {
      const { seq } = this.#chat.remove(tx, messageId, authorId, call.user.id, now);
      // A deletion by someone other than the author is a moderation action.
      if (!byAuthor) {
        tx.outbox('moderation', {
          id: crypto.randomUUID(),
          stationId: this.channelId,
          targetUserId: authorId,
          action: 'delete_message',
          moderatorId: call.user.id,
          reason: `message ${messageId}`,
          expiresAt: null,
          createdAt: now,
        });
      }
      return { seq, result: { messageId } };
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

  async #moderate(call: Call, request: ModerationRequest) {
    const by = await this.#requireManager(call.user);
    if (request.userId === by.id || request.userId === this.#info().ownerId) {
      throw new ChannelError(
        ErrorCode.forbidden,
        'the station owner and moderators cannot be muted or banned here',
        403,
      );
    }
    const target = await findPublicUser(this.env.DB, request.userId);
    if (!target) throw new ChannelError(ErrorCode.notFound, 'no such user', 404);
    if (target.role === 'admin') {
      throw new ChannelError(ErrorCode.forbidden, 'admins cannot be muted or banned', 403);
    }
    const now = Date.now();
    const restricts = request.action === 'mute' || request.action === 'ban';
    const until =
      restricts && request.durationSeconds ? now + request.durationSeconds * 1000 : null;
    const reason = request.reason ?? null;
    const handled = this.commit(call, (tx) => {
      this.#moderation.apply(request.userId, request.action, until, by.id, reason, now);
      tx.outbox('moderation', {
        id: crypto.randomUUID(),
        stationId: this.channelId,
        targetUserId: request.userId,
        action: request.action,
        moderatorId: by.id,
        reason,
        expiresAt: until,
        createdAt: now,
      });
      restricted(tx, this.#info(), request.userId, request.action, until, reason, now);
      return { result: { userId: request.userId, action: request.action, until } };
    });
    if (request.action === 'ban') {
      this.closeUser(request.userId, CloseCode.forbidden, 'banned from this station');
    } else if (request.action === 'mute' || request.action === 'unmute') {
      this.broadcast(
        { type: 'moderation', action: request.action, until, reason },
        (c) => c.userId === request.userId,
      );
    }
    return handled;
  }

  // ---- reactions -------------------------------------------------------------------

  #react(user: PublicUser, emoji: ReactionEmoji): boolean {
    if (!this.#reactions.tap(user.id, emoji)) return false;
    this.#reactionWindow.touch();
    return true;
  }

  #flushReactions(): void {
    const counts = this.#reactions.drain();
    if (!counts) return;
    this.broadcast({
      type: 'reactions',
      stationId: this.channelId,
      counts,
      windowMs: REACTION_WINDOW_MS,
    });
    this.#desk.reactionsSent(counts);
    this.#lobby.touch();
  }

  // ---- counts and the lobby --------------------------------------------------------

  #counts(): ListenerCounts {
    const { users, connections } = this.presenceCounts();
    return this.#audience.counts(users, connections, this.#show.state !== null);
  }

  /** `joining`: the connection being welcomed, counted before its onJoin runs. */
  #status(joining?: Connection): StreamStatus {
    const live = this.#show.state;
    if (joining) this.#audience.joined(joining, live !== null);
    return {
      station: this.#info(),
      live: live !== null,
      session: live?.session ?? null,
      nowPlaying: live?.nowPlaying ?? null,
      listeners: this.#counts(),
    };
  }

  #countsChanged(): void {
    this.#listeners.touch();
    this.#lobby.touch();
  }

  #flushListeners(): void {
    const counts = this.#counts();
    this.broadcast({ type: 'listeners', stationId: this.channelId, ...counts });
    // The peak and distinct count reach the session row coalesced, like the frame.
    this.#show.saveStats(counts.peak, counts.distinct);
  }

  #report(): StationReport {
    const version = Number(this.log.getMeta('reportVersion') ?? '0') + 1;
    this.log.setMeta('reportVersion', String(version));
    const now = Date.now();
    return {
      version,
      ...this.#status(),
      chatMessages: this.#chatMeter.sessionCount,
      messagesPerMinute: this.#chatMeter.perMinute(now),
      reactions: this.#reactions.totals,
      engagement: this.#desk.engagement(),
      ended: this.#show.ended,
      at: now,
    };
  }

  /** Sends the station's full state to the lobby; a failure is retried by the alarm. */
  async #reportToLobby(): Promise<void> {
    try {
      await this.#requireStation();
      await lobby.room(this.env).report(this.#report());
    } catch (err) {
      console.error(`${this.kit.label}: lobby report failed`, err);
      await this.schedule('lobby', Date.now() + LOBBY_RETRY_MS, { ifEarlier: true });
      return;
    }
    if (this.#show.state) {
      await this.schedule('lobby', Date.now() + LOBBY_HEARTBEAT_MS, { ifEarlier: true });
    }
  }

  // ---- access ----------------------------------------------------------------------

  /** The station, kept in this object; read from D1 only the first time (or after an edit). */
  async #requireStation(): Promise<StationInfo> {
    if (!this.#station) {
      const kept = this.log.getMeta('station');
      this.#station =
        kept && this.#station === undefined ? (JSON.parse(kept) as StationInfo) : null;
    }
    if (!this.#station) {
      // A station created after this object first woke is picked up on the next request.
      this.#station = await readStation(this.env.DB, this.channelId);
      if (this.#station) this.log.setMeta('station', JSON.stringify(this.#station));
    }
    return this.#info();
  }

  #info(): StationInfo {
    if (!this.#station) throw new ChannelError(ErrorCode.notFound, 'no such station', 404);
    return this.#station;
  }

  #canManage(user: PublicUser | null): boolean {
    return this.#station ? mayManageStation(this.#station, user) : false;
  }

  async #requireManager(user: PublicUser): Promise<PublicUser> {
    await this.#requireStation();
    if (!this.#canManage(user)) {
      throw new ChannelError(
        ErrorCode.forbidden,
        'only the station owner or an admin may do that',
        403,
      );
    }
    return user;
  }
}
