import { and, desc, eq, isNull } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { connectChannel, unwrap } from '../channel/connect';
import { authorColumns, authorOf, db, schema } from '../db/client';
import type { AppEnv } from '../http/app-env';
import { currentUser } from '../http/auth';
import { idempotencyKeyOf } from '../http/idempotency';
import { cursorParam, pageOf, pastCursor } from '../http/paging';
import { parseBody, parseQuery, pathId } from '../http/validate';
import { COMMENT_PAGE_SIZE, commentBody } from '../protocol/comments';
import { commentChannel } from '../rooms/CommentRoom';

const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(COMMENT_PAGE_SIZE),
  // Opaque cursor from a previous page: `<createdAt>.<id>`.
  before: cursorParam,
});

function room(c: { env: Env }, itemId: string) {
  return c.env.COMMENT_ROOM.get(c.env.COMMENT_ROOM.idFromName(commentChannel(itemId)));
}

export const commentRoutes = new Hono<AppEnv>()
  .get('/items/:itemId/comments', async (c) => {
    const itemId = pathId(c, 'itemId');
    const { limit, before } = parseQuery(c, pageQuery);
    const t = schema.comments;
    const cursor = pastCursor(t.createdAt, t.id, before, 'desc');
    const rows = await db(c.env.DB)
      .select({
        id: t.id,
        body: t.body,
        createdAt: t.createdAt,
        ...authorColumns,
      })
      .from(t)
      .innerJoin(schema.users, eq(schema.users.id, t.userId))
      .where(and(eq(t.itemId, itemId), isNull(t.deletedAt), cursor))
      .orderBy(desc(t.createdAt), desc(t.id))
      .limit(limit + 1);
    const { page, nextCursor } = pageOf(rows, limit, (r) => [r.createdAt, r.id]);
    return c.json({
      comments: page.map((r) => ({
        id: r.id,
        itemId,
        user: authorOf(r),
        body: r.body,
        createdAt: r.createdAt,
      })),
      nextCursor,
    });
  })
  .post('/items/:itemId/comments', async (c) => {
    const user = currentUser(c);
    const itemId = pathId(c, 'itemId');
    const key = idempotencyKeyOf(c);
    const { body } = await parseBody(c, z.object({ body: commentBody }));
    const created = unwrap(await room(c, itemId).postComment(itemId, user, body, key));
    return c.json(created, 201);
  })
  .delete('/items/:itemId/comments/:commentId', async (c) => {
    const user = currentUser(c);
    const itemId = pathId(c, 'itemId');
    const commentId = pathId(c, 'commentId');
    return c.json(unwrap(await room(c, itemId).deleteComment(itemId, user, commentId)));
  });

export const commentSockets = new Hono<AppEnv>().get('/comments/:itemId', (c) =>
  connectChannel(c, c.env.COMMENT_ROOM, commentChannel(pathId(c, 'itemId')), { anonymous: true }),
);
