// Comments in D1: written from each comment room's outbox (idempotently), read for history
// older than what a room keeps.
import { and, desc, eq, isNull } from 'drizzle-orm';
import type { LanePage, LaneStore } from '../channel/messages';
import type { Comment } from '../protocol/comments';
import { authorColumns, authorOf, db, schema } from './client';
import { pageOf, pastCursor } from './paging';

export const commentStore: LaneStore<Comment> = {
  insert: (d1, itemId, c) => [
    d1
      .prepare(
        `INSERT INTO comments (id, item_id, user_id, body, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING`,
      )
      .bind(c.id, itemId, c.user.id, c.body, c.createdAt),
  ],
  remove: (d1, d) => [
    d1
      .prepare(
        'UPDATE comments SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL',
      )
      .bind(d.at, d.by, d.id),
  ],
  async find(d1, itemId, id) {
    const row = await db(d1)
      .select({ userId: schema.comments.userId, deletedAt: schema.comments.deletedAt })
      .from(schema.comments)
      .where(and(eq(schema.comments.id, id), eq(schema.comments.itemId, itemId)))
      .get();
    return row ?? null;
  },
  page: commentPage,
};

/** A page of live comments on an item, newest first; `before` is an opaque `<createdAt>.<id>`. */
export async function commentPage(
  d1: D1Database,
  itemId: string,
  limit: number,
  before?: string,
): Promise<LanePage<Comment>> {
  const t = schema.comments;
  const rows = await db(d1)
    .select({ id: t.id, body: t.body, createdAt: t.createdAt, ...authorColumns })
    .from(t)
    .innerJoin(schema.users, eq(schema.users.id, t.userId))
    .where(
      and(eq(t.itemId, itemId), isNull(t.deletedAt), pastCursor(t.createdAt, t.id, before, 'desc')),
    )
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => [r.createdAt, r.id]);
  return {
    messages: page.map((r) => ({
      id: r.id,
      user: authorOf(r),
      body: r.body,
      createdAt: r.createdAt,
    })),
    nextCursor,
  };
}
