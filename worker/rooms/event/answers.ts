// The answers of `POST /api/bookings` under an Idempotency-Key, kept in the event's object: a
// booking's answer is stored in the same transaction as the booking, a refusal's (409) on its
// own. A retry of the same request gets the stored status and body byte for byte; the key with
// another request is 422; a retry that arrives while the first is still running waits for it.
// Keys are per user across events: the first time this event sees a key, the user's KeyClaims
// object settles which event it belongs to (docs/bookings.md, "Idempotency-Key").
import { ChannelError } from '../../channel/errors';
import type { StoredAnswer } from '../../db/bookings';
import { ErrorCode } from '../../protocol/core';
import { IDEMPOTENCY_TTL_MS } from '../../protocol/events';
import type { Bookings } from './bookings';

/** An HTTP answer decided by the room; `body` is sent byte for byte (and replayed so). */
export interface Answer {
  status: number;
  body: string;
  /** True when this is a stored answer to an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

export interface Idempotency {
  key: string;
  requestHash: string;
}

/** Expired answers are deleted at most this often, as new ones are stored (no timer). */
const PRUNE_EVERY_MS = 60_000;

/** SHA-256 of the normalised request (defaults applied, key order fixed). */
export async function bookingRequestHash(eventId: string, quantity: number): Promise<string> {
  const canonical = JSON.stringify({ eventId, quantity });
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function keyReused(message: string): ChannelError {
  return new ChannelError(ErrorCode.idempotencyKeyReused, message, 422);
}

export class BookingAnswers {
  readonly #inflight = new Map<string, { hash: string; done: Promise<unknown> }>();
  #prunedAt = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly bookings: Bookings,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS ev_answers (user_id TEXT NOT NULL, key TEXT NOT NULL,
      hash TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (user_id, key))`);
    sql.exec('CREATE INDEX IF NOT EXISTS ev_answers_at ON ev_answers (at)');
  }

  /**
   * What the key already means here: the stored answer (a replay), a refusal for a key used for
   * another request or one that booked before its answer expired, or null for a key new here.
   */
  find(userId: string, idem: Idempotency, now = Date.now()): Answer | null {
    const row = this.sql
      .exec<{ hash: string; status: number; body: string }>(
        'SELECT hash, status, body FROM ev_answers WHERE user_id = ? AND key = ? AND at >= ?',
        userId,
        idem.key,
        now - IDEMPOTENCY_TTL_MS,
      )
      .toArray()[0];
    if (row) {
      if (row.hash !== idem.requestHash) {
        throw keyReused('this Idempotency-Key was already used for a different request');
      }
      return { status: row.status, body: row.body, replayed: true };
    }
    const booked = this.bookings.byKey(userId, idem.key);
    if (booked) {
      throw keyReused(
        `this Idempotency-Key made booking ${booked}; use a new key for a new booking`,
      );
    }
    return null;
  }

  /** Stores an answer; call inside the transaction of the booking it answers. */
  store(userId: string, idem: Idempotency, answer: Omit<Answer, 'replayed'>, now: number): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO ev_answers (user_id, key, hash, status, body, at)
       VALUES (?, ?, ?, ?, ?, ?)`,
      userId,
      idem.key,
      idem.requestHash,
      answer.status,
      answer.body,
      now,
    );
    if (now - this.#prunedAt >= PRUNE_EVERY_MS) {
      this.#prunedAt = now;
      this.sql.exec('DELETE FROM ev_answers WHERE at < ?', now - IDEMPOTENCY_TTL_MS);
    }
  }

  /**
   * Runs `attempt` once per key: a repeat gets the stored answer, a concurrent repeat waits for
   * the first attempt (then gets its answer, or runs itself if the first stored none).
   */
  async once(userId: string, idem: Idempotency, attempt: () => Promise<Answer>): Promise<Answer> {
    const slot = `${userId}\n${idem.key}`;
    for (;;) {
      const stored = this.find(userId, idem);
      if (stored) return stored;
      const running = this.#inflight.get(slot);
      if (!running) break;
      if (running.hash !== idem.requestHash) {
        throw keyReused('this Idempotency-Key was already used for a different request');
      }
      await running.done.catch(() => undefined);
    }
    const done = attempt();
    this.#inflight.set(slot, { hash: idem.requestHash, done });
    try {
      return await done;
    } finally {
      this.#inflight.delete(slot);
    }
  }

  /** Answers D1 had for this event when the object first met it (seeding). */
  put(answers: (StoredAnswer & { userId: string })[]): void {
    for (const a of answers) {
      this.sql.exec(
        `INSERT OR IGNORE INTO ev_answers (user_id, key, hash, status, body, at)
         VALUES (?, ?, ?, ?, ?, ?)`,
        a.userId,
        a.key,
        a.requestHash,
        a.status,
        a.body,
        a.at,
      );
    }
  }
}
