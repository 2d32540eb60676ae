// A broadcast relay: holds a bounded share of the platform's broadcast sockets (at most
// BROADCAST_RELAY_CAPACITY) and serves them what the root decides — announcements (sequenced
// here, resumable), market values (coalesced per key) — and the presence watches of its
// signed-in sockets. docs/protocol.md, "Broadcast"; docs/presence.md.
import { Coalesced } from '../../channel/coalesce';
import { ChannelError } from '../../channel/errors';
import { type Call, ChannelRoom, type Connection, type Handlers } from '../../channel/room';
import type {
  BroadcastSnapshot,
  broadcastFrames,
  RootEvent,
  RootState,
} from '../../protocol/broadcast';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import type { PresenceChange } from '../../protocol/presence';
import { RelayAnnouncements } from './announcements';
import { broadcast, broadcastRoot, marketRate, relayCapacity } from './kind';
import { RelayMarket } from './market';
import { RelayWatches } from './watches';

const ROOT_SEQ = 'root.seq';

export class BroadcastRelay extends ChannelRoom<typeof broadcastFrames, BroadcastSnapshot> {
  readonly #announcements: RelayAnnouncements;
  readonly #market: RelayMarket;
  readonly #marketSend: Coalesced;
  readonly #watches: RelayWatches;
  /** Attach and detach calls to the root, one after another so they arrive in order. */
  #rootCalls: Promise<unknown> = Promise.resolve();
  #attached = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, broadcast);
    this.#announcements = new RelayAnnouncements(this.sql);
    this.#market = new RelayMarket(this.sql);
    this.#marketSend = new Coalesced(this.kit, 'market', 1000 / marketRate(env), () =>
      this.#sendMarket(),
    );
    this.#watches = new RelayWatches(this.sql, env, this.channel);
    // Woken with sockets (after hibernation): the root still counts this relay as attached.
    this.#attached = this.presenceCounts().connections > 0;
  }

  protected override async authorize(_user: PublicUser | null): Promise<void> {
    const cap = relayCapacity(this.env);
    if (this.presenceCounts().connections >= cap) {
      throw new ChannelError(
        ErrorCode.tooManyConnections,
        `this relay holds at most ${cap} sockets`,
        429,
      );
    }
    if (!this.#attached) await this.#rootCall(true);
  }

  protected snapshot(): BroadcastSnapshot {
    return {
      relay: Number(this.channelId),
      announcements: this.#announcements.active(),
      market: this.#market.sent(),
    };
  }

  protected readonly handlers: Handlers<typeof broadcastFrames> = {
    'presence.watch': (call, frame) => this.#watch(call, frame.ids),
  };

  protected override onLeave(conn: Connection): void {
    this.ctx.waitUntil(
      this.exclusive(() => this.#watches.drop(conn.cid)).catch((err: unknown) =>
        console.error(`${this.kit.label}: dropping watches failed`, err),
      ),
    );
    if (this.presenceCounts().connections === 0 && this.#attached) {
      this.ctx.waitUntil(this.#rootCall(false).catch(() => undefined));
    }
  }

  // ---- RPC from the root and the presence shards --------------------------------------

  /** Changes from the root, in its order; `rootSeq` is where the root stands (a gap → pull). */
  deliver(events: RootEvent[], rootSeq: number) {
    return this.rpc(() => this.exclusive(() => this.#deliver(events, rootSeq)));
  }

  presenceChanged(changes: PresenceChange[]) {
    return this.rpc(() => {
      const conns = new Map<string, Connection>();
      for (const conn of this.connections()) conns.set(conn.cid, conn);
      this.#watches.changed(changes, (cids, change) => {
        const frame = {
          type: change.online ? 'user.online' : 'user.offline',
          userId: change.userId,
          at: change.at,
          version: change.version,
        };
        for (const cid of cids) {
          const conn = conns.get(cid);
          if (conn) this.sendTo(conn, frame);
        }
      });
    });
  }

  /** Where this relay stands (tests, operators). */
  relayState() {
    return this.rpc(() => ({
      rootSeq: this.#rootSeq(),
      attached: this.#attached,
      connections: this.presenceCounts().connections,
      announcements: this.#announcements.active().map((a) => a.id),
      marketKeys: this.#market.sent().length,
    }));
  }

  // ---- behaviour -------------------------------------------------------------------

  async #watch(call: Call, ids: string[]) {
    const cid = call.conn?.cid;
    if (!cid) throw new ChannelError(ErrorCode.invalidFrame, 'watch over a socket', 400);
    const users = await this.exclusive(() => this.#watches.watch(cid, ids));
    return { result: { users } };
  }

  async #rootCall(attach: boolean): Promise<void> {
    const root = broadcastRoot.room(this.env);
    const run = this.#rootCalls.then(async () => {
      if (attach) {
        if (this.#attached) return;
        const state = await root.attach(this.channel);
        this.#attached = true;
        await this.exclusive(() => this.#resync(state));
      } else {
        if (!this.#attached || this.presenceCounts().connections > 0) return;
        this.#attached = false;
        await root.detach(this.channel);
      }
    });
    this.#rootCalls = run.catch(() => undefined);
    return run;
  }

  async #deliver(events: RootEvent[], rootSeq: number): Promise<void> {
    let at = this.#rootSeq();
    for (const event of events) {
      if (event.seq <= at) continue;
      if (event.seq > at + 1) break; // a gap: pull the state below
      this.#apply(event);
      at = event.seq;
    }
    if (rootSeq > at) await this.#resync(await broadcastRoot.room(this.env).state());
  }

  #apply(event: RootEvent): void {
    let marketMoved = false;
    this.commit(null, (tx) => {
      switch (event.type) {
        case 'announcement.posted':
          if (this.#announcements.add(event.announcement)) {
            tx.publish({ type: 'announcement.posted', announcement: event.announcement });
          }
          break;
        case 'announcement.withdrawn':
          if (this.#announcements.remove(event.announcementId)) {
            tx.publish({
              type: 'announcement.withdrawn',
              announcementId: event.announcementId,
              reason: event.reason,
            });
          }
          break;
        case 'market.updated':
          marketMoved = this.#market.offer(event.value);
          break;
      }
      this.log.setMeta(ROOT_SEQ, String(event.seq));
      return {};
    });
    if (marketMoved) this.#marketSend.touch();
  }

  /** Brings this relay to the root's state (attach, or a gap): the differences are published. */
  #resync(state: RootState): void {
    if (state.seq < this.#rootSeq()) return;
    let marketMoved = false;
    this.commit(null, (tx) => {
      const live = new Set(state.announcements.map((a) => a.id));
      for (const id of this.#announcements.ids()) {
        if (live.has(id)) continue;
        this.#announcements.remove(id);
        tx.publish({ type: 'announcement.withdrawn', announcementId: id, reason: 'withdrawn' });
      }
      for (const a of state.announcements) {
        if (this.#announcements.add(a))
          tx.publish({ type: 'announcement.posted', announcement: a });
      }
      for (const value of state.market) marketMoved = this.#market.offer(value) || marketMoved;
      this.log.setMeta(ROOT_SEQ, String(state.seq));
      return {};
    });
    if (marketMoved) this.#marketSend.touch();
  }

  #sendMarket(): void {
    let values: ReturnType<RelayMarket['take']> = [];
    try {
      values = this.kit.transaction(() => this.#market.take());
    } catch (err) {
      this.#market.reload();
      throw err;
    }
    if (values.length > 0) this.broadcast({ type: 'market.values', values });
  }

  #rootSeq(): number {
    return Number(this.log.getMeta(ROOT_SEQ) ?? '0');
  }
}
