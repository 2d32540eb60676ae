// Stories, their co-authors and play sessions in D1. Routes write the record (title, graph,
// co-authors, published); a story's channel writes its body and a session's channel its path,
// both through their outboxes with idempotent writers (docs/stories.md).
import { and, asc, desc, eq, inArray, or, sql } from 'drizzle-orm';
import type {
  EndReason,
  PlaySessionRecord,
  PlayStep,
  StoryAccess,
  StoryGraph,
  StoryView,
} from '../protocol/stories';
import { inChunks } from './chunks';
import { db, schema } from './client';
import { pageOf, pastCursor } from './paging';

export type StoryRow = typeof schema.stories.$inferSelect;

const s = schema.stories;
const co = schema.storyCoauthors;

export async function insertStory(
  d1: D1Database,
  story: { id: string; ownerId: string; title: string; body: string; graph: StoryGraph | null },
  now = Date.now(),
): Promise<void> {
  await db(d1)
    .insert(s)
    .values({
      ...story,
      graph: story.graph ? JSON.stringify(story.graph) : null,
      createdAt: now,
      updatedAt: now,
    });
}

async function coauthorsOf(d1: D1Database, storyIds: string[]): Promise<Map<string, string[]>> {
  const rows = await inChunks(storyIds, (chunk) =>
    db(d1)
      .select({ storyId: co.storyId, userId: co.userId })
      .from(co)
      .where(inArray(co.storyId, chunk))
      .orderBy(asc(co.addedAt), asc(co.userId)),
  );
  const byStory = new Map<string, string[]>();
  for (const r of rows) byStory.set(r.storyId, [...(byStory.get(r.storyId) ?? []), r.userId]);
  return byStory;
}

function viewOf(row: StoryRow, coauthorIds: string[]): StoryView {
  return {
    id: row.id,
    ownerId: row.ownerId,
    title: row.title,
    body: row.body,
    graph: row.graph ? (JSON.parse(row.graph) as StoryGraph) : null,
    published: row.published,
    publishedAt: row.publishedAt,
    coauthorIds,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function accessOf(view: StoryView, version: number): StoryAccess {
  return {
    storyId: view.id,
    ownerId: view.ownerId,
    coauthorIds: view.coauthorIds,
    published: view.published,
    title: view.title,
    version,
  };
}

/** The story with its co-authors, and the version of its access fields. */
export async function findStory(
  d1: D1Database,
  storyId: string,
): Promise<{ view: StoryView; access: StoryAccess } | null> {
  const row = await db(d1).select().from(s).where(eq(s.id, storyId)).get();
  if (!row) return null;
  const view = viewOf(row, (await coauthorsOf(d1, [row.id])).get(row.id) ?? []);
  return { view, access: accessOf(view, row.accessVersion) };
}

/** Published stories, newest publication first; `before` is a cursor from the previous page. */
export async function listPublished(d1: D1Database, limit: number, before?: string) {
  const rows = await db(d1)
    .select()
    .from(s)
    .where(and(eq(s.published, true), pastCursor(s.publishedAt, s.id, before, 'desc')))
    .orderBy(desc(s.publishedAt), desc(s.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => [r.publishedAt ?? 0, r.id]);
  const coauthors = await coauthorsOf(
    d1,
    page.map((r) => r.id),
  );
  return { stories: page.map((r) => viewOf(r, coauthors.get(r.id) ?? [])), nextCursor };
}

/** Stories the user owns or co-authors, drafts included, most recently changed first. */
export async function listAuthored(d1: D1Database, userId: string, limit: number) {
  const rows = await db(d1)
    .select()
    .from(s)
    .where(
      or(
        eq(s.ownerId, userId),
        inArray(s.id, db(d1).select({ id: co.storyId }).from(co).where(eq(co.userId, userId))),
      ),
    )
    .orderBy(desc(s.updatedAt), desc(s.id))
    .limit(limit);
  const coauthors = await coauthorsOf(
    d1,
    rows.map((r) => r.id),
  );
  return rows.map((r) => viewOf(r, coauthors.get(r.id) ?? []));
}

/** Title and graph; a new title is part of what the channel shows, so it moves the version. */
export async function updateStory(
  d1: D1Database,
  storyId: string,
  changes: { title?: string; graph?: StoryGraph | null },
  now = Date.now(),
): Promise<void> {
  await db(d1)
    .update(s)
    .set({
      ...(changes.title === undefined ? {} : { title: changes.title }),
      ...(changes.graph === undefined
        ? {}
        : { graph: changes.graph ? JSON.stringify(changes.graph) : null }),
      ...(changes.title === undefined ? {} : { accessVersion: sql`${s.accessVersion} + 1` }),
      updatedAt: now,
    })
    .where(eq(s.id, storyId));
}

export async function setPublished(
  d1: D1Database,
  storyId: string,
  published: boolean,
  now = Date.now(),
): Promise<void> {
  await db(d1)
    .update(s)
    .set({
      published,
      publishedAt: published ? now : null,
      accessVersion: sql`${s.accessVersion} + 1`,
      updatedAt: now,
    })
    .where(eq(s.id, storyId));
}

/** Adds or removes a co-author; true when something changed. */
export async function setCoauthor(
  d1: D1Database,
  storyId: string,
  userId: string,
  present: boolean,
  now = Date.now(),
): Promise<boolean> {
  const change = present
    ? d1
        .prepare(
          'INSERT INTO story_coauthors (story_id, user_id, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .bind(storyId, userId, now)
    : d1
        .prepare('DELETE FROM story_coauthors WHERE story_id = ? AND user_id = ?')
        .bind(storyId, userId);
  // The version moves only if the row changed (`changes()` of the statement before).
  const bump = d1
    .prepare(
      'UPDATE stories SET access_version = access_version + 1, updated_at = ? WHERE id = ? AND changes() > 0',
    )
    .bind(now, storyId);
  const [changed] = await d1.batch([change, bump]);
  return (changed?.meta.changes ?? 0) > 0;
}

// ---- written from a story channel's outbox ----------------------------------------------

export interface BodySave {
  storyId: string;
  body: string;
  seq: number;
}

/** The readable body as of the channel's `seq`; an older save never overwrites a newer one. */
export function bodyWrites(d1: D1Database, save: BodySave): D1PreparedStatement[] {
  return [
    d1
      .prepare('UPDATE stories SET body = ?, body_seq = ? WHERE id = ? AND body_seq < ?')
      .bind(save.body, save.seq, save.storyId, save.seq),
  ];
}

// ---- play sessions, written from a session channel's outbox ------------------------------

export interface SessionOpened {
  id: string;
  storyId: string;
  hostId: string;
  maxPlayers: number;
  choiceSeconds: number;
  createdAt: number;
}

export function sessionOpenWrites(d1: D1Database, o: SessionOpened): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `INSERT INTO play_sessions (id, story_id, host_id, status, max_players, choice_seconds, created_at)
         VALUES (?, ?, ?, 'open', ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(o.id, o.storyId, o.hostId, o.maxPlayers, o.choiceSeconds, o.createdAt),
  ];
}

export interface SessionEnded {
  id: string;
  endedAt: number;
  endReason: EndReason;
  path: PlayStep[];
}

export function sessionEndWrites(d1: D1Database, e: SessionEnded): D1PreparedStatement[] {
  return [
    d1
      .prepare(
        `UPDATE play_sessions SET status = 'ended', ended_at = ?, end_reason = ?
         WHERE id = ? AND status = 'open'`,
      )
      .bind(e.endedAt, e.endReason, e.id),
    ...e.path.map((p) =>
      d1
        .prepare(
          `INSERT INTO play_steps (session_id, step, passage_id, choice_id, tallies, reason, decided_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .bind(
          e.id,
          p.step,
          p.passageId,
          p.choiceId,
          JSON.stringify(p.tallies),
          p.reason,
          p.decidedAt,
        ),
    ),
  ];
}

export async function findSession(
  d1: D1Database,
  sessionId: string,
): Promise<PlaySessionRecord | null> {
  const row = await db(d1)
    .select()
    .from(schema.playSessions)
    .where(eq(schema.playSessions.id, sessionId))
    .get();
  if (!row) return null;
  const steps = await db(d1)
    .select()
    .from(schema.playSteps)
    .where(eq(schema.playSteps.sessionId, sessionId))
    .orderBy(asc(schema.playSteps.step));
  return {
    id: row.id,
    storyId: row.storyId,
    hostId: row.hostId,
    status: row.status,
    maxPlayers: row.maxPlayers,
    choiceSeconds: row.choiceSeconds,
    createdAt: row.createdAt,
    endedAt: row.endedAt,
    endReason: row.endReason as EndReason | null,
    path: steps.map((p) => ({
      step: p.step,
      passageId: p.passageId,
      choiceId: p.choiceId,
      tallies: JSON.parse(p.tallies) as Record<string, number>,
      reason: p.reason as PlayStep['reason'],
      decidedAt: p.decidedAt,
    })),
  };
}
