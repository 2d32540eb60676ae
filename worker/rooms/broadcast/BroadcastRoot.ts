// The broadcast root: takes announcements and market values (from admins over REST and from
// trusted backends over the server API), sequences them in its log, and hands every change to
// the relays that hold sockets. It holds no sockets itself. docs/protocol.md, "Broadcast".
import { ChannelError } from '../../channel/errors';
import { Pusher } from '../../channel/pusher';
import { type Call, ChannelRoom, type Handled, type Handlers } from '../../channel/room';
import {
  type Announcement,
  type broadcastRootFrames,
  MAX_ACTIVE_ANNOUNCEMENTS,
  MAX_MARKET_KEYS,
  type MarketValue,
  type RootEvent,
  type RootState,
} from '../../protocol/broadcast';
import { ErrorCode, type FrameOf, type PublicUser } from '../../protocol/core';
import { broadcastRoot, relayStubByName } from './kind';

type RootFrame<K extends keyof typeof broadcastRootFrames> = FrameOf<typeof broadcastRootFrames, K>;

type Unsequenced = RootEvent extends infer E
  ? E extends RootEvent
    ? Omit<E, 'seq'>
    : never
  : never;

const EXPIRE_TASK = 'expire';
const RESYNC_TASK = 'resync';
/** A relay that missed a push is told to catch up this long after. */
const RESYNC_AFTER_MS = 2000;

export class BroadcastRoot extends ChannelRoom<typeof broadcastRootFrames, null> {
  readonly #relays: Pusher<RootEvent>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, broadcastRoot);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS root_announcements (id TEXT PRIMARY KEY,
      expires_at INTEGER, json TEXT NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS root_market (key TEXT PRIMARY KEY,
      version INTEGER NOT NULL, json TEXT NOT NULL)`);
    this.sql.exec('CREATE TABLE IF NOT EXISTS root_relays (name TEXT PRIMARY KEY)');
    this.#relays = new Pusher(
      `BroadcastRoot ${this.channel}`,
      (relay, events) => relayStubByName(env, relay).deliver(events, this.log.seq),
      (p) => ctx.waitUntil(p),
      () => this.kit.scheduleSoon(RESYNC_TASK, Date.now() + RESYNC_AFTER_MS),
    );
    this.kit.task(EXPIRE_TASK, () => this.#expire());
    this.kit.task(RESYNC_TASK, () => this.#resync());
  }

  protected override authorize(): void {
    throw new ChannelError(
      ErrorCode.forbidden,
      'the broadcast root takes no sockets: connect to /ws/broadcast',
      403,
    );
  }

  protected snapshot(): null {
    return null;
  }

  protected readonly handlers: Handlers<typeof broadcastRootFrames> = {
    'announcement.post': (call, frame) => this.#post(call, frame),
    'announcement.withdraw': (call, frame) => this.#withdraw(call, frame.announcementId),
    'market.set': (call, frame) => this.#setMarket(call, frame),
  };

  // ---- RPC -------------------------------------------------------------------------

  /** Everything a relay needs to serve a welcome. */
  state() {
    return this.rpc(() => this.#state());
  }

  /** A relay with sockets: it hears every change from now on, starting from this state. */
  attach(relay: string) {
    return this.rpc(() => {
      this.sql.exec('INSERT OR IGNORE INTO root_relays (name) VALUES (?)', relay);
      return this.#state();
    });
  }

  /** A relay whose last socket left: it is not woken for changes until it attaches again. */
  detach(relay: string) {
    return this.rpc(() => {
      this.sql.exec('DELETE FROM root_relays WHERE name = ?', relay);
    });
  }

  /** The active announcements (public `GET /api/announcements`). */
  announcements() {
    return this.rpc(() => this.#active());
  }

  /** The relays attached now (operators, tests). */
  relays() {
    return this.rpc(() => this.#relayNames());
  }

  // ---- behaviour -------------------------------------------------------------------

  #post(call: Call, frame: RootFrame<'announcement.post'>): Handled {
    mayBroadcast(call.user);
    if (this.#active().length >= MAX_ACTIVE_ANNOUNCEMENTS) {
      throw new ChannelError(
        ErrorCode.tooManyAnnouncements,
        `at most ${MAX_ACTIVE_ANNOUNCEMENTS} active announcements; withdraw one first`,
        409,
      );
    }
    const now = Date.now();
    const announcement: Announcement = {
      id: crypto.randomUUID(),
      message: frame.message,
      level: frame.level,
      createdAt: now,
      expiresAt: frame.expiresInSeconds ? now + frame.expiresInSeconds * 1000 : null,
    };
    const handled = this.#commit(call, (publish) => {
      this.sql.exec(
        'INSERT INTO root_announcements (id, expires_at, json) VALUES (?, ?, ?)',
        announcement.id,
        announcement.expiresAt,
        JSON.stringify(announcement),
      );
      return {
        seq: publish({ type: 'announcement.posted', announcement }),
        result: { announcement },
      };
    });
    if (announcement.expiresAt !== null) this.kit.scheduleSoon(EXPIRE_TASK, announcement.expiresAt);
    return handled;
  }

  #withdraw(call: Call, announcementId: string): Handled {
    mayBroadcast(call.user);
    const found = this.#active().some((a) => a.id === announcementId);
    if (!found) {
      throw new ChannelError(ErrorCode.announcementNotFound, 'no such active announcement', 404);
    }
    return this.#commit(call, (publish) => {
      this.sql.exec('DELETE FROM root_announcements WHERE id = ?', announcementId);
      const seq = publish({ type: 'announcement.withdrawn', announcementId, reason: 'withdrawn' });
      return { seq, result: { announcementId } };
    });
  }

  #setMarket(call: Call, frame: RootFrame<'market.set'>): Handled {
    mayBroadcast(call.user);
    const current = this.sql
      .exec<{ version: number }>('SELECT version FROM root_market WHERE key = ?', frame.key)
      .toArray()[0];
    if (current && current.version >= frame.version) {
      throw new ChannelError(
        ErrorCode.staleMarketValue,
        `"${frame.key}" is at version ${current.version}; send a higher version`,
        409,
      );
    }
    if (!current) {
      const keys = this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM root_market').one().n;
      if (keys >= MAX_MARKET_KEYS) {
        throw new ChannelError(
          ErrorCode.marketKeysFull,
          `at most ${MAX_MARKET_KEYS} market keys`,
          409,
        );
      }
    }
    const value: MarketValue = {
      key: frame.key,
      value: frame.value,
      version: frame.version,
      updatedAt: Date.now(),
    };
    return this.#commit(call, (publish) => {
      this.sql.exec(
        `INSERT INTO root_market (key, version, json) VALUES (?, ?, ?) ON CONFLICT (key)
         DO UPDATE SET version = excluded.version, json = excluded.json`,
        value.key,
        value.version,
        JSON.stringify(value),
      );
      return { seq: publish({ type: 'market.updated', value }), result: { value } };
    });
  }

  /** Commits through the core (log + answer in one transaction), then hands the events on. */
  #commit(call: Call | null, apply: (publish: (event: Unsequenced) => number) => Handled): Handled {
    const events: RootEvent[] = [];
    const handled = this.commit(call, (tx) =>
      apply((event) => {
        const sequenced = tx.publish(event) as RootEvent;
        events.push(sequenced);
        return sequenced.seq;
      }),
    );
    for (const relay of this.#relayNames()) this.#relays.push(relay, ...events);
    return handled;
  }

  #expire(): void {
    const now = Date.now();
    const due = this.#all().filter((a) => a.expiresAt !== null && a.expiresAt <= now);
    if (due.length > 0) {
      this.#commit(null, (publish) => {
        let seq = 0;
        for (const a of due) {
          this.sql.exec('DELETE FROM root_announcements WHERE id = ?', a.id);
          seq = publish({
            type: 'announcement.withdrawn',
            announcementId: a.id,
            reason: 'expired',
          });
        }
        return { seq };
      });
    }
    const next = this.sql
      .exec<{ at: number | null }>('SELECT MIN(expires_at) AS at FROM root_announcements')
      .one().at;
    if (next !== null) this.kit.scheduleSoon(EXPIRE_TASK, next);
  }

  /** Tells every relay where the root is; one that is behind pulls the state. */
  async #resync(): Promise<void> {
    for (const relay of this.#relayNames()) this.#relays.push(relay);
  }

  #state(): RootState {
    const market = this.sql
      .exec<{ json: string }>('SELECT json FROM root_market')
      .toArray()
      .map((r) => JSON.parse(r.json) as MarketValue);
    return { seq: this.log.seq, announcements: this.#active(), market };
  }

  #all(): Announcement[] {
    return this.sql
      .exec<{ json: string }>('SELECT json FROM root_announcements')
      .toArray()
      .map((r) => JSON.parse(r.json) as Announcement)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  #active(now = Date.now()): Announcement[] {
    return this.#all().filter((a) => a.expiresAt === null || a.expiresAt > now);
  }

  #relayNames(): string[] {
    return this.sql
      .exec<{ name: string }>('SELECT name FROM root_relays')
      .toArray()
      .map((r) => r.name);
  }
}

/** Admins (over REST) and the server API (its principal) broadcast; nobody else. */
function mayBroadcast(user: PublicUser): void {
  if (user.role !== 'admin' && user.role !== 'server') {
    throw new ChannelError(ErrorCode.forbidden, 'only admins and the server API broadcast', 403);
  }
}
