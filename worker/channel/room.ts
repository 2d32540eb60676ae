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
  type PresenceMember,
  type PresenceSnapshot,
  type PublicUser,
  type RecoveryInfo,
  type WelcomeFrame,
} from '../protocol/core';
import { ChannelError } from './errors';
import { readForwarded } from './identity';
import { type Retention, SequenceLog } from './log';
import { type BucketOptions, TokenBucket } from './rate-limit';

export interface Attachment {
  /** Connection id, shown to the client in its welcome. */
  cid: string;
  user: PublicUser | null;
  connectedAt: number;
}

export interface Connection {
  readonly ws: WebSocket;
  readonly att: Attachment;
  lastSeen: number;
  bucket: TokenBucket;
}

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
  readonly #conns = new Map<string, Connection>();
  readonly #bySocket = new WeakMap<WebSocket, Connection>();
  readonly #byUser = new Map<string, Set<string>>();
  readonly #inflight = new Map<string, Promise<string>>();
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
    this.sql.exec(
      'CREATE TABLE IF NOT EXISTS channel_requests (key TEXT PRIMARY KEY, at INTEGER NOT NULL, response TEXT NOT NULL)',
    );
    this.sql.exec(
      'CREATE TABLE IF NOT EXISTS channel_tasks (name TEXT PRIMARY KEY, at INTEGER NOT NULL)',
    );
    ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair(HEARTBEAT_REQUEST, HEARTBEAT_RESPONSE),
    );
    // After hibernation or eviction the sockets are still here: rebuild the roster from them.
    const now = Date.now();
    for (const ws of ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att?.cid) this.#track(ws, att, now);
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
      this.#ready = this.ctx.blockConcurrencyWhile(() => this.load(name));
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
    const conn = this.#track(server, att, att.connectedAt);
    const firstOfUser = user ? this.#byUser.get(user.id)?.size === 1 : false;

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
    const conn = this.#connOf(ws);
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
    const bytes =
      typeof message === 'string'
        ? message.length * 3 <= MAX_FRAME_BYTES
          ? message.length
          : new TextEncoder().encode(message).byteLength
        : message.byteLength;
    if (bytes > MAX_FRAME_BYTES) {
      this.#close(conn, CloseCode.tooBig, `frame over ${MAX_FRAME_BYTES} bytes`);
      return;
    }
    const taken = conn.bucket.take(now);
    if (taken === 'close') {
      this.#close(conn, CloseCode.rateLimited, 'too many frames');
      return;
    }
    if (taken === 'warn') {
      this.sendTo(
        conn,
        new ChannelError(ErrorCode.rateLimited, 'slow down: frame dropped').toFrame(),
      );
      return;
    }
    if (typeof message !== 'string') {
      this.sendTo(
        conn,
        new ChannelError(ErrorCode.binaryNotSupported, 'send JSON text frames').toFrame(),
      );
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      this.sendTo(
        conn,
        new ChannelError(ErrorCode.malformedJson, 'frame is not valid JSON').toFrame(),
      );
      return;
    }
    const id = requestIdOf(raw);
    const type = isRecord(raw) ? raw.type : undefined;
    if (typeof type !== 'string') {
      this.sendTo(conn, invalid([{ path: 'type', message: 'must be a string' }]).toFrame(id));
      return;
    }
    if (!this.#frameTypes.has(type)) {
      this.sendTo(
        conn,
        new ChannelError(
          ErrorCode.unknownType,
          `unknown frame type "${type.slice(0, 64)}"`,
        ).toFrame(id),
      );
      return;
    }
    const parsed = this.frames.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({
        path: i.path.map(String).join('.'),
        message: i.message,
      }));
      this.sendTo(conn, invalid(issues).toFrame(id));
      return;
    }
    const frame = parsed.data;
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
  protected async idempotent<T>(
    key: string,
    apply: () => Promise<T>,
  ): Promise<{ json: string; value: T; duplicate: boolean }> {
    const stored = this.sql
      .exec<{ response: string }>('SELECT response FROM channel_requests WHERE key = ?', key)
      .toArray()[0];
    if (stored)
      return { json: stored.response, value: JSON.parse(stored.response) as T, duplicate: true };
    const running = this.#inflight.get(key);
    if (running) {
      const json = await running;
      return { json, value: JSON.parse(json) as T, duplicate: true };
    }
    const task = apply().then((value) => {
      const json = JSON.stringify(value);
      this.sql.exec(
        'INSERT OR REPLACE INTO channel_requests (key, at, response) VALUES (?, ?, ?)',
        key,
        Date.now(),
        json,
      );
      return json;
    });
    this.#inflight.set(key, task);
    try {
      const json = await task;
      return { json, value: JSON.parse(json) as T, duplicate: false };
    } finally {
      this.#inflight.delete(key);
    }
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
    for (const conn of this.#conns.values()) {
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
    return this.#conns.values();
  }

  /** Closes every socket of a user (ban, forced logout). */
  protected closeUser(userId: string, code: number, reason: string): void {
    for (const cid of [...(this.#byUser.get(userId) ?? [])]) {
      const conn = this.#conns.get(cid);
      if (conn) this.#close(conn, code, reason);
    }
  }

  // ---- presence --------------------------------------------------------------------

  protected presenceCounts(): { users: number; connections: number } {
    return { users: this.#byUser.size, connections: this.#conns.size };
  }

  protected presenceSnapshot(): PresenceSnapshot {
    const counts = this.presenceCounts();
    if (this.options.presence === 'counts') return counts;
    const members: PresenceMember[] = [];
    for (const cids of this.#byUser.values()) {
      const first = this.#conns.get(cids.values().next().value as string);
      if (first?.att.user) members.push({ user: first.att.user, connections: cids.size });
    }
    return { ...counts, members };
  }

  #track(ws: WebSocket, att: Attachment, now: number): Connection {
    const conn: Connection = {
      ws,
      att,
      lastSeen: now,
      bucket: new TokenBucket(this.options.rate, now),
    };
    this.#conns.set(att.cid, conn);
    this.#bySocket.set(ws, conn);
    if (att.user) {
      const set = this.#byUser.get(att.user.id) ?? new Set<string>();
      set.add(att.cid);
      this.#byUser.set(att.user.id, set);
    }
    return conn;
  }

  #connOf(ws: WebSocket): Connection | undefined {
    const known = this.#bySocket.get(ws);
    if (known) return known;
    const att = ws.deserializeAttachment() as Attachment | null;
    const conn = att?.cid ? this.#conns.get(att.cid) : undefined;
    if (conn) this.#bySocket.set(ws, conn);
    return conn;
  }

  /** Removes a connection from the roster once; announces the user's leave if it was their last. */
  #untrack(conn: Connection): void {
    if (!this.#conns.delete(conn.att.cid)) return;
    let lastOfUser = false;
    const user = conn.att.user;
    if (user) {
      const set = this.#byUser.get(user.id);
      set?.delete(conn.att.cid);
      if (set && set.size === 0) {
        this.#byUser.delete(user.id);
        lastOfUser = true;
      }
    }
    if (user && lastOfUser && this.options.presence === 'members') {
      this.broadcast({ type: 'presence.left', user, ...this.presenceCounts() });
    }
    this.onLeave(conn, lastOfUser);
  }

  #close(conn: Connection, code: number, reason: string): void {
    try {
      conn.ws.close(code, reason);
    } catch {
      // already closing
    }
    this.#untrack(conn);
  }

  // ---- closing ---------------------------------------------------------------------

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const conn = this.#connOf(ws);
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
    const conn = this.#connOf(ws);
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
  protected async schedule(
    name: string,
    at: number,
    opts: { ifEarlier?: boolean } = {},
  ): Promise<void> {
    const current = this.sql
      .exec<{ at: number }>('SELECT at FROM channel_tasks WHERE name = ?', name)
      .toArray()[0];
    if (current && opts.ifEarlier && current.at <= at) return;
    this.sql.exec(
      'INSERT INTO channel_tasks (name, at) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET at = excluded.at',
      name,
      at,
    );
    const alarm = await this.ctx.storage.getAlarm();
    // Two schedule() calls of one event interleave at the await above; each one sets the alarm
    // to the earliest task known *now*, so a later, farther task never overrides a nearer one.
    const next = this.sql
      .exec<{ at: number | null }>('SELECT MIN(at) AS at FROM channel_tasks')
      .one().at;
    const target = next ?? at;
    if (alarm === null || alarm > target) await this.ctx.storage.setAlarm(target);
  }

  override async alarm(): Promise<void> {
    await this.ready();
    const now = Date.now();
    const due = this.sql
      .exec<{ name: string }>('SELECT name FROM channel_tasks WHERE at <= ? ORDER BY at', now)
      .toArray();
    for (const { name } of due) {
      this.sql.exec('DELETE FROM channel_tasks WHERE name = ?', name);
      try {
        if (name === SWEEP_TASK) await this.sweep(now);
        else await this.onTask(name);
      } catch (err) {
        console.error(`${this.constructor.name} ${this.#channel ?? '?'}: task ${name} failed`, err);
      }
    }
    const next = this.sql
      .exec<{ at: number | null }>('SELECT MIN(at) AS at FROM channel_tasks')
      .one().at;
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, Date.now() + 10));
  }

  /**
   * Closes ghost sockets (silent past the heartbeat timeout, or no longer open), trims the
   * log and the request-id store, and reschedules itself while sockets remain.
   */
  async sweep(now = Date.now()): Promise<{ closed: number }> {
    const timeoutMs = Number(this.env.HEARTBEAT_TIMEOUT_SECONDS || '75') * 1000;
    let closed = 0;
    for (const conn of [...this.#conns.values()]) {
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
        this.#close(conn, CloseCode.heartbeatTimeout, 'heartbeat timeout');
        closed += 1;
      }
    }
    this.log.trim(now);
    this.sql.exec('DELETE FROM channel_requests WHERE at < ?', now - this.options.requestTtlMs);
    if (this.#conns.size > 0) await this.schedule(SWEEP_TASK, now + this.options.sweepIntervalMs);
    return { closed };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requestIdOf(raw: unknown): string | undefined {
  if (!isRecord(raw)) return undefined;
  const id = raw.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 64 ? id : undefined;
}

function invalid(issues: { path: string; message: string }[]): ChannelError {
  const first = issues[0];
  const where = first?.path ? ` at "${first.path}"` : '';
  return new ChannelError(
    ErrorCode.invalidFrame,
    `invalid frame${where}: ${first?.message ?? 'bad shape'}`,
    400,
    issues,
  );
}

/** The literal `type` of every option of a discriminated union, for the unknown-type check. */
export function frameTypesOf(union: {
  options: readonly { shape: { type: { value: unknown } } }[];
}) {
  return union.options.map((o) => String(o.shape.type.value));
}
