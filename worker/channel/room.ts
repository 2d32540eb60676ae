// The channel core every kind builds on: hibernatable sockets with lazily read attachments, the
// welcome, frame validation and limits, request ids (acks, dedupe, replays), the one commit point
// (log + dedupe + outbox in one transaction), the sequence log and resume, presence, caps, alarms.
// A kind extends this once, passing its declaration, and composes lanes for what it shares with
// other kinds (messages, coalesced values). docs/architecture.md explains the flow.
import { DurableObject } from 'cloudflare:workers';
import {
  CloseCode,
  ErrorCode,
  type FrameMap,
  type FrameOf,
  HEARTBEAT_REQUEST,
  HEARTBEAT_RESPONSE,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  type PresenceSnapshot,
  type PublicUser,
  type RecoveryInfo,
  SERVER_PRINCIPAL,
  type Sequenced,
  type WelcomeFrame,
} from '../protocol/core';
import { appEvent } from './app-events';
import { ChannelError } from './errors';
import { Fanout } from './fanout';
import { frameBytes, isRtt, parseFrame } from './frames';
import { readForwarded } from './identity';
import type { Kind, RpcResult } from './kind';
import { RequestLedger, requestHash } from './ledger';
import { type Retention, SequenceLog } from './log';
import { ChannelMetrics, RTT_SAMPLE_MS } from './metrics';
import { Outbox } from './outbox';
import { DEFAULT_USER_CONNECTIONS, quotaOf } from './quota';
import type { BucketOptions } from './rate-limit';
import { type Attachment, type Connection, Roster, tagsFor } from './roster';
import { TaskScheduler } from './tasks';

export type { Attachment, Connection } from './roster';

export interface RoomOptions {
  retention: Retention;
  rate: BucketOptions;
  /** `members` presence sends counts instead of each join and leave past this many users. */
  memberLimit: number;
}

export const DEFAULT_ROOM_OPTIONS: RoomOptions = {
  retention: { maxEvents: 1000, maxAgeMs: 24 * 60 * 60 * 1000 },
  rate: { capacity: 20, refillPerSecond: 10, maxWarnings: 5 },
  memberLimit: 100,
};

/** Door limits, configurable per deployment (`[vars]`); docs/protocol.md, "Limits". */
export const DEFAULT_CAPS = { perUser: 10, perAddress: 500 };

/** What a frame handler returns: the ack's result and, if it published one, the event's seq. */
export interface Handled {
  result?: unknown;
  seq?: number;
}

/** Who is asking, over which path, and under which request id. */
export interface Call {
  /** Every handled frame has a signed-in author: anonymous sockets only read (`write` rule). */
  readonly user: PublicUser;
  /** The socket the frame came on; null for a request that came over REST. */
  readonly conn: Connection | null;
  /** Dedupe key (user or connection scoped) and request fingerprint, when the request has an id. */
  readonly key?: string;
  readonly hash?: string;
  /** The answer stored with a committed change (set by `commit`). */
  answered?: Handled;
  /** When the object started on this request (publish-to-last-write latency starts here). */
  readonly receivedAt?: number;
}

export type Handlers<M extends FrameMap> = {
  [K in keyof M & string]: (call: Call, frame: FrameOf<M, K>) => Handled | Promise<Handled>;
};

/** The writes of one commit: sequenced events and outbox rows, applied together or not at all. */
export interface Tx {
  publish<E extends { type: string }>(event: E): E & Sequenced;
  outbox(op: string, payload: unknown): void;
}

/** What a room lends the lanes it is composed of. */
export interface ChannelKit {
  readonly label: string;
  readonly sql: SqlStorage;
  readonly log: SequenceLog;
  readonly outbox: Outbox;
  readonly env: Env;
  /** With a `call`, `apply` returns the request's answer (`{ seq, result }`), stored with it. */
  commit<T extends Handled>(call: Call | null, apply: (tx: Tx) => T): T;
  /** Runs `fn` in one SQLite transaction (no events, no outbox). */
  transaction<T>(fn: () => T): T;
  broadcast(frame: object, filter?: (conn: Connection) => boolean): void;
  task(name: string, run: () => void | Promise<void>): void;
  schedule(name: string, at: number, opts?: { ifEarlier?: boolean }): Promise<void>;
  /** Schedules a task (if nothing earlier is due) without awaiting the alarm write. */
  scheduleSoon(name: string, at: number): void;
}

const SWEEP_TASK = 'sweep';
/** Frames starting within this long of each other (100 a second and more): the object is busy. */
const BUSY_GAP_MS = 10;
const OUTBOX_TASK = 'outbox';
/** Backstop for the outbox: if nothing else flushes it, the alarm does. */
const OUTBOX_BACKSTOP_MS = 5000;

export interface ChannelStats {
  channel: string;
  kind: string;
  since: number;
  connections: number;
  users: number;
  seq: number;
  outboxPending: number;
  outboxLagMs: number;
  wakes: { fetches: number; frames: number; alarms: number; rpcs: number; closes: number };
}

export abstract class ChannelRoom<M extends FrameMap, Snapshot> extends DurableObject<Env> {
  /** The channel's name (`<prefix>:<id>`), from the object's own id. */
  protected readonly channel: string;
  /** The id inside the channel name. */
  protected readonly channelId: string;
  protected readonly sql: SqlStorage;
  protected readonly log: SequenceLog;
  protected readonly options: RoomOptions;
  protected readonly kit: ChannelKit;
  protected abstract readonly handlers: Handlers<M>;
  readonly #kind: Kind<M>;
  readonly #roster: Roster;
  readonly #fanout: Fanout;
  readonly #ledger: RequestLedger;
  readonly #tasks: TaskScheduler;
  readonly #outbox: Outbox;
  readonly #metrics: ChannelMetrics;
  readonly #taskRunners = new Map<string, () => void | Promise<void>>();
  readonly #stats: ChannelStats['wakes'] = { fetches: 0, frames: 0, alarms: 0, rpcs: 0, closes: 0 };
  readonly #since = Date.now();
  #queue: Promise<unknown> = Promise.resolve();
  #ready: Promise<void> | null = null;
  #outboxArmed = false;
  #busySince = 0;
  #lastFrameAt = 0;
  #presenceCountsDue = false;

  constructor(
    ctx: DurableObjectState,
    env: Env,
    kind: Kind<M>,
    options: Partial<RoomOptions> = {},
  ) {
    super(ctx, env);
    const name = ctx.id.name;
    if (!name) throw new Error(`${kind.kind}: a channel object must be reached by name`);
    this.#kind = kind;
    this.channel = name;
    this.channelId = kind.idOf(name);
    this.options = { ...DEFAULT_ROOM_OPTIONS, ...options };
    this.sql = ctx.storage.sql;
    this.log = new SequenceLog(this.sql, this.options.retention);
    this.#roster = new Roster(this.options.rate);
    this.#fanout = new Fanout(this.#roster, (ms) => this.#metrics.publishWritten(ms));
    this.#ledger = new RequestLedger(this.sql);
    this.#tasks = new TaskScheduler(this.sql, ctx.storage);
    const label = `${this.constructor.name} ${name}`;
    this.#metrics = new ChannelMetrics({
      channel: name,
      kind: kind.kind,
      label,
      env,
      sql: this.sql,
      presence: () => this.#roster.counts(),
      sent: () => this.#fanout.counts,
    });
    this.#outbox = new Outbox(this.sql, {
      label,
      d1: env.DB,
      env,
      scheduleFlush: (at) => this.#tasks.schedule(OUTBOX_TASK, at, { ifEarlier: true }),
    });
    this.kit = {
      label,
      sql: this.sql,
      log: this.log,
      outbox: this.#outbox,
      env,
      commit: (call, apply) => this.commit(call, apply),
      transaction: (fn) => ctx.storage.transactionSync(fn),
      broadcast: (frame, filter) => this.broadcast(frame, filter),
      task: (taskName, run) => {
        this.#taskRunners.set(taskName, run);
      },
      schedule: (taskName, at, opts) => this.schedule(taskName, at, opts),
      scheduleSoon: (taskName, at) => {
        this.ctx.waitUntil(
          this.schedule(taskName, at, { ifEarlier: true }).catch((err: unknown) => {
            console.error(`${label}: scheduling ${taskName} failed`, err);
          }),
        );
      },
    };
    this.#taskRunners.set(SWEEP_TASK, () => this.sweep().then(() => undefined));
    this.#taskRunners.set(OUTBOX_TASK, () => this.#flushOutbox());
    this.#taskRunners.set('presence-counts', () => this.#sendPresenceCounts());
    ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE),
    );
    // After hibernation or eviction the sockets are still here: rebuild the roster from their
    // tags. Attachments are read later, only for the sockets something asks about.
    for (const ws of ctx.getWebSockets()) this.#roster.add(ws, ctx.getTags(ws));
    // A commit whose D1 write had not happened when the object stopped is written now (after
    // the constructor, once the kind has registered its outbox writers).
    if (this.#outbox.pending() > 0) {
      ctx.waitUntil(Promise.resolve().then(() => this.#flushOutbox()));
    }
  }

  // ---- what a kind provides ----------------------------------------------------------

  /** The channel's current state, taken synchronously so it matches `log.seq` exactly. */
  protected abstract snapshot(conn: Connection): Snapshot;

  /**
   * Loads what the room keeps outside its own storage, once per instance, before its first
   * request (not before alarms or closes). Most kinds need nothing: their state is in SQLite.
   */
  protected async load(): Promise<void> {}

  /**
   * Refuses server API calls for a channel whose subject does not exist (an event, a station
   * that was never created): throw a 404 ChannelError. Most kinds accept any id.
   */
  protected mustExist(): void | Promise<void> {}

  /** Refuses a connection before it is accepted (throw a ChannelError). */
  protected authorize(_user: PublicUser | null): void | Promise<void> {}

  protected onJoin(_conn: Connection, _firstOfUser: boolean): void {}
  protected onLeave(_conn: Connection, _lastOfUser: boolean): void {}

  /** Runs once per instance before the first request; a failed load fails only that request. */
  protected ready(): Promise<void> {
    if (!this.#ready) {
      // A throw inside blockConcurrencyWhile resets the whole object (and its sockets), so a
      // failed load (say, a D1 hiccup) is caught there, fails only this request, and the next
      // request loads again.
      this.#ready = this.ctx
        .blockConcurrencyWhile(async () => {
          try {
            await this.load();
            return null;
          } catch (err) {
            return err;
          }
        })
        .then((err) => {
          if (err === null) return;
          this.#ready = null;
          throw err;
        });
    }
    return this.#ready;
  }

  // ---- connecting ------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    this.#stats.fetches += 1;
    try {
      return await this.#connect(request);
    } finally {
      this.#metrics.settle();
    }
  }

  async #connect(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return refusal(
        new ChannelError(ErrorCode.upgradeRequired, 'expected a WebSocket upgrade', 426),
      );
    }
    const { user, address, issuedAt } = readForwarded(request);
    const cid = crypto.randomUUID();
    try {
      await this.ready();
      await this.authorize(user);
      this.#checkCaps(user, address);
      if (user) await this.#takeLease(user, cid, issuedAt);
    } catch (err) {
      if (!(err instanceof ChannelError)) throw err;
      this.#metrics.refused(err.code);
      return refusal(err);
    }
    const url = new URL(request.url);
    const since = url.searchParams.get('since');
    const epoch = url.searchParams.get('epoch');

    // Frames still waiting in a batch window are already in the snapshot below: send them to
    // the sockets they were meant for before this one joins.
    this.#fanout.flush();
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const now = Date.now();
    const att: Attachment = { cid, user, connectedAt: now, seenAt: now };
    const tags = tagsFor(att, address);
    this.ctx.acceptWebSocket(server, tags);
    server.serializeAttachment(att);
    const added = this.#roster.add(server, tags, att);
    if (!added) throw new Error('accepted a socket without a connection id');
    const { conn, firstOfUser } = added;
    conn.lastSeen = now;
    this.#metrics.opened(this.#roster.counts().connections);
    const rtt = url.searchParams.get('rtt');
    if (rtt !== null && isRtt(Number(rtt))) this.#noteRtt(conn, Number(rtt), now);

    // Everything from here to the end of the replay is synchronous, so no event can slip
    // between the snapshot, the welcome's seq and the replayed frames.
    let recovery: RecoveryInfo = { requested: false, recovered: false, missed: 0 };
    let replay: string[] = [];
    if (since !== null && epoch !== null) {
      const resumed = this.log.resume(Number(since), epoch);
      replay = resumed.recovered ? resumed.events : [];
      recovery = { requested: true, recovered: resumed.recovered, missed: replay.length };
      this.#metrics.resumed(resumed.recovered);
    }
    const welcome: WelcomeFrame<Snapshot> = {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      connectionId: att.cid,
      channel: this.channel,
      kind: this.#kind.kind,
      user,
      seq: this.log.seq,
      epoch: this.log.epoch,
      snapshot: this.snapshot(conn),
      recovery,
    };
    // Through the fanout (its window was just flushed, so these go out at once) to be counted.
    this.#fanout.send(conn, JSON.stringify(welcome));
    for (const frame of replay) this.#fanout.send(conn, frame);

    if (user && firstOfUser) this.#presenceChanged({ type: 'presence.joined', user }, conn);
    this.onJoin(conn, firstOfUser);
    await this.schedule(SWEEP_TASK, now + this.#sweepIntervalMs(), { ifEarlier: true });
    return new Response(null, { status: 101, webSocket: client });
  }

  #checkCaps(user: PublicUser | null, address: string): void {
    const perUser = Number(this.env.MAX_CONNECTIONS_PER_USER_PER_CHANNEL || DEFAULT_CAPS.perUser);
    const perAddress = Number(
      this.env.MAX_CONNECTIONS_PER_ADDRESS_PER_CHANNEL || DEFAULT_CAPS.perAddress,
    );
    if (user && this.#roster.connectionsOfUser(user.id) >= perUser) {
      throw new ChannelError(
        ErrorCode.tooManyConnections,
        `at most ${perUser} connections per user on one channel; close another tab first`,
        429,
      );
    }
    if (this.#roster.connectionsFrom(address) >= perAddress) {
      throw new ChannelError(
        ErrorCode.tooManyConnections,
        `at most ${perAddress} connections from one address on one channel`,
        429,
      );
    }
  }

  /** The platform-wide cap: one lease per open socket in the user's quota object. */
  async #takeLease(user: PublicUser, cid: string, issuedAt: number | null): Promise<void> {
    const limit = Number(this.env.MAX_CONNECTIONS_PER_USER || DEFAULT_USER_CONNECTIONS);
    const holder = { binding: this.#kind.binding, channel: this.channel };
    const lease = await quotaOf(this.env, user.id).acquire(cid, holder, limit, issuedAt);
    if (lease === true) return;
    if (lease === 'revoked') {
      throw new ChannelError(
        ErrorCode.tokenRevoked,
        'this token was issued before a "log out everywhere": sign in again',
        401,
      );
    }
    throw new ChannelError(
      ErrorCode.tooManyConnections,
      `at most ${limit} open connections per user across the platform; close some first`,
      429,
    );
  }

  /** Closes every socket of a user here (asked by a user's quota on "log out everywhere"). */
  disconnectUser(userId: string, code: number, reason: string): number {
    const conns = this.#roster.ofUser(userId);
    for (const conn of conns) this.closeConnection(conn, code, reason);
    this.#metrics.settle();
    return conns.length;
  }

  /** Which of these connection ids this channel still holds (asked by a user's quota). */
  holding(cids: string[]): string[] {
    const held = new Set([...this.#roster.all()].map((c) => c.cid));
    return cids.filter((cid) => held.has(cid));
  }

  // ---- frames ----------------------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const conn = this.#roster.find(ws);
    if (!conn) return; // not a socket this room accepted
    this.#stats.frames += 1;
    this.#metrics.frameReceived();
    const started = Date.now();
    try {
      await this.ready();
      await this.#handleMessage(conn, message);
    } catch (err) {
      console.error(`${this.kit.label}: frame failed`, err);
      this.sendTo(conn, { type: 'error', code: ErrorCode.internal, message: 'internal error' });
    } finally {
      // Only the awaited part shows: the clock does not move while code runs (docs/operations.md).
      this.#metrics.frameHandled(Date.now() - started);
      this.#metrics.settle();
    }
  }

  async #handleMessage(conn: Connection, message: string | ArrayBuffer): Promise<void> {
    const now = Date.now();
    // Frames that queued while the object was busy arrive bunched; the rate limit judges the
    // client by how long the object has been busy, not by how fast it caught up. (The clock
    // stands still inside a handler, so "busy" is read from the starts of frames: back to back.)
    if (now - this.#lastFrameAt > BUSY_GAP_MS) this.#busySince = now;
    this.#lastFrameAt = now;
    await this.#judgeAndRun(conn, message, now);
  }

  async #judgeAndRun(conn: Connection, message: string | ArrayBuffer, now: number): Promise<void> {
    conn.noteFrame(now, this.#heartbeatTimeoutMs() / 3);
    if (frameBytes(message) > MAX_FRAME_BYTES) {
      this.#metrics.refused('frame_too_big');
      this.closeConnection(conn, CloseCode.tooBig, `frame over ${MAX_FRAME_BYTES} bytes`);
      return;
    }
    const taken = conn.bucket.take(now, now - this.#busySince);
    if (taken === 'close') {
      this.#metrics.refused('rate_limit_close');
      this.closeConnection(conn, CloseCode.rateLimited, 'too many frames');
      return;
    }
    if (taken === 'warn') {
      this.#metrics.refused('rate_limited');
      const warning = new ChannelError(ErrorCode.rateLimited, 'slow down: frame dropped');
      this.sendTo(conn, warning.toFrame());
      return;
    }
    const parsed = parseFrame(message, this.#kind.frames);
    const id = parsed.id;
    if (parsed.rtt !== undefined) this.#noteRtt(conn, parsed.rtt, now);
    if ('error' in parsed) {
      this.sendTo(conn, parsed.error.toFrame(id));
      return;
    }
    if (parsed.frame.type === 'ping') {
      this.sendTo(conn, id === undefined ? { type: 'pong' } : { type: 'pong', id });
      return;
    }
    const user = conn.user;
    try {
      if (!user) {
        throw new ChannelError(
          ErrorCode.authRequired,
          'anonymous connections can read but not write: sign in first',
          401,
        );
      }
      const key = id === undefined ? undefined : `u:${user.id}:${id}`;
      const { value, duplicate } = await this.#run(
        { user, conn, receivedAt: now, ...(key ? { key, hash: requestHash(parsed.frame) } : {}) },
        parsed.frame as FrameOf<M, keyof M & string>,
      );
      if (id === undefined || conn.ws.readyState !== WebSocket.OPEN) return;
      const ack = { type: 'ack', id, ...value, ...(duplicate ? { duplicate: true } : {}) };
      this.#fanout.send(conn, JSON.stringify(ack));
    } catch (err) {
      if (!(err instanceof ChannelError)) throw err;
      this.sendTo(conn, err.toFrame(id));
    }
  }

  /** A client's heartbeat round trip (docs/operations.md): one sample per connection at most
   * every RTT_SAMPLE_MS, whatever the client sends. */
  #noteRtt(conn: Connection, ms: number, now: number): void {
    if (now - conn.rttAt < RTT_SAMPLE_MS) return;
    conn.rttAt = now;
    this.#metrics.rtt(ms);
  }

  /** One path for a frame, from a socket or from REST: write rule, dedupe, handler. */
  async #run(
    call: Call,
    frame: FrameOf<M, keyof M & string>,
  ): Promise<{ value: Handled; duplicate: boolean }> {
    if (this.#kind.write === 'nobody') {
      throw new ChannelError(ErrorCode.forbidden, 'this channel is read-only', 403);
    }
    const handler = this.handlers[frame.type as keyof M & string] as (
      call: Call,
      frame: FrameOf<M, keyof M & string>,
    ) => Handled | Promise<Handled>;
    const { key, hash } = call;
    if (!key || !hash) return { value: await handler(call, frame), duplicate: false };
    return this.#ledger.once(
      key,
      hash,
      async () => {
        const handled = await handler(call, frame);
        if (call.answered && JSON.stringify(call.answered) !== JSON.stringify(handled)) {
          // A handler must answer with what its commit returned; if not, replays would differ.
          console.error(`${this.kit.label}: ${frame.type} answered differently than it committed`);
          this.#ledger.store(key, hash, handled);
        }
        return handled;
      },
      () => call.answered !== undefined,
    );
  }

  /**
   * A client request that arrived over REST: validated like a socket frame and run through the
   * same handler, with `requestId` (the Idempotency-Key) deduped exactly like a frame's `id`.
   */
  async request(user: PublicUser, frame: { type: string }, requestId?: string) {
    return this.rpc(async () => {
      const parsed = parseFrame(JSON.stringify(frame), this.#kind.frames);
      if ('error' in parsed) throw parsed.error;
      const key = requestId === undefined ? undefined : `u:${user.id}:${requestId}`;
      return this.#run(
        {
          user,
          conn: null,
          receivedAt: Date.now(),
          ...(key ? { key, hash: requestHash(parsed.frame) } : {}),
        },
        parsed.frame as FrameOf<M, keyof M & string>,
      );
    });
  }

  // ---- the server API (docs/server-api.md) ------------------------------------------

  /**
   * An app event from a trusted backend: checked (name, size, the kind's reserved names),
   * sequenced, stored and sent like every event of the channel. `requestId` (the call's
   * Idempotency-Key) is deduped in the channel's own ledger, in the commit that publishes.
   */
  publishApp(type: string, data: unknown, requestId?: string) {
    return this.#serverRpc(async () => {
      const event = appEvent(type, data, this.#kind.reservedEvents ?? []);
      const key = requestId === undefined ? undefined : `u:${SERVER_PRINCIPAL.id}:${requestId}`;
      const call: Call = {
        user: SERVER_PRINCIPAL,
        conn: null,
        receivedAt: Date.now(),
        ...(key ? { key, hash: requestHash({ publish: event }) } : {}),
      };
      const run = async (): Promise<Handled> =>
        this.commit(call, (tx) => ({
          seq: tx.publish(event).seq,
          result: { channel: this.channel, type: event.type },
        }));
      if (!call.key || !call.hash) return { value: await run(), duplicate: false };
      return this.#ledger.once(call.key, call.hash, run, () => call.answered !== undefined);
    });
  }

  /** Who is connected (the kind's presence view) and the channel's position. */
  channelInfo() {
    return this.#serverRpc(() => {
      return {
        channel: this.channel,
        kind: this.#kind.kind,
        seq: this.log.seq,
        epoch: this.log.epoch,
        presence: this.presenceSnapshot(),
      };
    });
  }

  /** The newest retained events (oldest first), or those before `before`. */
  recentEvents(limit: number, before?: number) {
    return this.#serverRpc(() => {
      const events = this.log.recent(limit, before).map((json) => JSON.parse(json) as unknown);
      return { channel: this.channel, seq: this.log.seq, epoch: this.log.epoch, events };
    });
  }

  /** A server API call: a channel whose subject does not exist (its load or `mustExist` says
   * 404) is `unknown_channel`, whatever the kind calls it. */
  async #serverRpc<T>(body: () => Promise<T> | T): Promise<RpcResult<T>> {
    const result = await this.rpc(async () => {
      await this.mustExist();
      return body();
    });
    if (result.ok || result.error.status !== 404) return result;
    return {
      ok: false,
      error: { code: ErrorCode.unknownChannel, message: `no channel ${this.channel}`, status: 404 },
    };
  }

  /** Serialises async work that must not interleave (a read of D1 followed by a commit). */
  protected exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Wraps an RPC body so a ChannelError crosses the RPC boundary as data, not as a thrown error. */
  protected async rpc<T>(body: () => Promise<T> | T): Promise<RpcResult<T>> {
    this.#stats.rpcs += 1;
    try {
      await this.ready();
      return { ok: true, value: await body() };
    } catch (err) {
      if (err instanceof ChannelError) {
        return { ok: false, error: { code: err.code, message: err.message, status: err.status } };
      }
      console.error(`${this.kit.label}: rpc failed`, err);
      throw err;
    } finally {
      this.#metrics.settle();
    }
  }

  // ---- the one commit point --------------------------------------------------------

  /**
   * Commits a change: everything `apply` writes (the kind's own tables, sequenced events, outbox
   * rows) and the request's answer go into one SQLite transaction. Events reach sockets after
   * the commit, in seq order; D1 follows from the outbox. `apply` must be synchronous.
   */
  protected commit<T extends Handled>(call: Call | null, apply: (tx: Tx) => T): T {
    const frames: string[] = [];
    let outboxRows = 0;
    const tx: Tx = {
      publish: (event) => {
        const { frame, json } = this.log.append(event);
        frames.push(json);
        return frame;
      },
      outbox: (op, payload) => {
        this.#outbox.add(op, payload);
        outboxRows += 1;
      },
    };
    let result: T;
    try {
      result = this.ctx.storage.transactionSync(() => {
        const value = apply(tx);
        if (call?.key && call.hash) {
          this.#ledger.store(call.key, call.hash, value);
          call.answered = value;
        }
        return value;
      });
    } catch (err) {
      // Rolled back: the log's position in memory must match storage again.
      this.log.reload();
      throw err;
    }
    const since = call?.receivedAt ?? Date.now();
    for (const json of frames) this.#fanout.broadcast(json, undefined, since);
    if (frames.length > 0) this.#metrics.published(frames.length);
    if (outboxRows > 0) this.#kickOutbox();
    return result;
  }

  /** Stores a durable event in the log under the next seq and sends it to every socket. */
  protected publish<E extends { type: string }>(event: E): E & Sequenced {
    return this.commit(null, (tx) => tx.publish(event));
  }

  #kickOutbox(): void {
    if (!this.#outboxArmed) {
      this.#outboxArmed = true;
      this.ctx.waitUntil(
        this.#tasks
          .schedule(OUTBOX_TASK, Date.now() + OUTBOX_BACKSTOP_MS, { ifEarlier: true })
          .catch((err: unknown) => console.error(`${this.kit.label}: outbox alarm`, err)),
      );
    }
    this.ctx.waitUntil(this.#flushOutbox());
  }

  async #flushOutbox(): Promise<void> {
    await this.#outbox.flush();
    if (this.#outbox.pending() === 0) this.#outboxArmed = false;
    else
      await this.#tasks.schedule(OUTBOX_TASK, Date.now() + OUTBOX_BACKSTOP_MS, { ifEarlier: true });
  }

  // ---- broadcasting ----------------------------------------------------------------

  /** Sends an ephemeral frame (never stored, never sequenced). */
  protected broadcast(frame: object, filter?: (conn: Connection) => boolean): void {
    this.broadcastRaw(JSON.stringify(frame), filter);
  }

  protected broadcastRaw(json: string, filter?: (conn: Connection) => boolean): void {
    this.#fanout.broadcast(json, filter);
  }

  /** Sends one socket a frame, after every broadcast that came before it. */
  protected sendTo(conn: Connection, frame: object): void {
    if ('type' in frame && frame.type === 'error' && 'code' in frame) {
      this.#metrics.error(String(frame.code));
    }
    this.#fanout.send(conn, JSON.stringify(frame));
  }

  protected connections(): IterableIterator<Connection> {
    return this.#roster.all();
  }

  /** Closes every socket of a user (ban, forced logout). */
  protected closeUser(userId: string, code: number, reason: string): void {
    for (const conn of this.#roster.ofUser(userId)) this.closeConnection(conn, code, reason);
  }

  /** Closes one socket and takes it off the roster at once (not waiting for its close event). */
  protected closeConnection(conn: Connection, code: number, reason: string): void {
    try {
      conn.ws.close(code, reason);
    } catch {
      // already closing
    }
    this.#untrack(conn, code);
  }

  // ---- presence --------------------------------------------------------------------

  protected presenceCounts(): { users: number; connections: number } {
    return this.#roster.counts();
  }

  protected presenceSnapshot(): PresenceSnapshot {
    const counts = this.#roster.counts();
    if (this.#kind.presence === 'counts') return counts;
    const limit = this.options.memberLimit;
    return {
      ...counts,
      members: this.#roster.members(limit),
      ...(counts.users > limit ? { membersTruncated: true } : {}),
    };
  }

  /**
   * A user arrived or left. Up to the member limit every member hears who; past it, a crowd
   * of N would cost N² frames, so members get the counts instead, at most once a second.
   */
  #presenceChanged(
    change: { type: 'presence.joined' | 'presence.left'; user: PublicUser },
    except?: Connection,
  ): void {
    if (this.#kind.presence !== 'members') return;
    const counts = this.#roster.counts();
    const crowd = this.options.memberLimit;
    if (counts.users <= crowd) {
      this.broadcast({ ...change, ...counts }, except ? (other) => other !== except : undefined);
      return;
    }
    if (this.#presenceCountsDue) return;
    this.#presenceCountsDue = true;
    this.ctx.waitUntil(this.schedule('presence-counts', Date.now() + 1000, { ifEarlier: true }));
  }

  #sendPresenceCounts(): void {
    this.#presenceCountsDue = false;
    this.broadcast({ type: 'presence.counts', ...this.#roster.counts() });
  }

  /** Takes a connection off the roster once; announces the user's leave if it was their last. */
  #untrack(conn: Connection, code: number): void {
    const removed = this.#roster.remove(conn);
    if (!removed) return;
    this.#metrics.closed(code);
    if (conn.userId) {
      this.ctx.waitUntil(
        quotaOf(this.env, conn.userId)
          .release(conn.cid)
          .catch((err: unknown) => console.error(`${this.kit.label}: lease release failed`, err)),
      );
    }
    if (conn.userId && removed.lastOfUser) {
      const user = conn.user;
      if (user) this.#presenceChanged({ type: 'presence.left', user });
    }
    this.onLeave(conn, removed.lastOfUser);
  }

  // ---- closing ---------------------------------------------------------------------

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#stats.closes += 1;
    const conn = this.#roster.find(ws);
    try {
      // Complete the handshake; 1005/1006 are reserved and cannot be sent back.
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    if (!conn) return;
    try {
      this.#untrack(conn, code);
    } catch (err) {
      console.error(`${this.kit.label}: close failed`, err);
    }
    this.#metrics.settle();
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    const conn = this.#roster.find(ws);
    console.error(`${this.kit.label}: socket error`, error);
    if (!conn) return;
    try {
      this.#untrack(conn, 1006);
    } catch (err) {
      console.error(`${this.kit.label}: error handling failed`, err);
    }
    this.#metrics.settle();
  }

  // ---- alarms ----------------------------------------------------------------------

  /** Schedules a named task; one alarm serves them all. */
  protected schedule(name: string, at: number, opts: { ifEarlier?: boolean } = {}): Promise<void> {
    return this.#tasks.schedule(name, at, opts);
  }

  override async alarm(): Promise<void> {
    this.#stats.alarms += 1;
    const now = Date.now();
    for (const name of this.#tasks.takeDue(now)) {
      try {
        const run = this.#taskRunners.get(name);
        if (run) await run();
        else console.error(`${this.kit.label}: no runner for task ${name}`);
      } catch (err) {
        console.error(`${this.kit.label}: task ${name} failed`, err);
      }
    }
    await this.#tasks.rearm();
    this.#metrics.settle();
  }

  #heartbeatTimeoutMs(): number {
    return Number(this.env.HEARTBEAT_TIMEOUT_SECONDS || '75') * 1000;
  }

  /** Half the heartbeat timeout, between 1 s and 30 s: a ghost goes within timeout + interval. */
  #sweepIntervalMs(): number {
    return Math.min(30_000, Math.max(1000, this.#heartbeatTimeoutMs() / 2));
  }

  /**
   * Closes ghost sockets (silent past the heartbeat timeout, or no longer open), trims the log,
   * and reschedules itself while sockets remain. A heartbeat answered by the runtime counts as
   * a sign of life, so a socket that only pings is never a ghost, and the sweep reads a socket's
   * attachment only when neither its heartbeat nor a frame since this wake vouch for it.
   */
  async sweep(now = Date.now()): Promise<{ closed: number }> {
    const timeoutMs = this.#heartbeatTimeoutMs();
    let closed = 0;
    for (const conn of [...this.#roster.all()]) {
      if (conn.ws.readyState !== WebSocket.OPEN) {
        this.#untrack(conn, 1006);
        closed += 1;
        continue;
      }
      let seen = conn.lastSeen;
      try {
        seen = Math.max(seen, this.ctx.getWebSocketAutoResponseTimestamp(conn.ws)?.getTime() ?? 0);
      } catch {
        // socket gone
      }
      if (now - seen > timeoutMs) seen = Math.max(seen, conn.att.seenAt ?? conn.att.connectedAt);
      if (now - seen > timeoutMs) {
        this.closeConnection(conn, CloseCode.heartbeatTimeout, 'heartbeat timeout');
        closed += 1;
      }
    }
    this.log.trim(now);
    this.#metrics.refresh(now);
    if (this.#roster.counts().connections > 0) {
      await this.schedule(SWEEP_TASK, now + this.#sweepIntervalMs());
    }
    return { closed };
  }

  /** Sends the counts not yet reported to the metrics hub now (tests, operators). */
  flushMetrics(): Promise<void> {
    return this.#metrics.flush();
  }

  /** What this instance did since it woke (for the idle benchmark and operators). */
  stats(): ChannelStats {
    const counts = this.#roster.counts();
    return {
      channel: this.channel,
      kind: this.#kind.kind,
      since: this.#since,
      ...counts,
      seq: this.log.seq,
      outboxPending: this.#outbox.pending(),
      outboxLagMs: this.#outbox.lagMs(),
      wakes: { ...this.#stats },
    };
  }
}

function refusal(err: ChannelError): Response {
  return Response.json({ error: { code: err.code, message: err.message } }, { status: err.status });
}
