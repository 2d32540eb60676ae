import { sign, verify } from 'hono/jwt';
import { z } from 'zod';
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
});

export async function issueToken(user: AuthUser, secret: string, now = Date.now()) {
  const exp = Math.floor(now / 1000) + TOKEN_TTL_SECONDS;
  const token = await sign(
    { sub: user.id, name: user.name, role: user.role, iat: Math.floor(now / 1000), exp },
    secret,
    'HS256',
  );
  return { token, expiresAt: exp * 1000 };
}

/** The user a token names, or null when it is malformed, badly signed or expired. */
export async function verifyToken(token: string, secret: string): Promise<AuthUser | null> {
  try {
    const payload = claims.safeParse(await verify(token, secret, 'HS256'));
    if (!payload.success) return null;
    return { id: payload.data.sub, name: payload.data.name, role: payload.data.role };
  } catch {
    return null;
  }
}

export function requireSecret(env: Env): string {
  const secret = env.JWT_SECRET;
  if (!secret || secret.length < 16) {
    throw new Error('JWT_SECRET is missing or shorter than 16 characters (see .dev.vars.example)');
  }
  return secret;
}
