// Stories: one channel per story, holding its live document (a Yjs CRDT). Anyone who may read
// the story may watch it change; only its owner and co-authors edit (docs/stories.md).
import { defineKind } from '../../channel/kind';
import type { PublicUser } from '../../protocol/core';
import { type StoryAccess, storyFrames } from '../../protocol/stories';

export const story = defineKind({
  kind: 'story',
  prefix: 'story',
  binding: 'STORY_ROOM',
  frames: storyFrames,
  connect: 'anyone',
  write: 'signed-in',
  presence: 'members',
  reservedEvents: ['doc.', 'story.'],
});

type Access = Pick<StoryAccess, 'ownerId' | 'coauthorIds' | 'published'>;

/** The owner and co-authors edit the document, the title and the graph. */
export function canEdit(access: Access, user: PublicUser | null): boolean {
  return !!user && (user.id === access.ownerId || access.coauthorIds.includes(user.id));
}

/** Published stories are for everyone; drafts for their authors and admins. */
export function canRead(access: Access, user: PublicUser | null): boolean {
  return access.published || canEdit(access, user) || user?.role === 'admin';
}

/** The owner (or an admin) adds and removes co-authors, publishes and unpublishes. */
export function canManage(access: Access, user: PublicUser | null): boolean {
  return !!user && (user.id === access.ownerId || user.role === 'admin');
}
