// The signed-in user's own channel and inbox: `/ws/me`, the notification routes, log out
// everywhere; and the admin's ways to act on a user (balance, notifications, forced logout) until
// the server publish API carries them. docs/notifications.md.
import { Hono } from 'hono';
import { z } from 'zod';
import { noteRevocation } from '../auth/revocations';
import { findPublicUser } from '../db/accounts';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn, signedInAs } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf } from '../http/idempotency';
import { jsonBody, pathId, query } from '../http/validate';
import { ErrorCode } from '../protocol/core';
import {
  balanceInput,
  MAX_NOTIFICATION_PAGE,
  NOTIFICATION_PAGE_SIZE,
  notificationInput,
  readRequest,
} from '../protocol/user';
import { userChannel } from '../rooms/user/kind';
import { answered } from './answers';

const pageQuery = z
  .object({
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_NOTIFICATION_PAGE)
      .default(NOTIFICATION_PAGE_SIZE),
    before: z
      .string()
      .regex(/^\d{1,15}$/, 'must be a cursor from a previous page')
      .optional(),
    unread: z.enum(['true', 'false']).optional(),
  })
  .strict();

/** Logs a user out everywhere and makes this isolate refuse their older tokens at once. */
export async function logOutEverywhere(env: Env, userId: string, reason: string) {
  const result = await userChannel.room(env, userId).revokeSessions(reason);
  noteRevocation(userId, result.revokedAt);
  return result;
}

export async function existingUser(env: Env, userId: string): Promise<string> {
  if (!(await findPublicUser(env.DB, userId))) {
    throw new ApiError(404, ErrorCode.userNotFound, 'no such user');
  }
  return userId;
}

export const meRoutes = new Hono<AppEnv>()
  .get('/me/notifications', signedIn, query(pageQuery), async (c) => {
    const user = currentUser(c);
    const { limit, before, unread } = c.req.valid('query');
    const page = await userChannel
      .room(c.env, user.id)
      .notifications({ limit, ...(before ? { before } : {}), unread: unread === 'true' });
    return c.json(page);
  })
  .get('/me/notifications/unread-count', signedIn, async (c) => {
    const user = currentUser(c);
    return c.json(await userChannel.room(c.env, user.id).unreadCount());
  })
  .post('/me/notifications/read', signedIn, jsonBody(readRequest), async (c) => {
    const user = currentUser(c);
    const frame = { type: 'notifications.read', ...c.req.valid('json') };
    const room = userChannel.room(c.env, user.id);
    return answered(c, await room.request(user, frame, idempotencyKeyOf(c)), 200);
  })
  .post('/me/notifications/read-all', signedIn, async (c) => {
    const user = currentUser(c);
    const frame = { type: 'notifications.read-all' };
    const room = userChannel.room(c.env, user.id);
    return answered(c, await room.request(user, frame, idempotencyKeyOf(c)), 200);
  })
  .get('/me/balance', signedIn, async (c) => {
    const user = currentUser(c);
    return c.json(await userChannel.room(c.env, user.id).balance());
  })
  .post('/me/logout-all', signedIn, async (c) => {
    const user = currentUser(c);
    return c.json(await logOutEverywhere(c.env, user.id, 'you logged out everywhere'));
  })
  .post('/admin/users/:userId/logout', signedInAs('admin'), async (c) => {
    const userId = await existingUser(c.env, pathId(c, 'userId'));
    return c.json(await logOutEverywhere(c.env, userId, 'an administrator logged you out'));
  })
  .post('/admin/users/:userId/balance', signedInAs('admin'), jsonBody(balanceInput), async (c) => {
    const userId = await existingUser(c.env, pathId(c, 'userId'));
    return c.json(await userChannel.room(c.env, userId).setBalance(c.req.valid('json')));
  })
  .post(
    '/admin/users/:userId/notifications',
    signedInAs('admin'),
    jsonBody(notificationInput),
    async (c) => {
      const userId = await existingUser(c.env, pathId(c, 'userId'));
      const result = await userChannel.room(c.env, userId).notify(c.req.valid('json'));
      return c.json(result, result.created ? 201 : 200);
    },
  );

export const meSockets = new Hono<AppEnv>().get('/me', (c) => {
  // The channel is always the caller's own: no token, no object (401 before it is reached).
  const user = c.get('user');
  if (!user) throw new ApiError(401, ErrorCode.authRequired, 'the user channel needs a token');
  return userChannel.connect(c.req.raw, c.env, user, user.id);
});
