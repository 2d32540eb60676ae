// Stories: records in D1 (title, graph, co-authors, published), the live document through the
// story's channel, and multiplayer play sessions. Who may do what is the story kind's rule
// (`canRead`, `canEdit`, `canManage`), the same one its channel applies. docs/stories.md.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { findPublicUser } from '../db/accounts';
import { cursorParam } from '../db/paging';
import {
  findSession,
  findStory,
  insertStory,
  listAuthored,
  listPublished,
  setCoauthor,
  setPublished,
  updateStory,
} from '../db/stories';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn } from '../http/auth';
import { ApiError } from '../http/errors';
import { idempotent } from '../http/idempotency';
import { jsonBody, pathId, query } from '../http/validate';
import { ErrorCode } from '../protocol/core';
import {
  createStoryBody,
  MAX_COAUTHORS,
  openSessionBody,
  type PlaySessionInfo,
  StoryErrorCode,
  updateStoryBody,
} from '../protocol/stories';
import { play } from '../rooms/play/kind';
import { canEdit, canManage, canRead, story } from '../rooms/story/kind';

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  before: cursorParam,
});

const mineQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(100) });

type Found = NonNullable<Awaited<ReturnType<typeof findStory>>>;

/** The story, if the caller may read it; drafts are invisible (404) to everyone else. */
async function readable(c: Context<AppEnv>): Promise<Found> {
  const found = await findStory(c.env.DB, pathId(c, 'storyId'));
  if (!found || !canRead(found.access, c.get('user'))) {
    throw new ApiError(404, StoryErrorCode.storyNotFound, 'no such story');
  }
  return found;
}

async function editable(c: Context<AppEnv>): Promise<Found> {
  const found = await readable(c);
  if (!canEdit(found.access, currentUser(c))) {
    throw new ApiError(
      403,
      ErrorCode.forbidden,
      "only the story's owner and co-authors may edit it",
    );
  }
  return found;
}

async function managed(c: Context<AppEnv>): Promise<Found> {
  const found = await readable(c);
  if (!canManage(found.access, currentUser(c))) {
    throw new ApiError(403, ErrorCode.forbidden, "only the story's owner may do that");
  }
  return found;
}

/** Reads the record again after a change and hands its access rules to the story's channel. */
async function changed(c: Context<AppEnv>, storyId: string) {
  const found = await findStory(c.env.DB, storyId);
  if (!found) throw new ApiError(404, StoryErrorCode.storyNotFound, 'no such story');
  await story.room(c.env, storyId).syncStory(found.access);
  return c.json({ story: found.view });
}

export const storyRoutes = new Hono<AppEnv>()
  .get('/stories', query(listQuery), async (c) => {
    const { limit, before } = c.req.valid('query');
    return c.json(await listPublished(c.env.DB, limit, before));
  })
  .post('/stories', signedIn, jsonBody(createStoryBody), idempotent, async (c) => {
    const user = currentUser(c);
    const body = c.req.valid('json');
    const id = crypto.randomUUID();
    await insertStory(c.env.DB, { id, ownerId: user.id, ...body });
    const found = await findStory(c.env.DB, id);
    return c.json({ story: found?.view }, 201);
  })
  .get('/me/stories', signedIn, query(mineQuery), async (c) => {
    const { limit } = c.req.valid('query');
    return c.json({ stories: await listAuthored(c.env.DB, currentUser(c).id, limit) });
  })
  .get('/stories/:storyId', async (c) => c.json({ story: (await readable(c)).view }))
  .patch('/stories/:storyId', signedIn, jsonBody(updateStoryBody), idempotent, async (c) => {
    const found = await editable(c);
    await updateStory(c.env.DB, found.view.id, c.req.valid('json'));
    return changed(c, found.view.id);
  })
  // The document as its channel holds it right now (D1's `body` follows a moment later).
  .get('/stories/:storyId/live', async (c) => {
    const found = await readable(c);
    return c.json(await story.room(c.env, found.view.id).live());
  })
  .put('/stories/:storyId/coauthors/:userId', signedIn, async (c) => {
    const found = await managed(c);
    const userId = pathId(c, 'userId');
    if (userId === found.view.ownerId) {
      throw new ApiError(409, ErrorCode.conflict, 'the owner is an author already');
    }
    if (!(await findPublicUser(c.env.DB, userId))) {
      throw new ApiError(404, ErrorCode.userNotFound, 'no such user');
    }
    if (
      !found.view.coauthorIds.includes(userId) &&
      found.view.coauthorIds.length >= MAX_COAUTHORS
    ) {
      throw new ApiError(
        409,
        ErrorCode.conflict,
        `a story has at most ${MAX_COAUTHORS} co-authors`,
      );
    }
    await setCoauthor(c.env.DB, found.view.id, userId, true);
    return changed(c, found.view.id);
  })
  .delete('/stories/:storyId/coauthors/:userId', signedIn, async (c) => {
    const found = await managed(c);
    await setCoauthor(c.env.DB, found.view.id, pathId(c, 'userId'), false);
    return changed(c, found.view.id);
  })
  // Publishing saves the live document's body to D1 first, so readers get the latest text.
  .post('/stories/:storyId/publish', signedIn, async (c) => {
    const found = await managed(c);
    await story.room(c.env, found.view.id).saveBody();
    await setPublished(c.env.DB, found.view.id, true);
    return changed(c, found.view.id);
  })
  .post('/stories/:storyId/unpublish', signedIn, async (c) => {
    const found = await managed(c);
    await setPublished(c.env.DB, found.view.id, false);
    return changed(c, found.view.id);
  })
  .post(
    '/stories/:storyId/sessions',
    signedIn,
    jsonBody(openSessionBody),
    idempotent,
    async (c) => {
      const user = currentUser(c);
      const found = await readable(c);
      if (!found.view.published) {
        throw new ApiError(
          409,
          StoryErrorCode.notPublished,
          'only published stories can be played',
        );
      }
      const graph = found.view.graph;
      if (!graph) {
        throw new ApiError(409, StoryErrorCode.notPublished, 'this story has no passages to play');
      }
      const options = c.req.valid('json');
      const info: PlaySessionInfo = {
        id: crypto.randomUUID(),
        storyId: found.view.id,
        title: found.view.title,
        host: { id: user.id, name: user.name, role: user.role },
        ...options,
        status: 'lobby',
        createdAt: Date.now(),
      };
      const session = await play.room(c.env, info.id).open({ info, graph });
      return c.json({ session }, 201);
    },
  )
  // A session's record and path, from D1 (the path is written there when the session ends).
  .get('/sessions/:sessionId', async (c) => {
    const session = await findSession(c.env.DB, pathId(c, 'sessionId'));
    if (!session) throw new ApiError(404, StoryErrorCode.sessionNotFound, 'no such session');
    return c.json({ session });
  });

export const storySockets = new Hono<AppEnv>()
  .get('/stories/:storyId', async (c) => {
    const found = await readable(c);
    return story.connect(c.req.raw, c.env, c.get('user'), found.view.id);
  })
  .get('/play/:sessionId', (c) =>
    play.connect(c.req.raw, c.env, c.get('user'), pathId(c, 'sessionId')),
  );
