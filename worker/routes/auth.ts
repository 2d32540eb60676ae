import { Hono } from 'hono';
import { z } from 'zod';
import { hashPassword, verifyPassword } from '../auth/password';
import { type AuthUser, issueToken, requireSecret } from '../auth/tokens';
import { findUserByEmail, findUserById, insertUser, type UserRow } from '../db/accounts';
import type { Role } from '../db/schema';
import type { AppEnv } from '../http/app-env';
import { currentUser } from '../http/auth';
import { ApiError } from '../http/errors';
import { loginLimit, registerLimit, spendLoginAttempt } from '../http/rate-limit';
import { jsonBody } from '../http/validate';
import { ErrorCode, text } from '../protocol/core';

const email = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email({ message: 'must be an e-mail address' }).max(254));
const password = text().min(8, 'must be at least 8 characters').max(256);

const registerBody = z.object({
  email,
  password,
  displayName: text().trim().min(1, 'must not be empty').max(64),
  // Admins are never self-registered: see ADMIN_EMAILS.
  role: z.enum(['listener', 'station_owner', 'organiser']).default('listener'),
});

const loginBody = z.object({ email, password: text().min(1).max(256) });

function adminEmails(env: Env): Set<string> {
  return new Set(
    (env.ADMIN_EMAILS ?? '')
      .split(',')
      .map((e) => e.trim().toLowerCase())
      .filter(Boolean),
  );
}

function publicUser(row: UserRow): AuthUser {
  return { id: row.id, name: row.displayName, role: row.role };
}

export const authRoutes = new Hono<AppEnv>()
  .post('/auth/register', registerLimit, jsonBody(registerBody), async (c) => {
    const body = c.req.valid('json');
    const role: Role = adminEmails(c.env).has(body.email) ? 'admin' : body.role;
    const row: UserRow = {
      id: crypto.randomUUID(),
      email: body.email,
      passwordHash: await hashPassword(body.password),
      displayName: body.displayName,
      role,
      createdAt: Date.now(),
    };
    if (!(await insertUser(c.env.DB, row))) {
      throw new ApiError(409, ErrorCode.emailTaken, 'an account with this e-mail already exists');
    }
    const user = publicUser(row);
    const token = await issueToken(user, requireSecret(c.env));
    return c.json({ user: { ...user, email: row.email }, ...token }, 201);
  })
  .post('/auth/login', loginLimit, jsonBody(loginBody), async (c) => {
    const body = c.req.valid('json');
    await spendLoginAttempt(c, body.email);
    const row = await findUserByEmail(c.env.DB, body.email);
    // Same answer, same work, whether the e-mail or the password was wrong.
    const ok = await verifyPassword(body.password, row?.passwordHash);
    if (!row || !ok)
      throw new ApiError(401, ErrorCode.invalidCredentials, 'e-mail or password is wrong');
    const user = publicUser(row);
    const token = await issueToken(user, requireSecret(c.env));
    return c.json({ user: { ...user, email: row.email }, ...token });
  })
  .get('/me', async (c) => {
    const me = currentUser(c);
    const row = await findUserById(c.env.DB, me.id);
    if (!row)
      throw new ApiError(
        401,
        ErrorCode.invalidToken,
        'the account behind this token no longer exists',
      );
    return c.json({ user: { ...publicUser(row), email: row.email, createdAt: row.createdAt } });
  });
