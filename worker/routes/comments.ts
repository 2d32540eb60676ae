// Comments on an item: history from the item's room (current) and D1 (older), and writes
// through the room — the same path, dedupe and answers as its socket frames.
import { Hono } from 'hono';
import { z } from 'zod';
import { cursorParam } from '../db/paging';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn } from '../http/auth';
import { idempotencyKeyOf } from '../http/idempotency';
import { messageLimit } from '../http/rate-limit';
import { jsonBody, pathId, query } from '../http/validate';
import { COMMENT_PAGE_SIZE, commentBody } from '../protocol/comments';
import { comments } from '../rooms/comments/kind';
import { answered } from './answers';

const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(COMMENT_PAGE_SIZE),
  // Opaque cursor from a previous page: `<createdAt>.<id>`.
  before: cursorParam,
});

export const commentRoutes = new Hono<AppEnv>()
  .get('/items/:itemId/comments', query(pageQuery), async (c) => {
    const itemId = pathId(c, 'itemId');
    const { limit, before } = c.req.valid('query');
    return c.json(await comments.room(c.env, itemId).history(limit, before));
  })
  // The room keeps the post's Idempotency-Key with the comment (the same rule, in the same
  // commit), so it does not go through `idempotent`.
  .post(
    '/items/:itemId/comments',
    signedIn,
    messageLimit,
    jsonBody(z.object({ body: commentBody })),
    async (c) => {
      const user = currentUser(c);
      const itemId = pathId(c, 'itemId');
      const key = idempotencyKeyOf(c);
      const { body } = c.req.valid('json');
      const frame = { type: 'comment.create', body };
      return answered(c, await comments.room(c.env, itemId).request(user, frame, key), 201);
    },
  )
  .delete('/items/:itemId/comments/:commentId', async (c) => {
    const user = currentUser(c);
    const itemId = pathId(c, 'itemId');
    const frame = { type: 'comment.delete', commentId: pathId(c, 'commentId') };
    const key = idempotencyKeyOf(c);
    return answered(c, await comments.room(c.env, itemId).request(user, frame, key), 200);
  });

export const commentSockets = new Hono<AppEnv>().get('/comments/:itemId', (c) =>
  comments.connect(c.req.raw, c.env, c.get('user'), pathId(c, 'itemId')),
);
