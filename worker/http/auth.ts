import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { isRevoked } from '../auth/revocations';
import { type AuthUser, requireSecret, tokenIssuedAt, verifyToken } from '../auth/tokens';
import { originAllowed } from '../channel/origins';
import type { Role } from '../db/schema';
import { ErrorCode } from '../protocol/core';
import type { AppEnv } from './app-env';
import { ApiError } from './errors';

/** The bearer token of a request: the `Authorization` header, or `?token=` for browser sockets. */
export function tokenOf(request: Request, allowQuery: boolean): string | null {
  const header = request.headers.get('authorization');
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1])
      throw new ApiError(401, ErrorCode.invalidToken, 'Authorization must be "Bearer <token>"');
    return match[1];
  }
  if (allowQuery) return new URL(request.url).searchParams.get('token');
  return null;
}

/**
 * Sets `user` from the token if one is present. A present but invalid or expired token is
 * refused with 401 (never silently downgraded to anonymous).
 */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const isUpgrade = c.req.header('upgrade')?.toLowerCase() === 'websocket';
  const token = tokenOf(c.req.raw, isUpgrade);
  if (token === null || token === '') {
    c.set('user', null);
  } else {
    const user = await verifyToken(token, requireSecret(c.env));
    if (!user) throw new ApiError(401, ErrorCode.invalidToken, 'token is invalid or expired');
    await refuseRevoked(c.env, user);
    c.set('user', user);
  }
  await next();
});

/** 401 `token_revoked` for a token issued before the user logged out everywhere. */
export async function refuseRevoked(env: Env, user: AuthUser): Promise<void> {
  if (await isRevoked(env, user.id, tokenIssuedAt(user))) {
    throw new ApiError(
      401,
      ErrorCode.tokenRevoked,
      'this token was issued before a "log out everywhere": sign in again',
    );
  }
}

export function currentUser(c: Context<AppEnv>): AuthUser {
  const user = c.get('user');
  if (!user) throw new ApiError(401, ErrorCode.authRequired, 'sign in first');
  return user;
}

export function requireRole(c: Context<AppEnv>, ...roles: Role[]): AuthUser {
  const user = currentUser(c);
  if (user.role !== 'admin' && !roles.includes(user.role)) {
    throw new ApiError(403, ErrorCode.forbidden, `requires role ${roles.join(' or ')}`);
  }
  return user;
}

export { allowedOrigins, originAllowed } from '../channel/origins';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A state-changing call from a browser page on another site is refused: CORS only hides the
 * answer from that page, the write itself would still happen (e.g. a login through a
 * visitor's browser). No Origin (servers, CLIs) is allowed; the token guards those.
 */
export const writeOrigin = createMiddleware<AppEnv>(async (c, next) => {
  if (!SAFE_METHODS.has(c.req.method) && !originAllowed(c.req.header('origin'), c.env)) {
    throw new ApiError(403, ErrorCode.originNotAllowed, 'this Origin may not call the API');
  }
  await next();
});

/** Refuses anonymous callers (401) before their input is looked at. */
export const signedIn = createMiddleware<AppEnv>(async (c, next) => {
  currentUser(c);
  await next();
});

/** Refuses callers without one of `roles` (admins always pass): 401 anonymous, 403 others. */
export function signedInAs(...roles: Role[]) {
  return createMiddleware<AppEnv>(async (c, next) => {
    requireRole(c, ...roles);
    await next();
  });
}
