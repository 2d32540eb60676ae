// The platform channel in the SDK (`client.platform()`): system announcements and market values
// as stores a web app binds to, and `presence.watch(ids)` with a live map of statuses. One socket
// to `/ws/broadcast` carries all three (docs/protocol.md, "Broadcast"; docs/presence.md).
import type {
  Announcement,
  BroadcastServerFrame,
  BroadcastSnapshot,
  MarketValue,
} from '../../worker/protocol/broadcast';
import type { PresenceStatuses, UserStatus } from '../../worker/protocol/presence';
import { MAX_WATCH_IDS } from '../../worker/protocol/wire';
import type { Channel } from './channel';
import { Store } from './me';

/** One `presence.watch(ids)`: the watched users' statuses, kept current. */
export class PresenceWatch {
  readonly statuses = new Store<PresenceStatuses>({});

  constructor(
    readonly ids: readonly string[],
    private readonly stop: (watch: PresenceWatch) => void,
  ) {}

  /** Stops watching these users (other watches go on). */
  unwatch(): void {
    this.stop(this);
  }
}

export class Platform {
  readonly announcements = new Store<Announcement[]>([]);
  readonly market = new Store<Record<string, MarketValue>>({});
  readonly presence: { watch: (ids: readonly string[]) => PresenceWatch };
  readonly #watches = new Set<PresenceWatch>();
  readonly #statuses = new Map<string, UserStatus>();
  readonly #expiry = new Map<string, ReturnType<typeof setTimeout>>();
  #relay: number | null = null;

  constructor(readonly channel: Channel<BroadcastServerFrame, BroadcastSnapshot>) {
    this.presence = { watch: (ids) => this.#watch(ids) };
    channel.on('welcome', (welcome) => {
      const snapshot = (welcome as unknown as { snapshot: BroadcastSnapshot }).snapshot;
      const recovered = (welcome as unknown as { recovery: { recovered: boolean } }).recovery
        .recovered;
      this.#relay = snapshot.relay;
      if (!recovered) this.#setAnnouncements(snapshot.announcements);
      this.#applyMarket(snapshot.market);
      if (this.#watches.size > 0) this.#sendWatch().catch(() => undefined);
    });
    channel.on('announcement.posted', (frame) => {
      const list = this.announcements.get().filter((a) => a.id !== frame.announcement.id);
      this.#setAnnouncements([...list, frame.announcement]);
    });
    channel.on('announcement.withdrawn', (frame) => this.#remove(frame.announcementId));
    channel.on('market.values', (frame) => this.#applyMarket(frame.values));
    channel.on('user.online', (frame) => this.#applyStatus(frame.userId, true, frame));
    channel.on('user.offline', (frame) => this.#applyStatus(frame.userId, false, frame));
  }

  /** The relay this socket is on; a reconnect asks for it again, so a resume finds its log. */
  get relay(): number | null {
    return this.#relay;
  }

  /** The latest value of one key, as a store. */
  marketValue(key: string): Store<MarketValue | undefined> {
    const store = new Store(this.market.get()[key]);
    this.market.subscribe((all) => {
      if (all[key] !== store.get()) store.set(all[key]);
    });
    return store;
  }

  close(): void {
    for (const timer of this.#expiry.values()) clearTimeout(timer);
    this.channel.close();
  }

  #setAnnouncements(list: Announcement[]): void {
    const now = Date.now();
    const active = list.filter((a) => a.expiresAt === null || a.expiresAt > now);
    for (const a of active) {
      if (a.expiresAt === null || this.#expiry.has(a.id)) continue;
      // The server withdraws it too; this only spares a late frame.
      this.#expiry.set(
        a.id,
        setTimeout(() => this.#remove(a.id), a.expiresAt - now),
      );
    }
    this.announcements.set(active);
  }

  #remove(id: string): void {
    const timer = this.#expiry.get(id);
    if (timer !== undefined) clearTimeout(timer);
    this.#expiry.delete(id);
    const list = this.announcements.get();
    if (list.some((a) => a.id === id)) this.announcements.set(list.filter((a) => a.id !== id));
  }

  /** Never an older version after a newer one, whatever order frames arrive in. */
  #applyMarket(values: MarketValue[]): void {
    let next: Record<string, MarketValue> | null = null;
    for (const value of values) {
      const current = (next ?? this.market.get())[value.key];
      if (current && current.version >= value.version) continue;
      next ??= { ...this.market.get() };
      next[value.key] = value;
    }
    if (next) this.market.set(next);
  }

  #watch(ids: readonly string[]): PresenceWatch {
    const watch = new PresenceWatch([...new Set(ids)], (w) => {
      this.#watches.delete(w);
      this.#sendWatch().catch(() => undefined);
    });
    this.#watches.add(watch);
    this.#publish(watch);
    this.#sendWatch().catch(() => undefined);
    return watch;
  }

  /** One socket watches the union of every watch (at most MAX_WATCH_IDS ids). */
  async #sendWatch(): Promise<void> {
    const ids = [...new Set([...this.#watches].flatMap((w) => w.ids))];
    if (ids.length > MAX_WATCH_IDS) {
      throw new Error(`at most ${MAX_WATCH_IDS} watched ids on one connection`);
    }
    const ack = await this.channel.request<{ users: PresenceStatuses }>({
      type: 'presence.watch',
      ids,
    });
    for (const [id, status] of Object.entries(ack.result?.users ?? {})) {
      this.#applyStatus(id, status.online, status);
    }
  }

  #applyStatus(
    userId: string,
    online: boolean,
    status: { version: number; since?: number | null; at?: number },
  ): void {
    const known = this.#statuses.get(userId);
    if (known && known.version >= status.version) return;
    this.#statuses.set(userId, {
      online,
      since: status.since ?? status.at ?? null,
      version: status.version,
    });
    for (const watch of this.#watches) if (watch.ids.includes(userId)) this.#publish(watch);
  }

  #publish(watch: PresenceWatch): void {
    const statuses: PresenceStatuses = {};
    for (const id of watch.ids) {
      statuses[id] = this.#statuses.get(id) ?? { online: false, since: null, version: 0 };
    }
    watch.statuses.set(statuses);
  }
}
