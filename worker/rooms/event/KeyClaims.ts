// One small object per user (`keys:<userId>`) that settles which event a booking's
// Idempotency-Key belongs to. Keys are per user across events, and each event commits its
// bookings in its own object, so two events racing for one key need one place both can reach:
// an event's object asks here once, the first time it sees a key, and keeps the answer itself
// from then on (docs/bookings.md, "Idempotency-Key", for the choice and its cost).
import { DurableObject } from 'cloudflare:workers';
import { bookingWithKey, keysOfUser } from '../../db/bookings';
import { IDEMPOTENCY_TTL_MS } from '../../protocol/events';

const PREFIX = 'keys:';

export type Claim = { ok: true } | { ok: false; message: string };

export class KeyClaims extends DurableObject<Env> {
  readonly #userId: string;
  readonly #sql: SqlStorage;
  #seeded: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const name = ctx.id.name;
    if (!name?.startsWith(PREFIX)) throw new Error('KeyClaims: must be reached by keys:<userId>');
    this.#userId = name.slice(PREFIX.length);
    this.#sql = ctx.storage.sql;
    // `hash` fingerprints the request (its event and quantity); `booking_id` is set once the
    // key is known to have booked, which it then holds for good.
    this.#sql.exec(`CREATE TABLE IF NOT EXISTS key_claims (key TEXT PRIMARY KEY, hash TEXT NOT NULL,
      at INTEGER NOT NULL, booking_id TEXT)`);
    this.#sql.exec('CREATE TABLE IF NOT EXISTS key_meta (name TEXT PRIMARY KEY, value TEXT)');
  }

  /**
   * Claims `key` for the request fingerprinted `hash` (which names the event): granted for a new
   * key, an expired one that never booked, or the same request again; refused otherwise.
   */
  async claim(key: string, hash: string): Promise<Claim> {
    await this.#seed();
    const now = Date.now();
    const expired = (at: number) => at < now - IDEMPOTENCY_TTL_MS;
    let row = this.#row(key);
    if (row && expired(row.at) && row.booking_id === null) {
      // Taking over an expired key is rare; whether it booked is in D1 long before 24 h pass.
      const booked = await bookingWithKey(this.env.DB, this.#userId, key);
      if (booked) {
        this.#sql.exec('UPDATE key_claims SET booking_id = ? WHERE key = ?', booked, key);
      }
      row = this.#row(key);
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
      'INSERT OR REPLACE INTO key_claims (key, hash, at, booking_id) VALUES (?, ?, ?, NULL)',
      key,
      hash,
      now,
    );
    return { ok: true };
  }

  /** Gives a claim back when its attempt failed before storing any answer. */
  release(key: string, hash: string): void {
    this.#sql.exec(
      'DELETE FROM key_claims WHERE key = ? AND hash = ? AND booking_id IS NULL',
      key,
      hash,
    );
  }

  #row(key: string) {
    return this.#sql
      .exec<{ hash: string; at: number; booking_id: string | null }>(
        'SELECT hash, at, booking_id FROM key_claims WHERE key = ?',
        key,
      )
      .toArray()[0];
  }

  /** Keys this user used before this object existed live in D1: read them once, ever. */
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
    const { answers, booked } = await keysOfUser(
      this.env.DB,
      this.#userId,
      Date.now() - IDEMPOTENCY_TTL_MS,
    );
    this.ctx.storage.transactionSync(() => {
      for (const a of answers) {
        this.#sql.exec(
          'INSERT OR IGNORE INTO key_claims (key, hash, at, booking_id) VALUES (?, ?, ?, NULL)',
          a.key,
          a.requestHash,
          a.at,
        );
      }
      for (const b of booked) {
        this.#sql.exec(
          `INSERT INTO key_claims (key, hash, at, booking_id) VALUES (?, '', 0, ?)
           ON CONFLICT (key) DO UPDATE SET booking_id = excluded.booking_id`,
          b.key,
          b.bookingId,
        );
      }
      this.#sql.exec("INSERT OR REPLACE INTO key_meta (name, value) VALUES ('seeded', '1')");
    });
  }
}

function claimsOf(env: Env, userId: string): DurableObjectStub<KeyClaims> {
  return env.KEY_CLAIMS.get(env.KEY_CLAIMS.idFromName(`${PREFIX}${userId}`));
}

/** Asks the user's KeyClaims object for a key (one round trip; only for keys new to an event). */
export function claimKey(env: Env, userId: string, key: string, hash: string): Promise<Claim> {
  return claimsOf(env, userId).claim(key, hash);
}

export function releaseKey(env: Env, userId: string, key: string, hash: string): Promise<void> {
  return claimsOf(env, userId).release(key, hash);
}
