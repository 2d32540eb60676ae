// The server publish API for trusted backends (docs/server-api.md): `Authorization: Bearer
// <SERVER_API_KEY>` on every call, checked before anything else (a wrong or missing key is 401
// and reaches no object). Writes to a channel are deduped by `Idempotency-Key` in that channel's
// own ledger, under the server's principal — the same rule as the public API.
import { Hono } from 'hono';
import { z } from 'zod';
import { MAX_APP_EVENT_BYTES } from '../channel/app-events';
import type { AppEnv } from '../http/app-env';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf, idempotent } from '../http/idempotency';
import { serverKey } from '../http/server-key';
import { jsonBody, pathId, query } from '../http/validate';
import { announcementBody, marketBody } from '../protocol/broadcast';
import { ErrorCode, SERVER_PRINCIPAL, text } from '../protocol/core';
import { balanceInput, notificationInput } from '../protocol/user';
import { broadcastRoot } from '../rooms/broadcast/kind';
import { statusesOf } from '../rooms/presence/kind';
import { userChannel } from '../rooms/user/kind';
import { answered } from './answers';
import { checkIdCount, presenceQuery } from './broadcast';
import { channelKind } from './channels';
import { existingUser, logOutEverywhere } from './me';

const publishBody = z
  .object({
    channel: z.string().min(1).max(200),
    type: z.string().min(1).max(200),
    data: z.unknown().optional(),
  })
  .strict();

const historyQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(1).optional(),
});

/** Channel names from a path segment (`comments:story-1`, `lobby`); anything else is unknown. */
function channelParam(name: string | undefined) {
  const resolved = name ? channelKind(name) : null;
  if (!resolved) throw new ApiError(404, ErrorCode.unknownChannel, `no channel ${name ?? ''}`);
  return resolved;
}

export const serverRoutes = new Hono<AppEnv>()
  .use(serverKey)
  // Before the body is parsed: a body over the limit (plus room for the envelope) is refused unread.
  .post('/publish', async (c, next) => {
    const length = Number(c.req.header('content-length') ?? '0');
    if (length > MAX_APP_EVENT_BYTES + 1024) {
      throw new ApiError(
        413,
        ErrorCode.payloadTooLarge,
        `at most ${MAX_APP_EVENT_BYTES} bytes of data`,
      );
    }
    await next();
  })
  .post('/publish', jsonBody(publishBody), async (c) => {
    const { channel, type, data } = c.req.valid('json');
    const key = idempotencyKeyOf(c);
    const { kind, id } = channelParam(channel);
    const answer = await kind.room(c.env, id).publishApp(type, data ?? null, key);
    return answered(c, answer, 201);
  })
  .get('/channels/:channel/presence', async (c) => {
    idempotencyKeyOf(c);
    const { kind, id } = channelParam(c.req.param('channel'));
    return c.json(await kind.room(c.env, id).channelInfo());
  })
  .get('/channels/:channel/history', query(historyQuery), async (c) => {
    idempotencyKeyOf(c);
    const { kind, id } = channelParam(c.req.param('channel'));
    const { limit, before } = c.req.valid('query');
    return c.json(await kind.room(c.env, id).recentEvents(limit, before));
  })
  .get('/announcements', async (c) => {
    idempotencyKeyOf(c);
    return c.json({ announcements: await broadcastRoot.room(c.env).announcements() });
  })
  .post('/announcements', jsonBody(announcementBody), async (c) => {
    const frame = { type: 'announcement.post', ...c.req.valid('json') };
    const answer = await broadcastRoot
      .room(c.env)
      .request(SERVER_PRINCIPAL, frame, idempotencyKeyOf(c));
    return answered(c, answer, 201);
  })
  .delete('/announcements/:announcementId', async (c) => {
    const frame = { type: 'announcement.withdraw', announcementId: pathId(c, 'announcementId') };
    const answer = await broadcastRoot
      .room(c.env)
      .request(SERVER_PRINCIPAL, frame, idempotencyKeyOf(c));
    return answered(c, answer, 200);
  })
  .post('/market', jsonBody(marketBody), async (c) => {
    const frame = { type: 'market.set', ...c.req.valid('json') };
    const answer = await broadcastRoot
      .room(c.env)
      .request(SERVER_PRINCIPAL, frame, idempotencyKeyOf(c));
    return answered(c, answer, 200);
  })
  // One user, through their own channel (docs/notifications.md). These are not a channel's
  // sequenced writes of the server's own, so their Idempotency-Key answers are kept in D1.
  .post('/users/:userId/notifications', jsonBody(notificationInput), idempotent, async (c) => {
    const userId = await existingUser(c.env, pathId(c, 'userId'));
    const result = await userChannel.room(c.env, userId).notify(c.req.valid('json'));
    return c.json(result, result.created ? 201 : 200);
  })
  .post('/users/:userId/balance', jsonBody(balanceInput), idempotent, async (c) => {
    const userId = await existingUser(c.env, pathId(c, 'userId'));
    return c.json(await userChannel.room(c.env, userId).setBalance(c.req.valid('json')));
  })
  .post(
    '/users/:userId/disconnect',
    jsonBody(z.object({ reason: text().trim().min(1).max(200).optional() }).strict()),
    idempotent,
    async (c) => {
      const userId = await existingUser(c.env, pathId(c, 'userId'));
      const { reason } = c.req.valid('json');
      return c.json(await logOutEverywhere(c.env, userId, reason ?? 'logged out by the service'));
    },
  )
  .get('/presence', query(presenceQuery), async (c) => {
    idempotencyKeyOf(c);
    const ids = checkIdCount(c.req.valid('query').ids);
    return c.json({ users: await statusesOf(c.env, ids) });
  });
