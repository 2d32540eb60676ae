// How frames leave a channel object. At low rates every frame goes out at once, alone. When a
// channel publishes faster than one frame per BATCH_TRIGGER_MS, it opens a short window and
// sends each socket one `batch` frame per window carrying every frame of that window, in order
// (docs/protocol.md, "Batches"). The batch is one string for every socket, built from frames
// serialised once. A frame for one socket (an ack, an error) waits for the open window, so a
// socket always sees an event before the ack that answers it.
import { utf8Bytes } from './metrics';
import type { Connection, Roster } from './roster';

/** A broadcast this soon after the previous one (20 a second and more) opens a batch window. */
export const BATCH_TRIGGER_MS = 50;
/** How long a window stays open: the most a frame waits under load (the issue allows 50 ms). */
export const BATCH_WINDOW_MS = 40;

export class Fanout {
  #pending: string[] = [];
  /** For each pending frame that is a published event: when its request arrived. */
  #pendingSince: (number | undefined)[] = [];
  readonly #deferred = new Map<Connection, string[]>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastSent = 0;
  /** Frames and batches written to sockets, and their UTF-8 bytes before compression. */
  readonly counts = { frames: 0, batches: 0, bytes: 0 };

  /**
   * `written` hears, for each broadcast given a `since`, how long after `since` the frame reached
   * its last socket (the clock stands still while code runs, so this is batching and awaits).
   */
  constructor(
    private readonly roster: Roster,
    private readonly written: (ms: number) => void = () => {},
  ) {}

  /** To every socket (or those `filter` keeps), in the order of the calls. */
  broadcast(json: string, filter?: (conn: Connection) => boolean, since?: number): void {
    if (filter) {
      // A frame for some sockets only cannot ride in the shared batch: close the window first.
      this.flush();
      this.#sendAll(json, filter);
      if (since !== undefined) this.written(Date.now() - since);
      return;
    }
    if (this.#pending.length > 0) {
      this.#pending.push(json);
      this.#pendingSince.push(since);
      return;
    }
    const now = Date.now();
    if (now - this.#lastSent < BATCH_TRIGGER_MS) {
      this.#pending.push(json);
      this.#pendingSince.push(since);
      this.#timer = setTimeout(() => this.flush(), BATCH_WINDOW_MS);
      return;
    }
    this.#lastSent = now;
    this.#sendAll(json);
    if (since !== undefined) this.written(now - since);
  }

  /** To one socket, after every broadcast that came before it. */
  send(conn: Connection, json: string): void {
    if (this.#pending.length > 0) {
      const list = this.#deferred.get(conn);
      if (list) list.push(json);
      else this.#deferred.set(conn, [json]);
      return;
    }
    this.#sendOne(conn, json);
  }

  /** Sends the open window now (also before a new socket is welcomed). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending.length === 0) return;
    const frames = this.#pending;
    const since = this.#pendingSince;
    this.#pending = [];
    this.#pendingSince = [];
    this.#lastSent = Date.now();
    if (frames.length === 1) this.#sendAll(frames[0] as string);
    else {
      this.counts.batches += 1;
      this.#sendAll(`{"type":"batch","frames":[${frames.join(',')}]}`);
    }
    const now = Date.now();
    for (const at of since) if (at !== undefined) this.written(now - at);
    for (const [conn, list] of this.#deferred) for (const json of list) this.#sendOne(conn, json);
    this.#deferred.clear();
  }

  #sendAll(json: string, filter?: (conn: Connection) => boolean): void {
    const bytes = utf8Bytes(json); // once per frame, not once per socket
    for (const conn of this.roster.all()) {
      if (filter && !filter(conn)) continue;
      this.#sendOne(conn, json, bytes);
    }
  }

  #sendOne(conn: Connection, json: string, bytes = utf8Bytes(json)): void {
    try {
      conn.ws.send(json);
      this.counts.frames += 1;
      this.counts.bytes += bytes;
    } catch {
      // A socket that died under us is dropped by its close event or the sweep.
    }
  }
}
