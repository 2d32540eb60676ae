// Which event a booking's Idempotency-Key belongs to. Keys are per user across events, and each
// event commits its bookings in its own object, so two events racing for one key need one place
// both can reach: a KeyClaims object, one of a fixed set of shards chosen by the first two
// characters of the user's id (`keys:<prefix>`, 256 for UUIDs), so the few objects on this path
// stay warm and share the load. An event's object asks here once, the first time it sees a key,
// and keeps the answer itself from then on (docs/bookings.md, "Idempotency-Key": the choice and
// its cost).
import { DurableObject } from 'cloudflare:workers';
import { bookingWithKey, keysOfUsers } from '../../db/bookings';
import { IDEMPOTENCY_TTL_MS } from '../../protocol/events';

const PREFIX = 'keys:';
const SHARD_CHARS = 2;

export type Claim = { ok: true } | { ok: false; message: string };

/** The shard that holds a user's keys. */
export function shardOf(userId: string): string {
  return userId.slice(0, SHARD_CHARS);
}

export class KeyClaims extends DurableObject<Env> {
  readonly #shard: string;
  readonly #sql: SqlStorage;
  #seeded: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const name = ctx.id.name;
    if (!name?.startsWith(PREFIX)) throw new Error('KeyClaims: must be reached by keys:<shard>');
    this.#shard = name.slice(PREFIX.length);
    this.#sql = ctx.storage.sql;
    // `hash` fingerprints the request (its event and quantity); `booking_id` is set once the
    // key is known to have booked, which it then holds for good.
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS key_claims (user_id TEXT NOT NULL, key TEXT NOT NULL,
      hash TEXT NOT NULL, at INTEGER NOT NULL, booking_id TEXT, PRIMARY KEY (user_id, key))`);
    this.#sql.exec('CREATE TABLE IF NOT EXISTS key_meta (name TEXT PRIMARY KEY, value TEXT)');
  }

  /**
   * Claims a user's `key` for the request fingerprinted `hash` (which names the event): granted
   * for a new key, an expired one that never booked, or the same request again; refused otherwise.
   */
  async claim(userId: string, key: string, hash: string): Promise<Claim> {
    await this.#seed();
    const now = Date.now();
    const expired = (at: number) => at < now - IDEMPOTENCY_TTL_MS;
    let row = this.#row(userId, key);
    if (row && expired(row.at) && row.booking_id === null) {
      // Taking over an expired key is rare; whether it booked is in D1 long before 24 h pass.
      const booked = await bookingWithKey(this.env.DB, userId, key);
      if (booked) {
        this.#sql.exec(
          'UPDATE key_claims SET booking_id = ? WHERE user_id = ? AND key = ?',
          booked,
          userId,
          key,
        );
      }
      row = this.#row(userId, key);
    }
    if (row && !expired(row.at)) {
      return row.hash === hash
        ? { ok: true }
        : { ok: false, message: 'this Idempotency-Key was already used for a different request' };
    }
    if (row?.booking_id) {
      return {
        ok: false,
        message: `this Idempotency-Key made booking ${row.booking_id}; use a new key for a new booking`,
      };
    }
    this.#sql.exec(
      `INSERT OR REPLACE INTO key_claims (user_id, key, hash, at, booking_id)
       VALUES (?, ?, ?, ?, NULL)`,
      userId,
      key,
      hash,
      now,
    );
    return { ok: true };
  }

  /** Gives a claim back when its attempt failed before storing any answer. */
  release(userId: string, key: string, hash: string): void {
    this.#sql.exec(
      'DELETE FROM key_claims WHERE user_id = ? AND key = ? AND hash = ? AND booking_id IS NULL',
      userId,
      key,
      hash,
    );
  }

  #row(userId: string, key: string) {
    return this.#sql
      .exec<{ hash: string; at: number; booking_id: string | null }>(
        'SELECT hash, at, booking_id FROM key_claims WHERE user_id = ? AND key = ?',
        userId,
        key,
      )
      .toArray()[0];
  }

  /** Keys used before this object existed live in D1: read this shard's once, ever. */
  #seed(): Promise<void> {
    this.#seeded ??= this.#readSeed().catch((err: unknown) => {
      this.#seeded = null;
      throw err;
    });
    return this.#seeded;
  }

  async #readSeed(): Promise<void> {
    const done = this.#sql
      .exec<{ value: string }>("SELECT value FROM key_meta WHERE name = 'seeded'")
      .toArray()[0];
    if (done) return;
    const last = this.#shard.charCodeAt(this.#shard.length - 1);
    const next = `${this.#shard.slice(0, -1)}${String.fromCharCode(last + 1)}`;
    const since = Date.now() - IDEMPOTENCY_TTL_MS;
    const { answers, booked } = await keysOfUsers(this.env.DB, this.#shard, next, since);
    this.ctx.storage.transactionSync(() => {
      for (const a of answers) {
        this.#sql.exec(
          `INSERT OR IGNORE INTO key_claims (user_id, key, hash, at, booking_id)
           VALUES (?, ?, ?, ?, NULL)`,
          a.userId,
          a.key,
          a.requestHash,
          a.at,
        );
      }
      for (const b of booked) {
        this.#sql.exec(
          `INSERT INTO key_claims (user_id, key, hash, at, booking_id) VALUES (?, ?, '', 0, ?)
           ON CONFLICT (user_id, key) DO UPDATE SET booking_id = excluded.booking_id`,
          b.userId,
          b.key,
          b.bookingId,
        );
      }
      this.#sql.exec("INSERT OR REPLACE INTO key_meta (name, value) VALUES ('seeded', '1')");
    });
  }
}

/** How an event's object reaches the shards: one round trip a claim, only for keys new to it. */
export class KeyShards {
  // Naming an object costs more than the call on this path, so each object keeps its stubs
  // (a stub belongs to the object that made it).
  readonly #stubs = new Map<string, DurableObjectStub<KeyClaims>>();

  constructor(private readonly env: Env) {}

  claim(userId: string, key: string, hash: string): Promise<Claim> {
    return this.#stub(userId).claim(userId, key, hash);
  }

  release(userId: string, key: string, hash: string): Promise<void> {
    return this.#stub(userId).release(userId, key, hash);
  }

  #stub(userId: string): DurableObjectStub<KeyClaims> {
    const shard = shardOf(userId);
    let stub = this.#stubs.get(shard);
    if (!stub) {
      stub = this.env.KEY_CLAIMS.get(this.env.KEY_CLAIMS.idFromName(`${PREFIX}${shard}`));
      this.#stubs.set(shard, stub);
    }
    return stub;
  }
}
