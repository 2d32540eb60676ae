// Comment rooms: comments on one item, typing indicators, who is here.
import { z } from 'zod';
import type {
  ClientFrame,
  CoreServerFrame,
  FrameMap,
  PresenceSnapshot,
  PublicUser,
  Sequenced,
  WelcomeFrame,
} from './core';
import { text } from './core';

export const COMMENT_MAX_CHARS = 2000;
export const COMMENT_PAGE_SIZE = 50;

export const commentBody = text()
  .trim()
  .min(1, 'must not be empty')
  .max(COMMENT_MAX_CHARS, `must be at most ${COMMENT_MAX_CHARS} characters`);

export const commentFrames = {
  'comment.create': z.object({ body: commentBody }).strict(),
  'comment.delete': z.object({ commentId: text().min(1).max(64) }).strict(),
  typing: z.object({ isTyping: z.boolean() }).strict(),
} satisfies FrameMap;
export type CommentClientFrame = ClientFrame<typeof commentFrames>;

/** A comment on the channel's item (the item is the channel, so it is not repeated here). */
export interface Comment {
  id: string;
  user: PublicUser;
  body: string;
  createdAt: number;
}

export interface CommentCreatedEvent extends Sequenced {
  type: 'comment.created';
  comment: Comment;
}

export interface CommentDeletedEvent extends Sequenced {
  type: 'comment.deleted';
  commentId: string;
  deletedBy: string;
}

/** Ephemeral: never stored or sequenced; expires after `expiresInMs` unless renewed. */
export interface TypingFrame {
  type: 'typing';
  user: PublicUser;
  isTyping: boolean;
  expiresInMs: number;
}

export type CommentEvent = CommentCreatedEvent | CommentDeletedEvent;
export type CommentServerFrame = CoreServerFrame | CommentEvent | TypingFrame;

export interface CommentRoomSnapshot {
  itemId: string;
  /** Latest comments, oldest first (at most COMMENT_PAGE_SIZE). */
  recent: Comment[];
  presence: PresenceSnapshot;
  typing: PublicUser[];
}
export type CommentWelcome = WelcomeFrame<CommentRoomSnapshot>;
