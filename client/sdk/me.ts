// The signed-in user's own channel (`/ws/me`) in the SDK: typed frames, an unread-count store that
// follows the server (welcome, every `notification.new` and `notifications.read`, on this device
// or any other), the latest balance, and marks acknowledged by request id. After
// `session.revoked` the channel closes with 4401 and does not reconnect (`revoked` is set).
import type { AckFrame } from '../../worker/protocol/core';
import type {
  Balance,
  Notification,
  ReadResult,
  SessionRevokedFrame,
  UserServerFrame,
  UserSnapshot,
} from '../../worker/protocol/user';
import type { Channel } from './channel';

type Listener<T> = (value: T) => void;

/** A value that changes over time: read it, or subscribe (called at once, then on every change). */
export class Store<T> {
  #value: T;
  readonly #listeners = new Set<Listener<T>>();

  constructor(initial: T) {
    this.#value = initial;
  }

  get(): T {
    return this.#value;
  }

  subscribe(listener: Listener<T>): () => void {
    this.#listeners.add(listener);
    listener(this.#value);
    return () => this.#listeners.delete(listener);
  }

  set(value: T): void {
    if (Object.is(value, this.#value)) return;
    this.#value = value;
    for (const listener of this.#listeners) listener(value);
  }
}

export class MeChannel {
  /** The unread count as the server owns it: the badge. */
  readonly unread = new Store<number>(0);
  /** The latest balance (null until a backend sent one). */
  readonly balance = new Store<Balance | null>(null);
  /** Set when the server logged this user out everywhere. */
  revoked: SessionRevokedFrame | null = null;

  constructor(readonly channel: Channel<UserServerFrame, UserSnapshot>) {
    channel.on('welcome', (frame) => {
      const snapshot = (frame as unknown as { snapshot: UserSnapshot }).snapshot;
      this.unread.set(snapshot.unread);
      this.balance.set(snapshot.balance);
    });
    channel.on('notification.new', (frame) => this.unread.set(frame.unread));
    channel.on('notifications.read', (frame) => this.unread.set(frame.unread));
    channel.on('balance.updated', (frame) => {
      const current = this.balance.get();
      if (!current || frame.balance.version > current.version) this.balance.set(frame.balance);
    });
    channel.on('session.revoked', (frame) => {
      this.revoked = frame;
    });
  }

  /** The newest notifications from the last welcome (newest first). */
  get recent(): Notification[] {
    return this.channel.snapshot?.notifications ?? [];
  }

  /** Listens to one frame type (or `*`). Returns the unsubscribe function. */
  on: Channel<UserServerFrame, UserSnapshot>['on'] = (type, listener) =>
    this.channel.on(type, listener);

  /** Marks notifications read by id, or everything created at or before `upTo`. */
  async markRead(target: string[] | { upTo: number }): Promise<ReadResult> {
    const frame = Array.isArray(target)
      ? { type: 'notifications.read', ids: target }
      : { type: 'notifications.read', upTo: target.upTo };
    const ack = (await this.channel.request<ReadResult>(frame)) as AckFrame<ReadResult>;
    return ack.result as ReadResult;
  }

  async markAllRead(): Promise<{ marked: number; unread: number }> {
    const ack = await this.channel.request<{ marked: number; unread: number }>({
      type: 'notifications.read-all',
    });
    return ack.result as { marked: number; unread: number };
  }

  close(): void {
    this.channel.close();
  }
}
