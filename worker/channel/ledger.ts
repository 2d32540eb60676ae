// Answered requests, so a retried request id (a socket frame's `id`, a REST `Idempotency-Key`)
// is answered again but applied once. One meaning everywhere: kept at least 24 hours; the same
// key with the same request replays the first answer; the same key with a different request
// is refused with `idempotency_key_reused`. A request that changes the channel stores its answer
// inside the same transaction as the change (see `ChannelRoom.commit`), so a crash can never
// leave the change without its answer or the answer without its change.
import { ErrorCode } from '../protocol/core';
import { ChannelError } from './errors';

export const REQUEST_TTL_MS = 24 * 60 * 60 * 1000;
const PRUNE_EVERY_MS = 60 * 1000;

export interface Answered<T> {
  value: T;
  duplicate: boolean;
}

export class RequestLedger {
  readonly #inflight = new Map<string, { hash: string; done: Promise<unknown> }>();
  #prunedAt = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly ttlMs = REQUEST_TTL_MS,
  ) {
    sql.exec(
      `CREATE TABLE IF NOT EXISTS channel_requests (key TEXT PRIMARY KEY, hash TEXT NOT NULL,
         at INTEGER NOT NULL, response TEXT NOT NULL)`,
    );
    sql.exec('CREATE INDEX IF NOT EXISTS channel_requests_at ON channel_requests (at)');
  }

  /** The stored answer for `key`, or a refusal if the key answered a different request. */
  lookup<T>(key: string, hash: string, now = Date.now()): T | undefined {
    const row = this.sql
      .exec<{ hash: string; at: number; response: string }>(
        'SELECT hash, at, response FROM channel_requests WHERE key = ?',
        key,
      )
      .toArray()[0];
    if (!row || row.at < now - this.ttlMs) return undefined;
    if (row.hash !== hash) throw reused();
    return JSON.parse(row.response) as T;
  }

  /** Stores an answer. Called inside the transaction of the change it answers. */
  store(key: string, hash: string, value: unknown, now = Date.now()): void {
    this.sql.exec(
      'INSERT OR REPLACE INTO channel_requests (key, hash, at, response) VALUES (?, ?, ?, ?)',
      key,
      hash,
      now,
      JSON.stringify(value ?? null),
    );
    // Expired answers go as new ones arrive: no timer, no wake-up of an idle room.
    if (now - this.#prunedAt >= PRUNE_EVERY_MS) {
      this.#prunedAt = now;
      this.sql.exec('DELETE FROM channel_requests WHERE at < ?', now - this.ttlMs);
    }
  }

  /**
   * Runs `apply` once per key. A repeat gets the stored answer (`duplicate: true`); a concurrent
   * repeat waits for the first attempt. `apply` stores its answer itself when it commits a change;
   * otherwise (a request that changed nothing durable) it is stored here afterwards. A refusal is
   * not stored, so a refused request can be retried.
   */
  async once<T>(
    key: string,
    hash: string,
    apply: () => Promise<T>,
    stored: () => boolean,
  ): Promise<Answered<T>> {
    for (;;) {
      const answer = this.lookup<T>(key, hash);
      if (answer !== undefined) return { value: answer, duplicate: true };
      const running = this.#inflight.get(key);
      if (!running) break;
      if (running.hash !== hash) throw reused();
      await running.done.catch(() => undefined);
      // The first attempt finished: its answer is stored, or it was refused and this one runs.
    }
    const done = apply();
    this.#inflight.set(key, { hash, done });
    try {
      const value = await done;
      if (!stored()) this.store(key, hash, value);
      return { value, duplicate: false };
    } finally {
      this.#inflight.delete(key);
    }
  }
}

function reused(): ChannelError {
  return new ChannelError(
    ErrorCode.idempotencyKeyReused,
    'this request id was already used for a different request',
    422,
  );
}

/** A stable 53-bit fingerprint of a request (cyrb53): equal requests, equal hashes. */
export function requestHash(request: unknown): string {
  const text = JSON.stringify(request);
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}
