// Chat pace and reactions: the per-user chat limit, messages per minute and the session's
// chat count (for admins), and the reaction lane (throttled per user, summed per window).
import type { SequenceLog } from '../../channel/log';
import { Throttle, TokenBucket } from '../../channel/rate-limit';
import type { ReactionEmoji } from '../../protocol/stream';

/** A user may send this many chat messages in a burst, then one every CHAT_REFILL_SECONDS. */
export const CHAT_BURST = 5;
export const CHAT_REFILL_SECONDS = 2;
/** One reaction per user per this interval counts; faster taps are dropped. */
export const REACTION_THROTTLE_MS = 200;
const MINUTE_MS = 60_000;
const MAX_TRACKED_USERS = 10_000;

export class ChatMeter {
  // In memory: after an eviction a user's bucket starts full again, which only forgives.
  readonly #buckets = new Map<string, TokenBucket>();
  #sessionCount: number;

  constructor(
    private readonly sql: SqlStorage,
    private readonly log: SequenceLog,
  ) {
    sql.exec('CREATE TABLE IF NOT EXISTS stream_chat_times (at INTEGER NOT NULL)');
    this.#sessionCount = Number(log.getMeta('chatCount') ?? '0');
  }

  /** Takes one message from the user's allowance; false when they must slow down. */
  allow(userId: string, now = Date.now()): boolean {
    let bucket = this.#buckets.get(userId);
    if (!bucket) {
      if (this.#buckets.size >= MAX_TRACKED_USERS) this.#buckets.clear();
      bucket = new TokenBucket(
        {
          capacity: CHAT_BURST,
          refillPerSecond: 1 / CHAT_REFILL_SECONDS,
          maxWarnings: Number.POSITIVE_INFINITY,
        },
        now,
      );
      this.#buckets.set(userId, bucket);
    }
    return bucket.take(now) === 'ok';
  }

  record(inSession: boolean, now = Date.now()): void {
    this.sql.exec('INSERT INTO stream_chat_times (at) VALUES (?)', now);
    if (!inSession) return;
    this.#sessionCount += 1;
    this.log.setMeta('chatCount', String(this.#sessionCount));
  }

  get sessionCount(): number {
    return this.#sessionCount;
  }

  perMinute(now = Date.now()): number {
    this.sql.exec('DELETE FROM stream_chat_times WHERE at <= ?', now - MINUTE_MS);
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM stream_chat_times').one().n;
  }

  resetSession(): void {
    this.#sessionCount = 0;
    this.log.setMeta('chatCount', '0');
  }
}

export type ReactionCounts = Partial<Record<ReactionEmoji, number>>;

export class ReactionTally {
  readonly #throttle = new Throttle(REACTION_THROTTLE_MS);
  // Taps of the open window stay in memory: an eviction inside a one-second window loses
  // at most that window, and a tap is never worth a storage write.
  readonly #pending = new Map<ReactionEmoji, number>();
  #totals: ReactionCounts;

  constructor(private readonly log: SequenceLog) {
    this.#totals = JSON.parse(log.getMeta('reactions') ?? '{}') as ReactionCounts;
  }

  /** Counts a tap unless the user tapped within the throttle interval. */
  tap(userId: string, emoji: ReactionEmoji, now = Date.now()): boolean {
    if (!this.#throttle.allow(userId, now)) return false;
    this.#pending.set(emoji, (this.#pending.get(emoji) ?? 0) + 1);
    return true;
  }

  /** The window's counts (null when nobody tapped), added to the session's totals. */
  drain(): ReactionCounts | null {
    if (this.#pending.size === 0) return null;
    const counts: ReactionCounts = {};
    for (const [emoji, n] of this.#pending) {
      counts[emoji] = n;
      this.#totals[emoji] = (this.#totals[emoji] ?? 0) + n;
    }
    this.#pending.clear();
    this.log.setMeta('reactions', JSON.stringify(this.#totals));
    return counts;
  }

  get totals(): ReactionCounts {
    return this.#totals;
  }

  resetSession(): void {
    this.#totals = {};
    this.log.setMeta('reactions', '{}');
  }
}
