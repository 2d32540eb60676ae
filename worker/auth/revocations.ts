// "Log out everywhere" at the worker's door: a token issued before the user's last revocation is
// refused (401 `token_revoked`) on every REST route and socket upgrade. The moment lives in D1
// (`session_revocations`); each isolate keeps what it read for CACHE_MS, so a busy user costs one
// D1 read per isolate per CACHE_MS, not one per request. The isolate that carried out the
// revocation knows it at once; another isolate learns it within CACHE_MS. Sockets do not wait
// for that: the user's ConnectionQuota refuses them at once (docs/notifications.md).
import { revokedAt } from '../db/notifications';

export const CACHE_MS = 10_000;
/** Users remembered per isolate; the oldest entry goes first past this. */
const MAX_ENTRIES = 10_000;

const cache = new Map<string, { revokedAt: number | null; readAt: number }>();

function remember(userId: string, read: number | null, now: number): void {
  // A read that started before a revocation noted here must not forget it.
  const known = cache.get(userId)?.revokedAt ?? null;
  const at = known === null ? read : Math.max(known, read ?? 0);
  cache.delete(userId);
  cache.set(userId, { revokedAt: at, readAt: now });
  if (cache.size > MAX_ENTRIES) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
}

/** The user's last revocation (epoch ms) or null, cached per isolate for CACHE_MS. */
export async function lastRevocation(env: Env, userId: string, now = Date.now()) {
  const hit = cache.get(userId);
  if (hit && now - hit.readAt < CACHE_MS) return hit.revokedAt;
  const at = await revokedAt(env.DB, userId);
  remember(userId, at, now);
  return at;
}

/** Called where a revocation was carried out: this isolate refuses older tokens from now on. */
export function noteRevocation(userId: string, at: number): void {
  const hit = cache.get(userId);
  if (hit?.revokedAt != null && hit.revokedAt >= at) return;
  remember(userId, at, Date.now());
}

export async function isRevoked(env: Env, userId: string, issuedAt: number): Promise<boolean> {
  const at = await lastRevocation(env, userId);
  return at !== null && issuedAt < at;
}
