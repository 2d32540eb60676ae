// The server key (`SERVER_API_KEY`, an optional secret): trusted backends and a Prometheus scraper
// send it as `Authorization: Bearer <key>`. Compared in constant time over SHA-256 digests (equal
// lengths, so the comparison says nothing about the key's length either), and never logged.
import { createMiddleware } from 'hono/factory';
import { requireSecret, verifyToken } from '../auth/tokens';
import { ErrorCode } from '../protocol/core';
import type { AppEnv } from './app-env';
import { refuseRevoked } from './auth';
import { ApiError } from './errors';

/** Shorter keys are ignored (treated as unset), so a placeholder can never open the door. */
export const MIN_SERVER_KEY_LENGTH = 32;

export async function isServerKey(env: Env, candidate: string): Promise<boolean> {
  const key = (env as Partial<Pick<Env, 'SERVER_API_KEY'>>).SERVER_API_KEY ?? '';
  if (key.length < MIN_SERVER_KEY_LENGTH) return false;
  const [expected, given] = await Promise.all([digest(key), digest(candidate)]);
  return crypto.subtle.timingSafeEqual(expected, given);
}

function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
}

/**
 * Operator reads outside `/api` (Prometheus scrapes): the server key, or an admin's token.
 * Anything else is 401 (no or bad credentials) or 403 (a valid token that is not an admin's).
 */
export const serverKeyOrAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const match = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  const token = match?.[1];
  if (!token) {
    throw new ApiError(401, ErrorCode.authRequired, 'send the server key or an admin token');
  }
  if (await isServerKey(c.env, token)) {
    await next();
    return;
  }
  const user = await verifyToken(token, requireSecret(c.env));
  if (!user) throw new ApiError(401, ErrorCode.invalidToken, 'token is invalid or expired');
  await refuseRevoked(c.env, user);
  if (user.role !== 'admin') throw new ApiError(403, ErrorCode.forbidden, 'requires role admin');
  await next();
});

/**
 * The server API (docs/server-api.md): the server key, or 401 — a missing, malformed or wrong key
 * alike, before the body is read and before any object is reached. The key is never logged.
 */
export const serverKey = createMiddleware<AppEnv>(async (c, next) => {
  const match = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  const token = match?.[1];
  if (!token || !(await isServerKey(c.env, token))) {
    throw new ApiError(
      401,
      ErrorCode.invalidServerKey,
      'send the server key as "Authorization: Bearer <SERVER_API_KEY>"',
    );
  }
  c.set('user', null);
  c.set('server', true);
  await next();
});
