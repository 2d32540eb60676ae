// The channel core every kind builds on: hibernatable sockets with typed attachments, the
// welcome, frame validation and limits, acks with dedupe, the sequence log and resume,
// the presence roster, and alarms. A kind adds its frames, its snapshot and its state.
import { DurableObject } from 'cloudflare:workers';
import type { z } from 'zod';
import {
  CloseCode,
  ErrorCode,
  HEARTBEAT_REQUEST,
  HEARTBEAT_RESPONSE,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  type PresenceSnapshot,
  type PublicUser,
  type RecoveryInfo,
  type WelcomeFrame,
} from '../protocol/core';
import { ChannelError } from './errors';
import { frameBytes, parseFrame } from './frames';
import { readForwarded } from './identity';
import { type Once, RequestLedger } from './ledger';
import { type Retention, SequenceLog } from './log';
import type { BucketOptions } from './rate-limit';
import { type Attachment, type Connection, Roster } from './roster';
import { TaskScheduler } from './tasks';

export { frameTypesOf } from './frames';
export type { Attachment, Connection } from './roster';

export interface RoomOptions {
  kind: string;
  retention: Retention;
  /** 'members' broadcasts join/leave and lists members; 'counts' only counts (large audiences). */
  presence: 'members' | 'counts';
  rate: BucketOptions;
  /** How long an acknowledged request id is remembered for dedupe. */
  requestTtlMs: number;
  /** How often the ghost sweep runs while sockets are open. */
  sweepIntervalMs: number;
}

export const DEFAULT_ROOM_OPTIONS: Omit<RoomOptions, 'kind'> = {
  retention: { maxEvents: 1000, maxAgeMs: 24 * 60 * 60 * 1000 },
  presence: 'members',
  rate: { capacity: 20, refillPerSecond: 10, maxWarnings: 5 },
  requestTtlMs: 10 * 60 * 1000,
  sweepIntervalMs: 30 * 1000,
};

/** What a frame handler returns: the ack's result and, if it published one, the event's seq. */
export interface Handled {
  result?: unknown;
  seq?: number;
}

type RpcResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: string; message: string; status: number } };

export type { RpcResult };

const SWEEP_TASK = 'sweep';

export abstract class ChannelRoom<
  Frame extends { type: string },
  Snapshot,
  E extends Env = Env,
> extends DurableObject<E> {
  protected readonly sql: SqlStorage;
  protected readonly log: SequenceLog;
  protected readonly options: RoomOptions;
  readonly #frameTypes: ReadonlySet<string>;
  readonly #roster: Roster;
  readonly #ledger: RequestLedger;
  readonly #tasks: TaskScheduler;
  #queue: Promise<unknown> = Promise.resolve();
  #ready: Promise<void> | null = null;
  #channel: string | undefined;

  protected abstract readonly frames: z.ZodType<Frame>;
  /** The channel's current state, taken synchronously so it matches `log.seq` exactly. */
  protected abstract snapshot(conn: Connection): Snapshot;
  protected abstract onFrame(conn: Connection, frame: Frame): Handled | Promise<Handled>;
  /** Loads what the room needs before its first request (e.g. recent history from D1). */
  protected async load(_channel: string): Promise<void> {}
  /** Refuses a connection before it is accepted (throw a ChannelError). */
  protected authorize(_user: PublicUser | null, _request: Request): void | Promise<void> {}
  protected onJoin(_conn: Connection, _firstOfUser: boolean): void {}
  protected onLeave(_conn: Connection, _lastOfUser: boolean): void {}
  /** Runs a task scheduled with `schedule()` that the core does not own. */
  protected onTask(_name: string): void | Promise<void> {}

  constructor(
    ctx: DurableObjectState,
    env: E,
    options: Partial<RoomOptions> & { kind: string; frameTypes: readonly string[] },
  ) {
    super(ctx, env);
    this.options = { ...DEFAULT_ROOM_OPTIONS, ...options };
    this.#frameTypes = new Set(options.frameTypes);
    this.sql = ctx.storage.sql;
    this.log = new SequenceLog(this.sql, this.options.retention);
    this.#roster = new Roster(this.options.rate);
    this.#ledger = new RequestLedger(this.sql, this.options.requestTtlMs);
    this.#tasks = new TaskScheduler(this.sql, ctx.storage);
    ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE),
    );
    // After hibernation or eviction the sockets are still here: rebuild the roster from them.
    const now = Date.now();
    for (const ws of ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att?.cid) this.#roster.add(ws, att, now);
    }
  }

  protected get channel(): string {
    if (this.#channel === undefined) throw new Error('channel used before ready()');
    return this.#channel;
  }

  /** Learns the channel's name (first request) and loads the room once per instance. */
  protected ready(channel?: string): Promise<void> {
    if (!this.#ready) {
      const stored = this.log.getMeta('channel');
      const name = stored ?? channel;
      if (!name) return Promise.reject(new Error('channel name unknown'));
      if (!stored) this.log.setMeta('channel', name);
      this.#channel = name;
      // A throw inside blockConcurrencyWhile resets the whole object (and its sockets), so a
      // failed load (say, a D1 hiccup) is caught there, fails only this request, and the next
      // request loads again.
      this.#ready = this.ctx
        .blockConcurrencyWhile(async () => {
          try {
            await this.load(name);
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
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return Response.json(
        { error: { code: ErrorCode.upgradeRequired, message: 'expected a WebSocket upgrade' } },
        { status: 426 },
      );
    }
    const { channel, user } = readForwarded(request);
    await this.ready(channel);
    try {
      await this.authorize(user, request);
    } catch (err) {
      if (err instanceof ChannelError) {
        return Response.json(
          { error: { code: err.code, message: err.message } },
          { status: err.status },
        );
      }
      throw err;
    }
    const url = new URL(request.url);
    const since = url.searchParams.get('since');
    const epoch = url.searchParams.get('epoch');

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const att: Attachment = { cid: crypto.randomUUID(), user, connectedAt: Date.now() };
    this.ctx.acceptWebSocket(server, user ? [`u:${user.id}`] : ['anon']);
    server.serializeAttachment(att);
    const { conn, firstOfUser } = this.#roster.add(server, att, att.connectedAt);

    // Everything from here to the end of the replay is synchronous, so no event can slip
    // between the snapshot, the welcome's seq and the replayed frames.
    let recovery: RecoveryInfo = { requested: false, recovered: false, missed: 0 };
    let replay: string[] = [];
    if (since !== null && epoch !== null) {
      const resumed = this.log.resume(Number(since), epoch);
      replay = resumed.recovered ? resumed.events : [];
      recovery = { requested: true, recovered: resumed.recovered, missed: replay.length };
    }
    const welcome: WelcomeFrame<Snapshot> = {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      connectionId: att.cid,
      channel: this.channel,
      kind: this.options.kind,
      user,
      seq: this.log.seq,
      epoch: this.log.epoch,
      snapshot: this.snapshot(conn),
      recovery,
    };
    server.send(JSON.stringify(welcome));
    for (const frame of replay) server.send(frame);

    if (user && firstOfUser && this.options.presence === 'members') {
      this.broadcast(
        { type: 'presence.joined', user, ...this.presenceCounts() },
        (other) => other !== conn,
      );
    }
    this.onJoin(conn, firstOfUser);
    await this.schedule(SWEEP_TASK, Date.now() + this.options.sweepIntervalMs, { ifEarlier: true });
    return new Response(null, { status: 101, webSocket: client });
  }

  // ---- frames ----------------------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const conn = this.#roster.find(ws);
    if (!conn) return; // not a socket this room accepted
    try {
      await this.ready();
      await this.#handleMessage(conn, message);
    } catch (err) {
      console.error(`${this.constructor.name} ${this.#channel ?? '?'}: frame failed`, err);
      this.sendTo(conn, { type: 'error', code: ErrorCode.internal, message: 'internal error' });
    }
  }

  async #handleMessage(conn: Connection, message: string | ArrayBuffer): Promise<void> {
    const now = Date.now();
    conn.lastSeen = now;
    if (frameBytes(message) > MAX_FRAME_BYTES) {
      this.closeConnection(conn, CloseCode.tooBig, `frame over ${MAX_FRAME_BYTES} bytes`);
      return;
    }
    const taken = conn.bucket.take(now);
    if (taken === 'close') {
      this.closeConnection(conn, CloseCode.rateLimited, 'too many frames');
      return;
    }
    if (taken === 'warn') {
      const warning = new ChannelError(ErrorCode.rateLimited, 'slow down: frame dropped');
      this.sendTo(conn, warning.toFrame());
      return;
    }
    const parsed = parseFrame(message, this.#frameTypes, this.frames);
    const id = parsed.id;
    if ('error' in parsed) {
      this.sendTo(conn, parsed.error.toFrame(id));
      return;
    }
    const frame = parsed.frame;
    if (frame.type === 'ping') {
      this.sendTo(conn, id === undefined ? { type: 'pong' } : { type: 'pong', id });
      return;
    }
    if (id === undefined) {
      try {
        await this.onFrame(conn, frame);
      } catch (err) {
        if (!(err instanceof ChannelError)) throw err;
        this.sendTo(conn, err.toFrame());
      }
      return;
    }
    const key = conn.att.user ? `u:${conn.att.user.id}:${id}` : `c:${conn.att.cid}:${id}`;
    try {
      const { json, duplicate } = await this.idempotent(key, async () => {
        const handled = await this.onFrame(conn, frame);
        return { type: 'ack', id, ...handled } as const;
      });
      if (conn.ws.readyState !== WebSocket.OPEN) return;
      conn.ws.send(duplicate ? JSON.stringify({ ...JSON.parse(json), duplicate: true }) : json);
    } catch (err) {
      if (!(err instanceof ChannelError)) throw err;
      this.sendTo(conn, err.toFrame(id));
    }
  }

  /**
   * Runs `apply` once per key: a repeated key gets the stored answer (`duplicate: true`),
   * a concurrent repeat waits for the first. Only successes are stored, so a refused
   * request can be retried.
   */
  protected idempotent<T>(key: string, apply: () => Promise<T>): Promise<Once<T>> {
    return this.#ledger.once(key, apply);
  }

  /** Serialises writes: each `fn` starts after the previous one settled. */
  protected exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Wraps an RPC body so a ChannelError crosses the RPC boundary as data, not as a thrown error. */
  protected async rpc<T>(channel: string, body: () => Promise<T> | T): Promise<RpcResult<T>> {
    try {
      await this.ready(channel);
      return { ok: true, value: await body() };
    } catch (err) {
      if (err instanceof ChannelError) {
        return { ok: false, error: { code: err.code, message: err.message, status: err.status } };
      }
      console.error(`${this.constructor.name} ${channel}: rpc failed`, err);
      throw err;
    }
  }

  // ---- broadcasting ----------------------------------------------------------------

  /** Stores a durable event in the log under the next seq and sends it to every socket. */
  protected publish<Ev extends { type: string }>(event: Ev) {
    const { frame, json } = this.log.append(event);
    this.broadcastRaw(json);
    return frame;
  }

  /** Sends an ephemeral frame (never stored, never sequenced). */
  protected broadcast(frame: object, filter?: (conn: Connection) => boolean): void {
    this.broadcastRaw(JSON.stringify(frame), filter);
  }

  protected broadcastRaw(json: string, filter?: (conn: Connection) => boolean): void {
    for (const conn of this.#roster.all()) {
      if (filter && !filter(conn)) continue;
      try {
        conn.ws.send(json);
      } catch {
        // A socket that died under us is dropped by its close event or the sweep.
      }
    }
  }

  protected sendTo(conn: Connection, frame: object): void {
    try {
      conn.ws.send(JSON.stringify(frame));
    } catch {
      // see broadcastRaw
    }
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
    this.#untrack(conn);
  }

  // ---- presence --------------------------------------------------------------------

  protected presenceCounts(): { users: number; connections: number } {
    return this.#roster.counts();
  }

  protected presenceSnapshot(): PresenceSnapshot {
    const counts = this.#roster.counts();
    if (this.options.presence === 'counts') return counts;
    return { ...counts, members: this.#roster.members() };
  }

  /** Takes a connection off the roster once; announces the user's leave if it was their last. */
  #untrack(conn: Connection): void {
    const removed = this.#roster.remove(conn);
    if (!removed) return;
    const user = conn.att.user;
    if (user && removed.lastOfUser && this.options.presence === 'members') {
      this.broadcast({ type: 'presence.left', user, ...this.presenceCounts() });
    }
    this.onLeave(conn, removed.lastOfUser);
  }

  // ---- closing ---------------------------------------------------------------------

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const conn = this.#roster.find(ws);
    try {
      // Complete the handshake; 1005/1006 are reserved and cannot be sent back.
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
    if (!conn) return;
    try {
      await this.ready();
      this.#untrack(conn);
    } catch (err) {
      console.error(`${this.constructor.name} ${this.#channel ?? '?'}: close failed`, err);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    const conn = this.#roster.find(ws);
    console.error(`${this.constructor.name} ${this.#channel ?? '?'}: socket error`, error);
    if (!conn) return;
    try {
      await this.ready();
      this.#untrack(conn);
    } catch (err) {
      console.error(`${this.constructor.name} ${this.#channel ?? '?'}: error handling failed`, err);
    }
  }

  // ---- alarms ----------------------------------------------------------------------

  /** Schedules a named task; one alarm serves them all. */
  protected schedule(name: string, at: number, opts: { ifEarlier?: boolean } = {}): Promise<void> {
    return this.#tasks.schedule(name, at, opts);
  }

  override async alarm(): Promise<void> {
    await this.ready();
    const now = Date.now();
    for (const name of this.#tasks.takeDue(now)) {
      try {
        if (name === SWEEP_TASK) await this.sweep(now);
        else await this.onTask(name);
      } catch (err) {
        console.error(`${this.constructor.name} ${this.#channel ?? '?'}: task ${name} failed`, err);
      }
    }
    await this.#tasks.rearm();
  }

  /**
   * Closes ghost sockets (silent past the heartbeat timeout, or no longer open), trims the
   * log and the request-id store, and reschedules itself while sockets remain.
   */
  async sweep(now = Date.now()): Promise<{ closed: number }> {
    const timeoutMs = Number(this.env.HEARTBEAT_TIMEOUT_SECONDS || '75') * 1000;
    let closed = 0;
    for (const conn of [...this.#roster.all()]) {
      let heartbeat = 0;
      try {
        heartbeat = this.ctx.getWebSocketAutoResponseTimestamp(conn.ws)?.getTime() ?? 0;
      } catch {
        // socket gone
      }
      const seen = Math.max(conn.lastSeen, heartbeat);
      if (conn.ws.readyState !== WebSocket.OPEN) {
        this.#untrack(conn);
        closed += 1;
      } else if (now - seen > timeoutMs) {
        this.closeConnection(conn, CloseCode.heartbeatTimeout, 'heartbeat timeout');
        closed += 1;
      }
    }
    this.log.trim(now);
    this.#ledger.prune(now);
    if (this.#roster.counts().connections > 0) {
      await this.schedule(SWEEP_TASK, now + this.options.sweepIntervalMs);
    }
    return { closed };
  }
}
