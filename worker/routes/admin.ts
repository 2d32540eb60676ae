// Operator views of single channels: what one channel object holds and how often it woke.
import { Hono } from 'hono';
import type { AppEnv } from '../http/app-env';
import { requireRole } from '../http/auth';
import { ApiError } from '../http/errors';
import { pathId } from '../http/validate';
import { ErrorCode } from '../protocol/core';
import { comments } from '../rooms/comments/kind';
import { event } from '../rooms/event/kind';
import { lobby } from '../rooms/lobby/kind';
import { station } from '../rooms/stream/kind';
import { userChannel } from '../rooms/user/kind';

const kinds = { comments, event, lobby, stream: station, user: userChannel } as const;

export const adminRoutes = new Hono<AppEnv>().get('/admin/channels/:kind/:id/stats', async (c) => {
  requireRole(c, 'admin');
  const name = c.req.param('kind');
  const kind = Object.hasOwn(kinds, name) ? kinds[name as keyof typeof kinds] : undefined;
  if (!kind) throw new ApiError(404, ErrorCode.notFound, `no channel kind ${name}`);
  const stub = kind.stub(c.env, pathId(c, 'id')) as unknown as { stats(): Promise<unknown> };
  return c.json(await stub.stats());
});
