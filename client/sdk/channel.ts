// One channel subscription over partysocket: reconnects with jittered exponential backoff,
// resumes from the last seen `{seq, epoch}`, drops duplicates, matches acks to requests, holds a
// bounded offline queue, reports its connection state as events, and stops on terminal codes.
// Only plain values come from the protocol (wire.ts): the browser bundle carries no schema library.
// It times its heartbeats and reports the round trip to the server now and then (at most once a
// RTT_REPORT_INTERVAL_MS, on a frame it sends anyway), so the operators see what users feel.
import ReconnectingWebSocket from 'partysocket/ws';
import type { AckFrame, BatchFrame, ErrorFrame, WelcomeFrame } from '../../worker/protocol/core';
import {
  HEARTBEAT_REQUEST,
  HEARTBEAT_RESPONSE,
  MAX_RTT_MS,
  RTT_REPORT_INTERVAL_MS,
  TERMINAL_CLOSE_CODES,
} from '../../worker/protocol/wire';

export interface ServerFrameBase {
  type: string;
  seq?: number;
  id?: string;
}

export interface ChannelOptions {
  /** Base URL of the Wavecast worker, e.g. `https://wavecast.example.com`. */
  baseUrl: string;
  /** Channel path, e.g. `/ws/comments/story-1`. */
  path: string;
  /** Read on every (re)connect, so a refreshed token is picked up. May be async. */
  token?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Extra query parameters, read on every (re)connect (e.g. the broadcast relay to return to). */
  query?: () => Record<string, string>;
  /** A WebSocket constructor for runtimes without a global one (e.g. the `ws` package). */
  WebSocket?: unknown;
  /** Heartbeat period; answered by the runtime without waking the channel. */
  heartbeatMs?: number;
  /** Report the heartbeat round trip to the server (sampled; default true). docs/operations.md. */
  reportRtt?: boolean;
  /** How long `request()` waits for its ack before rejecting. */
  requestTimeoutMs?: number;
  /** Backoff: the n-th retry waits a random time in [d/2, d], d = min(max, min × 2^(n−1)). */
  maxReconnectionDelay?: number;
  minReconnectionDelay?: number;
  /** `send()` while not connected: frames held for the next connection, oldest dropped first. */
  offlineQueueSize?: number;
  /** `request()` calls waiting for an answer (sent or held while offline); beyond it: `queue_full`. */
  maxPendingRequests?: number;
}

/** Defaults of the bounded offline queue (docs/sdk.md, "Offline"). */
export const OFFLINE_QUEUE_SIZE = 64;
export const MAX_PENDING_REQUESTS = 64;

/** The n-th reconnect's delay: exponential, capped, with "equal jitter" so clients spread out. */
export function backoffDelay(
  retry: number,
  minDelay: number,
  maxDelay: number,
  random: () => number = Math.random,
): number {
  if (retry <= 0) return 0;
  const ceiling = Math.min(maxDelay, minDelay * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly frame?: ErrorFrame,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

type Listener<F> = (frame: F) => void;

function isBatch<F>(frame: { type: string }): frame is BatchFrame<F> {
  return frame.type === 'batch' && Array.isArray((frame as BatchFrame<F>).frames);
}

interface Pending {
  json: string;
  /** The connection it was last sent on (0: held while offline). */
  sentOn: number;
  resolve: (ack: AckFrame) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * `connecting`: the first connection is being made; `open`: connected; `reconnecting`: the
 * connection dropped and a retry is scheduled or under way; `offline`: the browser reports no
 * network (retries resume when it returns); `closed`: closed by `close()` or a terminal code.
 */
export type ChannelState = 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed';

type StateListener = (state: ChannelState, previous: ChannelState) => void;

/** `window` in a browser; in Node and workers these events never fire. */
const network = globalThis as unknown as {
  addEventListener?: (type: 'online' | 'offline', listener: () => void) => void;
  removeEventListener?: (type: 'online' | 'offline', listener: () => void) => void;
};

const browserOffline = () =>
  typeof navigator !== 'undefined' && 'onLine' in navigator && navigator.onLine === false;

export class Channel<Frame extends ServerFrameBase = ServerFrameBase, Snapshot = unknown> {
  readonly socket: ReconnectingWebSocket;
  state: ChannelState = 'connecting';
  /** Last applied position; sent as `since`/`epoch` when reconnecting. */
  seq: number | null = null;
  epoch: string | null = null;
  snapshot: Snapshot | null = null;
  connectionId: string | null = null;
  /** Set when the server closed with a terminal code (no more reconnects). */
  terminal: { code: number; reason: string } | null = null;

  readonly #listeners = new Map<string, Set<Listener<Frame>>>();
  readonly #stateListeners = new Set<StateListener>();
  readonly #pending = new Map<string, Pending>();
  readonly #queue: string[] = [];
  readonly #options: Required<
    Pick<
      ChannelOptions,
      'heartbeatMs' | 'requestTimeoutMs' | 'offlineQueueSize' | 'maxPendingRequests'
    >
  > &
    ChannelOptions;
  /** Counts connections; 0 until the first opens. */
  #connection = 0;
  #everOpen = false;
  /** The browser lost or regained its network. A socket that was open then is likely dead
   * without knowing it (no close comes until a heartbeat fails), so it is dropped at once; when
   * the network returns the channel reconnects now instead of waiting out its backoff. */
  readonly #onNetworkChange = () => {
    if (this.state === 'closed') return;
    if (browserOffline()) {
      if (this.socket.readyState === ReconnectingWebSocket.OPEN) this.socket.reconnect();
    } else if (this.socket.readyState !== ReconnectingWebSocket.OPEN) {
      this.socket.reconnect();
    }
    this.#setState(this.#currentState());
  };
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #nextId = 0;
  #pingSentAt: number | null = null;
  #rtt: number | null = null;
  #rttReportedAt = 0;

  constructor(options: ChannelOptions) {
    this.#options = {
      heartbeatMs: 25_000,
      requestTimeoutMs: 10_000,
      offlineQueueSize: OFFLINE_QUEUE_SIZE,
      maxPendingRequests: MAX_PENDING_REQUESTS,
      ...options,
    };
    const minDelay = options.minReconnectionDelay ?? 500;
    const maxDelay = options.maxReconnectionDelay ?? 10_000;
    this.socket = new ReconnectingWebSocket(() => this.#url(), undefined, {
      WebSocket: options.WebSocket,
      maxReconnectionDelay: maxDelay,
      minReconnectionDelay: minDelay,
      // The channel holds its own bounded queue (below); partysocket's is unbounded.
      maxEnqueuedMessages: 0,
      shouldReconnectOnClose: (event) => !TERMINAL_CLOSE_CODES.includes(event.code),
    });
    // partysocket grows ×1.3 without jitter, so a restart would bring every client back in
    // lockstep. Its delay is a plain method on the instance; this one spreads the retries.
    const retries = this.socket as unknown as { _getNextDelay: () => number };
    retries._getNextDelay = () => backoffDelay(this.socket.retryCount, minDelay, maxDelay);
    this.socket.addEventListener('message', (event) => this.#onMessage(event.data));
    this.socket.addEventListener('open', () => {
      this.#connection += 1;
      this.#everOpen = true;
      this.#setState('open');
      this.#startHeartbeat();
      for (const json of this.#queue.splice(0)) this.socket.send(json);
    });
    this.socket.addEventListener('close', (event) => {
      this.#stopHeartbeat();
      if (TERMINAL_CLOSE_CODES.includes(event.code)) {
        this.terminal = { code: event.code, reason: event.reason };
        this.close();
        return;
      }
      if (this.state !== 'closed') this.#setState(this.#currentState());
    });
    network.addEventListener?.('online', this.#onNetworkChange);
    network.addEventListener?.('offline', this.#onNetworkChange);
  }

  /** Listens to connection-state changes. Returns the unsubscribe function. */
  onStateChange(listener: StateListener): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Frames `send()` holds until the next connection (at most `offlineQueueSize`). */
  get queued(): number {
    return this.#queue.length;
  }

  #currentState(): ChannelState {
    if (this.state === 'closed') return 'closed';
    if (this.socket.readyState === ReconnectingWebSocket.OPEN) return 'open';
    if (browserOffline()) return 'offline';
    return this.#everOpen ? 'reconnecting' : 'connecting';
  }

  #setState(next: ChannelState): void {
    const previous = this.state;
    if (previous === next) return;
    this.state = next;
    for (const listener of this.#stateListeners) listener(next, previous);
  }

  /** Listens to one frame type (or `*` for all). Returns the unsubscribe function. */
  on<T extends Frame['type'] | '*' | 'welcome'>(
    type: T,
    listener: Listener<T extends '*' ? Frame : Extract<Frame, { type: T }>>,
  ): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    set.add(listener as Listener<Frame>);
    this.#listeners.set(type, set);
    return () => set.delete(listener as Listener<Frame>);
  }

  /** Sends a frame and resolves with its ack (or rejects with the server's error). Safe to
   * retry: the id is kept, and requests still unanswered are re-sent after a reconnect. */
  request<R = unknown>(frame: {
    type: string;
    id?: string;
    [key: string]: unknown;
  }): Promise<AckFrame<R>> {
    this.#nextId += 1;
    const id =
      frame.id ??
      `${Date.now().toString(36)}-${this.#nextId}-${Math.random().toString(36).slice(2, 8)}`;
    const json = JSON.stringify(this.#withRtt({ ...frame, id }));
    if (this.state === 'closed') {
      return Promise.reject(new RequestError('closed', 'channel closed'));
    }
    if (this.#pending.size >= this.#options.maxPendingRequests && !this.#pending.has(id)) {
      return Promise.reject(
        new RequestError('queue_full', `${this.#pending.size} requests are already waiting`),
      );
    }
    return new Promise<AckFrame<R>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new RequestError(
            'timeout',
            `no answer to ${frame.type} within ${this.#options.requestTimeoutMs} ms`,
          ),
        );
      }, this.#options.requestTimeoutMs);
      const open = this.socket.readyState === ReconnectingWebSocket.OPEN;
      this.#pending.set(id, {
        json,
        sentOn: open ? this.#connection : 0,
        resolve: resolve as (ack: AckFrame) => void,
        reject,
        timer,
      });
      // Offline, the request waits: the next welcome sends every unanswered request.
      if (open) this.socket.send(json);
    });
  }

  /** Sends a frame without waiting for an answer (typing, reactions). While not connected the
   * frame is held for the next connection; past `offlineQueueSize` the oldest held frame is
   * dropped. Returns false when the channel is closed and the frame went nowhere. */
  send(frame: { type: string; [key: string]: unknown }): boolean {
    if (this.state === 'closed') return false;
    const json = JSON.stringify(this.#withRtt(frame));
    if (this.socket.readyState === ReconnectingWebSocket.OPEN) {
      this.socket.send(json);
      return true;
    }
    this.#queue.push(json);
    while (this.#queue.length > this.#options.offlineQueueSize) this.#queue.shift();
    return true;
  }

  /** The last heartbeat round trip measured on this channel, in ms (null before the first). */
  get rtt(): number | null {
    return this.#rtt;
  }

  /** Adds the measured round trip to a frame the client sends anyway, at most once an interval. */
  #withRtt<F extends { type: string }>(frame: F): F & { rtt?: number } {
    const rtt = this.#dueRtt();
    return rtt === null ? frame : { ...frame, rtt };
  }

  #dueRtt(): number | null {
    if (this.#options.reportRtt === false || this.#rtt === null) return null;
    const now = Date.now();
    if (now - this.#rttReportedAt < RTT_REPORT_INTERVAL_MS) return null;
    this.#rttReportedAt = now;
    return this.#rtt;
  }

  close(): void {
    this.#setState('closed');
    this.#stopHeartbeat();
    this.#queue.length = 0;
    network.removeEventListener?.('online', this.#onNetworkChange);
    network.removeEventListener?.('offline', this.#onNetworkChange);
    this.socket.close(1000, 'client closed');
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new RequestError('closed', 'channel closed'));
      this.#pending.delete(id);
    }
  }

  async #url(): Promise<string> {
    const url = new URL(this.#options.path, this.#options.baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = await this.#options.token?.();
    if (token) url.searchParams.set('token', token);
    for (const [name, value] of Object.entries(this.#options.query?.() ?? {})) {
      url.searchParams.set(name, value);
    }
    if (this.seq !== null && this.epoch !== null) {
      url.searchParams.set('since', String(this.seq));
      url.searchParams.set('epoch', this.epoch);
    }
    const rtt = this.#dueRtt();
    if (rtt !== null) url.searchParams.set('rtt', String(rtt));
    return url.toString();
  }

  #onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    if (data === HEARTBEAT_RESPONSE && this.#pingSentAt !== null) {
      // The runtime's answer to our heartbeat: the round trip a user feels, without the room.
      // The server refuses round trips above MAX_RTT_MS; a stalled pong is reported as that.
      this.#rtt = Math.min(Date.now() - this.#pingSentAt, MAX_RTT_MS);
      this.#pingSentAt = null;
    }
    let frame: Frame | BatchFrame<Frame>;
    try {
      frame = JSON.parse(data) as Frame | BatchFrame<Frame>;
    } catch {
      return;
    }
    // Under load the server sends one `batch` per short window; listeners see single frames.
    if (isBatch(frame)) for (const one of frame.frames) this.#onFrame(one);
    else this.#onFrame(frame);
  }

  #onFrame(frame: Frame): void {
    if (frame.type === 'welcome') {
      const welcome = frame as unknown as WelcomeFrame<Snapshot>;
      this.connectionId = welcome.connectionId;
      this.snapshot = welcome.snapshot;
      // Recovered: the replay that follows continues from our seq. Otherwise start over here.
      if (!welcome.recovery.recovered || this.epoch !== welcome.epoch) this.seq = welcome.seq;
      this.epoch = welcome.epoch;
      // Requests not yet sent on this connection are (re-)sent; the server applies each id once.
      for (const pending of this.#pending.values()) {
        if (pending.sentOn === this.#connection) continue;
        pending.sentOn = this.#connection;
        this.socket.send(pending.json);
      }
    } else if (typeof frame.seq === 'number' && frame.type !== 'ack') {
      if (this.seq !== null && frame.seq <= this.seq) return; // already applied
      this.seq = frame.seq;
    }
    if ((frame.type === 'ack' || frame.type === 'error') && frame.id) {
      const pending = this.#pending.get(frame.id);
      if (pending) {
        this.#pending.delete(frame.id);
        clearTimeout(pending.timer);
        if (frame.type === 'ack') pending.resolve(frame as unknown as AckFrame);
        else {
          const err = frame as unknown as ErrorFrame;
          pending.reject(new RequestError(err.code, err.message, err));
        }
      }
    }
    for (const key of [frame.type, '*']) {
      for (const listener of this.#listeners.get(key) ?? []) listener(frame);
    }
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    this.#heartbeat = setInterval(() => {
      if (this.socket.readyState === ReconnectingWebSocket.OPEN) {
        this.#pingSentAt = Date.now();
        this.socket.send(HEARTBEAT_REQUEST);
      }
    }, this.#options.heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    this.#pingSentAt = null;
  }
}
