// Per-connection token bucket. Kept in memory: after an eviction a bucket starts full again,
// which only ever forgives, never wrongly punishes (docs/protocol.md, "Limits").
export interface BucketOptions {
  /** Frames allowed in a burst. */
  capacity: number;
  /** Frames refilled per second. */
  refillPerSecond: number;
  /** Refused frames (each answered with a `rate_limited` warning) before the socket is closed. */
  maxWarnings: number;
}

export type TakeResult = 'ok' | 'warn' | 'close';

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

  take(now = Date.now()): TakeResult {
    const elapsed = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#tokens = Math.min(
      this.options.capacity,
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
