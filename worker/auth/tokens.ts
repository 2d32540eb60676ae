import { sign, verify } from 'hono/jwt';
import { z } from 'zod';
import { rememberIssuedAt } from '../channel/identity';
import { ROLES, type Role } from '../db/schema';
import type { PublicUser } from '../protocol/core';

export const TOKEN_TTL_SECONDS = 12 * 60 * 60;

export interface AuthUser extends PublicUser {
  role: Role;
}

const claims = z.object({
  sub: z.string().min(1),
  name: z.string(),
  role: z.enum(ROLES),
  exp: z.number(),
  iat: z.number().optional(),
  // Milliseconds (JWT's `iat` is whole seconds): "log out everywhere" refuses tokens issued
  // before its moment, and a token issued in the same second but after it must still work.
  iatMs: z.number().optional(),
});

export async function issueToken(user: AuthUser, secret: string, now = Date.now()) {
  const exp = Math.floor(now / 1000) + TOKEN_TTL_SECONDS;
  const token = await sign(
    {
      sub: user.id,
      name: user.name,
      role: user.role,
      iat: Math.floor(now / 1000),
      iatMs: now,
      exp,
    },
    secret,
    'HS256',
  );
  return { token, expiresAt: exp * 1000 };
}

/** When a verified user's token was issued (epoch ms; 0 when it does not say). */
export function issuedAtOf(data: { iat?: number | undefined; iatMs?: number | undefined }): number {
  return data.iatMs ?? (data.iat === undefined ? 0 : data.iat * 1000);
}

/**
 * The user a token names, or null when it is malformed, badly signed or expired. When it was
 * issued travels beside the user (`tokenIssuedAt`), for the revocation checks.
 */
export async function verifyToken(token: string, secret: string): Promise<AuthUser | null> {
  try {
    const payload = claims.safeParse(await verify(token, secret, 'HS256'));
    if (!payload.success) return null;
    const user: AuthUser = {
      id: payload.data.sub,
      name: payload.data.name,
      role: payload.data.role,
    };
    const at = issuedAtOf(payload.data);
    rememberIssuedAt(user, at);
    issued.set(user, at);
    return user;
  } catch {
    return null;
  }
}

const issued = new WeakMap<AuthUser, number>();

/** When the token behind a user returned by `verifyToken` was issued (epoch ms). */
export function tokenIssuedAt(user: AuthUser): number {
  return issued.get(user) ?? 0;
}

export function requireSecret(env: Env): string {
  const secret = env.JWT_SECRET;
  if (!secret || secret.length < 16) {
    throw new Error('JWT_SECRET is missing or shorter than 16 characters (see .dev.vars.example)');
  }
  return secret;
}
