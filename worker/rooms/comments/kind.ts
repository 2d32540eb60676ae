// Comment rooms: the comments on one item (a story, a post), typing, and who is here.
import { defineKind } from '../../channel/kind';
import { commentFrames } from '../../protocol/comments';

export const comments = defineKind({
  kind: 'comments',
  prefix: 'comments',
  binding: 'COMMENT_ROOM',
  frames: commentFrames,
  connect: 'anyone',
  write: 'signed-in',
  presence: 'members',
  reservedEvents: ['comment.'],
});
