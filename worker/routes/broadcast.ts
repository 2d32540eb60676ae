// The platform broadcast: `/ws/broadcast` (a relay picked by the worker), the active
// announcements over REST, admins posting and withdrawing announcements and market values, and
// platform presence (`GET /api/presence`, the admins' online count). docs/protocol.md, "Broadcast";
// docs/presence.md.
import { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../http/app-env';
import { requireRole, signedIn, signedInAs } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotencyKeyOf } from '../http/idempotency';
import { jsonBody, pathId, query } from '../http/validate';
import { announcementBody, marketBody } from '../protocol/broadcast';
import { ErrorCode } from '../protocol/core';
import { MAX_WATCH_IDS, userId } from '../protocol/presence';
import { broadcast, broadcastRoot, relayCount } from '../rooms/broadcast/kind';
import { onlineCount, statusesOf } from '../rooms/presence/kind';
import { answered } from './answers';

/** `?ids=a,b,c` (or repeated `ids=`): 1–MAX_WATCH_IDS user ids; more is `too_many_ids`. */
export const presenceQuery = z.object({
  ids: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).filter(Boolean))
    .pipe(z.array(userId).min(1, 'name at least one id')),
});

export function checkIdCount(ids: readonly string[]): string[] {
  const unique = [...new Set(ids)];
  if (unique.length > MAX_WATCH_IDS) {
    throw new ApiError(
      400,
      ErrorCode.tooManyIds,
      `at most ${MAX_WATCH_IDS} ids per request (got ${unique.length})`,
    );
  }
  return unique;
}

export const broadcastRoutes = new Hono<AppEnv>()
  .get('/announcements', async (c) =>
    c.json({ announcements: await broadcastRoot.room(c.env).announcements() }),
  )
  .post('/admin/announcements', signedInAs('admin'), jsonBody(announcementBody), async (c) => {
    const user = requireRole(c, 'admin');
    const frame = { type: 'announcement.post', ...c.req.valid('json') };
    const answer = await broadcastRoot.room(c.env).request(user, frame, idempotencyKeyOf(c));
    return answered(c, answer, 201);
  })
  .delete('/admin/announcements/:announcementId', signedInAs('admin'), async (c) => {
    const user = requireRole(c, 'admin');
    const frame = { type: 'announcement.withdraw', announcementId: pathId(c, 'announcementId') };
    const answer = await broadcastRoot.room(c.env).request(user, frame, idempotencyKeyOf(c));
    return answered(c, answer, 200);
  })
  .post('/admin/market', signedInAs('admin'), jsonBody(marketBody), async (c) => {
    const user = requireRole(c, 'admin');
    const frame = { type: 'market.set', ...c.req.valid('json') };
    const answer = await broadcastRoot.room(c.env).request(user, frame, idempotencyKeyOf(c));
    return answered(c, answer, 200);
  })
  .get('/presence', signedIn, query(presenceQuery), async (c) => {
    const ids = checkIdCount(c.req.valid('query').ids);
    return c.json({ users: await statusesOf(c.env, ids) });
  })
  .get('/admin/presence', signedInAs('admin'), async (c) => c.json(await onlineCount(c.env)));

const RELAY_HINT = /^\d{1,4}$/;

/**
 * `/ws/broadcast`: a relay chosen at random (or the one `?relay=` names, so a resume finds its
 * log); a full relay (429) passes the socket on to the next one.
 */
export const broadcastSockets = new Hono<AppEnv>().get('/broadcast', async (c) => {
  const n = relayCount(c.env);
  const hint = c.req.query('relay');
  const start =
    hint !== undefined && RELAY_HINT.test(hint) && Number(hint) < n
      ? Number(hint)
      : Math.floor(Math.random() * n);
  let refused: Response | null = null;
  for (let i = 0; i < n; i++) {
    const res = await broadcast.connect(c.req.raw, c.env, c.get('user'), String((start + i) % n));
    if (res.status !== 429) return res;
    refused = res;
  }
  return refused as Response;
});
