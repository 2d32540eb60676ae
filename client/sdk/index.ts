// The Wavecast client SDK: typed REST calls and channel subscriptions. Wire types are imported
// as types only, so a browser bundle carries no server code and no schema library.
import type {
  Announcement,
  BroadcastServerFrame,
  BroadcastSnapshot,
} from '../../worker/protocol/broadcast';
import type {
  Comment,
  CommentRoomSnapshot,
  CommentServerFrame,
} from '../../worker/protocol/comments';
import type { EventRoomSnapshot, EventServerFrame } from '../../worker/protocol/events';
import type { LobbyServerFrame, LobbySnapshot } from '../../worker/protocol/lobby';
import type { PresenceStatuses } from '../../worker/protocol/presence';
import type { StreamServerFrame, StreamSnapshot } from '../../worker/protocol/stream';
import type {
  Balance,
  BalanceInput,
  NotificationPage,
  ReadResult,
  UserServerFrame,
  UserSnapshot,
} from '../../worker/protocol/user';
import { Channel, type ChannelOptions, type ChannelState } from './channel';
import { MeChannel } from './me';
import { Platform } from './platform';

export type * from '../../worker/protocol/broadcast';
export type * from '../../worker/protocol/comments';
export type * from '../../worker/protocol/core';
export type * from '../../worker/protocol/events';
export type * from '../../worker/protocol/lobby';
export type * from '../../worker/protocol/presence';
export type * from '../../worker/protocol/stories';
export type * from '../../worker/protocol/stream';
export type * from '../../worker/protocol/user';
export type { ChannelOptions, ChannelState } from './channel';
export {
  backoffDelay,
  Channel,
  MAX_PENDING_REQUESTS,
  OFFLINE_QUEUE_SIZE,
  RequestError,
} from './channel';
export { MeChannel, Store } from './me';
export { Platform, PresenceWatch } from './platform';

/** A token, or a function (may be async) read before every request and every (re)connect. */
export type TokenSource =
  | string
  | null
  | (() => string | null | undefined | Promise<string | null | undefined>);

/** The worst state among the client's open channels ('open' when it has none). */
export type ConnectionState = ChannelState;

const STATE_RANK: Record<ChannelState, number> = {
  closed: 0,
  open: 1,
  connecting: 2,
  reconnecting: 3,
  offline: 4,
};

export interface ClientOptions {
  baseUrl: string;
  /** A fixed token, or a (possibly async) function read before every request and reconnect. */
  token?: TokenSource;
  /** A WebSocket constructor for runtimes without a global one (e.g. the `ws` package). */
  WebSocket?: unknown;
  fetch?: typeof fetch;
}

export interface SessionUser {
  id: string;
  name: string;
  role: string;
  email: string;
}

export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

export class WavecastClient {
  /** Set by `register`/`login` (or by you); a token function, when given, is asked first. */
  token: string | null;
  readonly #options: ClientOptions;
  readonly #channels = new Set<Channel<{ type: string; seq?: number }, unknown>>();
  readonly #stateListeners = new Set<(state: ConnectionState) => void>();
  #state: ConnectionState = 'open';

  constructor(options: ClientOptions) {
    this.#options = options;
    this.token = typeof options.token === 'string' ? options.token : null;
  }

  /** The token for the next request or connection: the token function's answer, else `token`. */
  async getToken(): Promise<string | null> {
    const source = this.#options.token;
    if (typeof source === 'function') {
      const fresh = await source();
      if (fresh) return fresh;
    }
    return this.token;
  }

  /** The worst connection state among this client's open channels. */
  get connectionState(): ConnectionState {
    return this.#state;
  }

  /** Listens to changes of `connectionState`. Returns the unsubscribe function. */
  onConnectionState(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  #track(channel: Channel<{ type: string; seq?: number }, unknown>): void {
    this.#channels.add(channel);
    channel.onStateChange((state) => {
      if (state === 'closed') this.#channels.delete(channel);
      this.#recompute();
    });
    this.#recompute();
  }

  #recompute(): void {
    let worst: ConnectionState = 'open';
    for (const channel of this.#channels) {
      if (STATE_RANK[channel.state] > STATE_RANK[worst]) worst = channel.state;
    }
    if (worst === this.#state) return;
    this.#state = worst;
    for (const listener of this.#stateListeners) listener(worst);
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const doFetch = this.#options.fetch ?? fetch;
    const token = await this.getToken();
    const res = await doFetch(new URL(path, this.#options.baseUrl), {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : null;
    if (!res.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiRequestError(
        res.status,
        error?.code ?? 'http_error',
        error?.message ?? res.statusText,
      );
    }
    return json as T;
  }

  async register(input: { email: string; password: string; displayName: string; role?: string }) {
    const session = await this.request<{ user: SessionUser; token: string; expiresAt: number }>(
      'POST',
      '/api/auth/register',
      input,
    );
    this.token = session.token;
    return session;
  }

  async login(email: string, password: string) {
    const session = await this.request<{ user: SessionUser; token: string; expiresAt: number }>(
      'POST',
      '/api/auth/login',
      { email, password },
    );
    this.token = session.token;
    return session;
  }

  /** The signed-in account (`GET /api/me`). */
  profile() {
    return this.request<{ user: SessionUser }>('GET', '/api/me');
  }

  /**
   * The signed-in user's own channel (`/ws/me`): notifications, the unread count as a store that
   * follows the server, the balance, `markRead` / `markAllRead`. docs/notifications.md.
   */
  me(options: Partial<ChannelOptions> = {}): MeChannel {
    return new MeChannel(this.channel<UserServerFrame, UserSnapshot>('/ws/me', options));
  }

  /** A page of my notifications, newest first (`before`: the previous page's `nextCursor`). */
  notifications(page: { limit?: number; before?: string; unread?: boolean } = {}) {
    const query = new URLSearchParams();
    if (page.limit) query.set('limit', String(page.limit));
    if (page.before) query.set('before', page.before);
    if (page.unread !== undefined) query.set('unread', String(page.unread));
    const suffix = query.size ? `?${query}` : '';
    return this.request<NotificationPage>('GET', `/api/me/notifications${suffix}`);
  }

  unreadCount() {
    return this.request<{ unread: number }>('GET', '/api/me/notifications/unread-count');
  }

  /** Marks by ids, or everything created at or before `upTo`, over REST. */
  readNotifications(target: { ids: string[] } | { upTo: number }) {
    return this.request<ReadResult & { seq?: number }>(
      'POST',
      '/api/me/notifications/read',
      target,
    );
  }

  readAllNotifications() {
    return this.request<{ marked: number; unread: number; seq?: number }>(
      'POST',
      '/api/me/notifications/read-all',
    );
  }

  balance() {
    return this.request<{ balance: Balance | null }>('GET', '/api/me/balance');
  }

  /** Logs this user out on every device; this client's token stops working too. */
  async logoutAll() {
    const result = await this.request<{ revokedAt: number; closed: number }>(
      'POST',
      '/api/me/logout-all',
    );
    this.token = null;
    return result;
  }

  /** Admins: carry a user's balance (until the server publish API does). */
  setBalance(userId: string, balance: BalanceInput) {
    return this.request<{ balance: Balance; applied: boolean }>(
      'POST',
      `/api/admin/users/${encodeURIComponent(userId)}/balance`,
      balance,
    );
  }

  comments(itemId: string, page: { before?: string; limit?: number } = {}) {
    const query = new URLSearchParams();
    if (page.before) query.set('before', page.before);
    if (page.limit) query.set('limit', String(page.limit));
    const suffix = query.size ? `?${query}` : '';
    return this.request<{ comments: Comment[]; nextCursor: string | null }>(
      'GET',
      `/api/items/${encodeURIComponent(itemId)}/comments${suffix}`,
    );
  }

  postComment(itemId: string, body: string, idempotencyKey?: string) {
    return this.request<{ comment: Comment; seq: number }>(
      'POST',
      `/api/items/${encodeURIComponent(itemId)}/comments`,
      { body },
      idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    );
  }

  /** Any channel by path; the kind-specific helpers below only add types. */
  channel<F extends { type: string; seq?: number }, S = unknown>(
    path: string,
    options: Partial<ChannelOptions> = {},
  ): Channel<F, S> {
    const channel = new Channel<F, S>({
      baseUrl: this.#options.baseUrl,
      path,
      token: () => this.getToken(),
      WebSocket: this.#options.WebSocket,
      ...options,
    });
    this.#track(channel as unknown as Channel<{ type: string; seq?: number }, unknown>);
    return channel;
  }

  commentRoom(itemId: string, options: Partial<ChannelOptions> = {}) {
    return this.channel<CommentServerFrame, CommentRoomSnapshot>(
      `/ws/comments/${encodeURIComponent(itemId)}`,
      options,
    );
  }

  /** A live station: live state, now playing, listener counts, chat, reactions. */
  station(stationId: string, options: Partial<ChannelOptions> = {}) {
    return this.channel<StreamServerFrame, StreamSnapshot>(
      `/ws/stations/${encodeURIComponent(stationId)}`,
      options,
    );
  }

  /** A bookable event: capacity, available seats, bookings, transfers, updates. */
  event(eventId: string, options: Partial<ChannelOptions> = {}) {
    return this.channel<EventServerFrame, EventRoomSnapshot>(
      `/ws/events/${encodeURIComponent(eventId)}`,
      options,
    );
  }

  /**
   * The platform channel (`/ws/broadcast`): announcements and market values as stores, and
   * `presence.watch(ids)` (signed in). Reconnects go back to the same relay, so they resume.
   */
  platform(options: Partial<ChannelOptions> = {}): Platform {
    let platform: Platform | null = null;
    const channel = this.channel<BroadcastServerFrame, BroadcastSnapshot>('/ws/broadcast', {
      query: (): Record<string, string> =>
        platform?.relay == null ? {} : { relay: String(platform.relay) },
      ...options,
    });
    platform = new Platform(channel);
    return platform;
  }

  /** Who of these users is online now (signed in; at most 500 ids). */
  presence(ids: readonly string[]) {
    const query = new URLSearchParams({ ids: ids.join(',') });
    return this.request<{ users: PresenceStatuses }>('GET', `/api/presence?${query}`);
  }

  /** The active system announcements. */
  announcements() {
    return this.request<{ announcements: Announcement[] }>('GET', '/api/announcements');
  }

  /** The platform lobby: the directory of live stations with listener counts. */
  lobby(options: Partial<ChannelOptions> = {}) {
    return this.channel<LobbyServerFrame, LobbySnapshot>('/ws', options);
  }
}
export * from './station';
