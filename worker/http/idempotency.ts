// One meaning of `Idempotency-Key` on every write route (docs/protocol.md, "Idempotency-Key"):
// kept 24 h, the same key and request get the first answer byte for byte, the same key with
// another request is 422. Bookings, comment posts and chat posts keep their answers with the
// write itself (in the event's or channel's own commit); every other write route uses
// `idempotent` below, which keeps them in D1.
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { claimKey, completeKey, type KeyRef, releaseKey } from '../db/idempotency';
import { ErrorCode, SERVER_PRINCIPAL } from '../protocol/core';
import type { AppEnv } from './app-env';
import { ApiError } from './errors';

// Visible ASCII, like Stripe's keys; UUIDs are the obvious choice.
const pattern = /^[\x21-\x7e]{1,255}$/;

/** The request's `Idempotency-Key` header, if any; one rule for every route that takes it. */
export function idempotencyKeyOf(c: Context<AppEnv>): string | undefined {
  const header = c.req.header('idempotency-key');
  if (header === undefined) return undefined;
  if (!pattern.test(header)) {
    throw new ApiError(
      400,
      ErrorCode.invalidIdempotencyKey,
      'Idempotency-Key must be 1–255 visible ASCII characters',
    );
  }
  return header;
}

/** The answer a retry gets: the stored status and body, marked as a replay. */
export function replay(status: number, body: string): Response {
  return new Response(body, {
    status,
    headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
  });
}

/** JSON with object keys sorted, so the same request always hashes the same. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Makes a write route idempotent by key. Goes after the route's validator: the request is
 * fingerprinted by its path parameters and its validated body (defaults applied, text trimmed).
 * The key is claimed in D1 before the handler runs, so two requests with one key never both
 * run (the second gets 409 `idempotency_key_in_use`). A 2xx answer is stored; any other
 * releases the claim, so a retry runs afresh.
 */
export const idempotent = createMiddleware<AppEnv, string, { out: { json: unknown } }>(
  async (c, next) => {
    const key = idempotencyKeyOf(c);
    // The server API's calls keep their keys under the server's principal, apart from users'.
    const owner = c.get('user')?.id ?? (c.get('server') ? SERVER_PRINCIPAL.id : undefined);
    // Without a user the handler refuses anyway (401); nothing to key on.
    if (key === undefined || !owner) return next();
    const ref: KeyRef = { userId: owner, scope: `route:${c.req.method} ${c.req.routePath}`, key };
    const hash = await sha256(canonical({ params: c.req.param(), body: c.req.valid('json') }));
    const claim = await claimKey(c.env.DB, ref, hash);
    if (claim.kind !== 'claimed') {
      if (claim.requestHash !== hash) {
        throw new ApiError(
          422,
          ErrorCode.idempotencyKeyReused,
          'this Idempotency-Key was already used for a different request',
        );
      }
      if (claim.kind === 'running') {
        throw new ApiError(
          409,
          ErrorCode.idempotencyKeyInUse,
          'a request with this Idempotency-Key is still running; retry shortly',
        );
      }
      return replay(claim.status, claim.body);
    }
    let succeeded = false;
    try {
      await next();
      succeeded = c.res.status >= 200 && c.res.status < 300 && !c.error;
    } finally {
      if (!succeeded) await releaseKey(c.env.DB, ref, claim.token);
    }
    const answer = { status: c.res.status, body: await c.res.clone().text() };
    await completeKey(c.env.DB, ref, claim.token, answer).catch((err: unknown) => {
      // The write happened, so the caller gets its answer. The claim stays pending: retries
      // get 409 until it goes stale (STALE_CLAIM_MS) and is taken over.
      console.error(`storing the answer for ${ref.scope} failed:`, err);
    });
  },
);
