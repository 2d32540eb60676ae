// Per-connection token bucket. Kept in memory: after an eviction a bucket starts full again,
// which only ever forgives, never wrongly punishes (docs/protocol.md, "Limits").
//
// It judges the client, not the room's backlog: while the room has been busy for `backlogMs`
// (frames handled back to back), a client's frames that queued meanwhile arrive bunched, so the
// bucket may hold that much more than its capacity (backlog × refill rate). A compliant client
// is never refused for the room's delay; a flood still empties the bucket, because tokens only
// grow with the time between its own frames.
export interface BucketOptions {
  /** Frames allowed in a burst. */
  capacity: number;
  /** Frames refilled per second. */
  refillPerSecond: number;
  /** Refused frames (each answered with a `rate_limited` warning) before the socket is closed. */
  maxWarnings: number;
}

export type TakeResult = 'ok' | 'warn' | 'close';

/** The most backlog a bucket makes room for (so a long-silent client cannot save up for ever). */
export const MAX_BACKLOG_MS = 10_000;

export class TokenBucket {
  #tokens: number;
  #last: number;
  #warnings = 0;

  constructor(
    private readonly options: BucketOptions,
    now = Date.now(),
  ) {
    this.#tokens = options.capacity;
    this.#last = now;
  }

  take(now = Date.now(), backlogMs = 0): TakeResult {
    const elapsed = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    const backlog = Math.min(Math.max(0, backlogMs), MAX_BACKLOG_MS);
    const allowance = (backlog / 1000) * this.options.refillPerSecond;
    this.#tokens = Math.min(
      this.options.capacity + allowance,
      this.#tokens + elapsed * this.options.refillPerSecond,
    );
    if (this.#tokens >= this.options.capacity) this.#warnings = 0;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 'ok';
    }
    this.#warnings += 1;
    return this.#warnings > this.options.maxWarnings ? 'close' : 'warn';
  }
}

/** A per-key minimum interval, for ephemeral lanes such as typing and reactions. */
export class Throttle {
  #last = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  allow(key: string, now = Date.now()): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.#last.set(key, now);
    if (this.#last.size > 10_000) this.#prune(now);
    return true;
  }

  #prune(now: number): void {
    for (const [key, at] of this.#last) if (now - at >= this.intervalMs) this.#last.delete(key);
  }
}
