// REST rate limits on the Workers Rate Limiting binding (`[[ratelimits]]` in wrangler.toml):
// a counter at the edge, no Durable Object round trip per request. Numbers and reasons are in
// docs/protocol.md ("Limits") and docs/decisions.md.
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { ErrorCode } from '../protocol/core';
import type { AppEnv } from './app-env';
import { ApiError } from './errors';

type LimiterName = 'WRITE_LIMITER' | 'MESSAGE_LIMITER' | 'REGISTER_LIMITER' | 'LOGIN_LIMITER';

/** Each limiter's `period` in seconds, as configured in wrangler.toml (the binding cannot say). */
const PERIOD_SECONDS: Record<LimiterName, number> = {
  WRITE_LIMITER: 60,
  MESSAGE_LIMITER: 10,
  REGISTER_LIMITER: 60,
  LOGIN_LIMITER: 60,
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Counts one request against `key`; refuses with 429 and `Retry-After` once it is over. */
export async function spend(c: Context<AppEnv>, name: LimiterName, key: string): Promise<void> {
  let allowed: boolean;
  try {
    ({ success: allowed } = await c.env[name].limit({ key }));
  } catch (err) {
    // A limiter outage must not take the API down with it.
    console.error(`rate limiter ${name} failed:`, err);
    return;
  }
  if (allowed) return;
  // Fixed windows: waiting one period always finds a fresh one.
  c.header('Retry-After', String(PERIOD_SECONDS[name]));
  throw new ApiError(429, ErrorCode.rateLimited, 'too many requests; retry after a pause');
}

/** The caller's address as Cloudflare's edge reports it (`wrangler dev` sets it too). */
export function clientAddress(c: Context<AppEnv>): string {
  return c.req.header('cf-connecting-ip') ?? 'unknown';
}

/** Every state-changing API call by a signed-in user counts against that user. */
export const writeLimit = createMiddleware<AppEnv>(async (c, next) => {
  const user = c.get('user');
  if (user && !SAFE_METHODS.has(c.req.method)) await spend(c, 'WRITE_LIMITER', `user:${user.id}`);
  await next();
});

/** Comment and chat posts: a tighter pace per user, on top of the write limit. */
export const messageLimit = createMiddleware<AppEnv>(async (c, next) => {
  const user = c.get('user');
  if (user) await spend(c, 'MESSAGE_LIMITER', `user:${user.id}`);
  await next();
});

/** Account creation, per address. */
export const registerLimit = createMiddleware<AppEnv>(async (c, next) => {
  await spend(c, 'REGISTER_LIMITER', `ip:${clientAddress(c)}`);
  await next();
});

/** Sign-in attempts, per address (password guessing from one place). */
export const loginLimit = createMiddleware<AppEnv>(async (c, next) => {
  await spend(c, 'LOGIN_LIMITER', `ip:${clientAddress(c)}`);
  await next();
});

/** Sign-in attempts, per account (one account guessed at from many places). */
export function spendLoginAttempt(c: Context<AppEnv>, email: string): Promise<void> {
  return spend(c, 'LOGIN_LIMITER', `email:${email}`);
}
