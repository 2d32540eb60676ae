// Stored first answers for `Idempotency-Key` (the `idempotency_keys` table). Bookings keep
// theirs with the booking (rooms/event-inventory.ts, scope `booking`); every other write route
// goes through http/idempotency.ts, with a scope per route. One row per (user, scope, key).
import { IDEMPOTENCY_TTL_MS } from '../protocol/events';

/** While a claim runs, its row has this status and the claim's token as its body. */
const PENDING = 0;

/** A claim older than this whose request never finished (the isolate died) may be taken over. */
export const STALE_CLAIM_MS = 60_000;

export interface KeyRef {
  userId: string;
  scope: string;
  key: string;
}

export type Claim =
  | { kind: 'claimed'; token: string }
  | { kind: 'answered'; requestHash: string; status: number; body: string }
  | { kind: 'running'; requestHash: string };

/**
 * Claims the key for a request, atomically: a new key, one whose answer is past the TTL, or a
 * stale claim becomes ours; otherwise the row that holds it says what to do.
 */
export async function claimKey(
  d1: D1Database,
  ref: KeyRef,
  requestHash: string,
  now = Date.now(),
): Promise<Claim> {
  const token = crypto.randomUUID();
  const [claimed, current] = await d1.batch<{
    requestHash: string;
    status: number;
    body: string;
  }>([
    d1
      .prepare(
        `INSERT INTO idempotency_keys
           (user_id, scope, key, request_hash, response_status, response_body, created_at)
         VALUES (?1, ?2, ?3, ?4, ${PENDING}, ?5, ?6)
         ON CONFLICT (user_id, scope, key) DO UPDATE SET
           request_hash = excluded.request_hash, response_status = ${PENDING},
           response_body = excluded.response_body, created_at = excluded.created_at
         WHERE idempotency_keys.created_at < ?7
            OR (idempotency_keys.response_status = ${PENDING} AND idempotency_keys.created_at < ?8)
         RETURNING 1`,
      )
      .bind(
        ref.userId,
        ref.scope,
        ref.key,
        requestHash,
        token,
        now,
        now - IDEMPOTENCY_TTL_MS,
        now - STALE_CLAIM_MS,
      ),
    d1
      .prepare(
        `SELECT request_hash AS requestHash, response_status AS status, response_body AS body
         FROM idempotency_keys WHERE user_id = ?1 AND scope = ?2 AND key = ?3`,
      )
      .bind(ref.userId, ref.scope, ref.key),
  ]);
  if (claimed?.results.length) return { kind: 'claimed', token };
  const row = current?.results[0];
  if (!row) throw new Error('idempotency key neither claimed nor found');
  if (row.status === PENDING) return { kind: 'running', requestHash: row.requestHash };
  return { kind: 'answered', ...row };
}

/** Stores the answer of a claimed request; from now on a retry replays it. */
export async function completeKey(
  d1: D1Database,
  ref: KeyRef,
  token: string,
  answer: { status: number; body: string },
): Promise<void> {
  await d1
    .prepare(
      `UPDATE idempotency_keys SET response_status = ?1, response_body = ?2
       WHERE user_id = ?3 AND scope = ?4 AND key = ?5
         AND response_status = ${PENDING} AND response_body = ?6`,
    )
    .bind(answer.status, answer.body, ref.userId, ref.scope, ref.key, token)
    .run();
}

/** Gives up a claim (the request failed), so a retry runs afresh. */
export async function releaseKey(d1: D1Database, ref: KeyRef, token: string): Promise<void> {
  await d1
    .prepare(
      `DELETE FROM idempotency_keys
       WHERE user_id = ?1 AND scope = ?2 AND key = ?3
         AND response_status = ${PENDING} AND response_body = ?4`,
    )
    .bind(ref.userId, ref.scope, ref.key, token)
    .run();
}

/** Rows deleted per statement, so one prune never holds D1 for long. */
const PRUNE_BATCH = 1000;
/** Statements per prune run; the next run (hourly) takes the rest. */
const PRUNE_ROUNDS = 50;

/** Deletes every stored answer and claim older than the TTL, in every scope. */
export async function pruneExpiredIdempotencyKeys(
  d1: D1Database,
  now = Date.now(),
): Promise<number> {
  let deleted = 0;
  for (let round = 0; round < PRUNE_ROUNDS; round++) {
    const result = await d1
      .prepare(
        `DELETE FROM idempotency_keys WHERE rowid IN (
           SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ${PRUNE_BATCH})`,
      )
      .bind(now - IDEMPOTENCY_TTL_MS)
      .run();
    deleted += result.meta.changes;
    if (result.meta.changes < PRUNE_BATCH) break;
  }
  return deleted;
}
