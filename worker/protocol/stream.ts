// Station channels (StreamRoom): live state, now playing, listener counts, chat and reactions.
// REST bodies for stations live here too, so the worker and the client validate alike.
import { z } from 'zod';
import type {
  ClientFrame,
  CoreServerFrame,
  FrameMap,
  PublicUser,
  Sequenced,
  WelcomeFrame,
} from './core';
import { text } from './core';
import {
  type AnalyticsFrame,
  type PollBallotFrame,
  type PollClosedEvent,
  type PollOpenedEvent,
  type PollState,
  type PollTalliesFrame,
  pollCreate,
  pollId,
  pollVote,
  type QueueAddedEvent,
  type QueueClearedEvent,
  type QueueItem,
  type QueueMovedEvent,
  type QueueRemovedEvent,
  queueAdd,
  queueItemId,
  queueMove,
} from './stream-extras';

export * from './stream-extras';

export const CHAT_MAX_CHARS = 500;
export const CHAT_PAGE_SIZE = 50;
/** The reactions a listener can send; `❤️` is the "like". A closed set keeps the tally small. */
export const REACTION_EMOJI = ['❤️', '🔥', '👏', '😂', '🎉', '👍'] as const;
export type ReactionEmoji = (typeof REACTION_EMOJI)[number];
export const MODERATION_MAX_SECONDS = 30 * 24 * 60 * 60;

const line = (max: number) =>
  text().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);
/** An optional field that `null` clears. */
const clearable = (max: number) => line(max).nullable().optional();

export const chatBody = line(CHAT_MAX_CHARS);

export const stationCreateBody = z
  .object({
    name: line(80),
    description: text().trim().max(1000).default(''),
    genre: line(40).nullable().default(null),
  })
  .strict();

export const stationUpdateBody = z
  .object({
    name: line(80).optional(),
    description: text().trim().max(1000).optional(),
    genre: clearable(40),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'name at least one field to change');

const showFields = {
  showTitle: line(120),
  hostName: clearable(80),
  showType: clearable(40),
  trackName: clearable(200),
  artistName: clearable(200),
  trackId: clearable(128),
};

/** Going live: the show, and optionally what plays first (seed 000 `startStream`). */
export const showInfo = z.object(showFields).strict();
export type ShowInfo = z.infer<typeof showInfo>;

const metadataFields = {
  showTitle: line(120).optional(),
  hostName: clearable(80),
  trackName: clearable(200),
  artistName: clearable(200),
  trackId: clearable(128),
};
const someField = (m: Record<string, unknown>) =>
  Object.keys(m).some((k) => k !== 'type' && k !== 'id' && m[k] !== undefined);
const someFieldMessage = 'name at least one of showTitle, hostName, trackName, artistName, trackId';

/** A now-playing change (seed 000 `updateMetadata`): only the named fields change. */
export const metadataUpdate = z.object(metadataFields).strict().refine(someField, someFieldMessage);
export type MetadataUpdate = z.infer<typeof metadataUpdate>;

export const CHAT_MODERATION_ACTIONS = ['mute', 'unmute', 'ban', 'unban'] as const;
export type ModerationAction = (typeof CHAT_MODERATION_ACTIONS)[number];

const moderationFields = {
  userId: text().min(1).max(64),
  action: z.enum(CHAT_MODERATION_ACTIONS),
  reason: line(200).optional(),
  /** Omitted: until lifted. Ignored for unmute/unban. */
  durationSeconds: z.number().int().min(1).max(MODERATION_MAX_SECONDS).optional(),
};
export const moderationBody = z.object(moderationFields).strict();
export type ModerationRequest = z.infer<typeof moderationBody>;

export const streamFrames = {
  'stream.start': showInfo,
  'stream.stop': z.object({}).strict(),
  'stream.metadata': metadataUpdate,
  'chat.send': z.object({ body: chatBody }).strict(),
  'chat.delete': z.object({ messageId: text().min(1).max(64) }).strict(),
  'chat.moderate': moderationBody,
  reaction: z.object({ emoji: z.enum(REACTION_EMOJI) }).strict(),
  // Polls, the track queue (issue 11; stream-extras.ts).
  'poll.create': pollCreate,
  'poll.vote': pollVote.extend({ pollId }).strict(),
  'poll.close': z.object({ pollId }).strict(),
  'queue.add': queueAdd,
  'queue.remove': z.object({ itemId: queueItemId }).strict(),
  'queue.move': queueMove.extend({ itemId: queueItemId }).strict(),
  'queue.clear': z.object({}).strict(),
  'queue.next': z.object({}).strict(),
} satisfies FrameMap;
export type StreamClientFrame = ClientFrame<typeof streamFrames>;

// ---- state -------------------------------------------------------------------------

export interface StationInfo {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  genre: string | null;
}

export interface BroadcastSession {
  id: string;
  stationId: string;
  showTitle: string;
  hostName: string | null;
  showType: string | null;
  hostUserId: string;
  startedAt: number;
}

export interface SessionSummary extends BroadcastSession {
  endedAt: number;
  peakListeners: number;
  distinctListeners: number;
  chatMessageCount: number;
}

export interface NowPlaying {
  showTitle: string;
  hostName: string | null;
  showType: string | null;
  trackName: string | null;
  artistName: string | null;
  trackId: string | null;
  updatedAt: number;
}

/**
 * `listeners` = distinct signed-in users + anonymous connections (two tabs of one user are
 * one listener); `connections` = open sockets. `peak` and `distinct` belong to the current
 * (or last) broadcast session. Rules in docs/stations.md.
 */
export interface ListenerCounts {
  listeners: number;
  connections: number;
  users: number;
  anonymous: number;
  peak: number;
  distinct: number;
}

/** A chat message on the channel's station (the station is the channel, not repeated here). */
export interface ChatMessage {
  id: string;
  sessionId: string | null;
  user: PublicUser;
  body: string;
  createdAt: number;
}

// ---- server frames -----------------------------------------------------------------

export interface StreamStartedEvent extends Sequenced {
  type: 'stream.started';
  stationId: string;
  session: BroadcastSession;
  nowPlaying: NowPlaying;
}

export interface StreamStoppedEvent extends Sequenced {
  type: 'stream.stopped';
  stationId: string;
  session: SessionSummary;
}

export interface StreamMetadataEvent extends Sequenced {
  type: 'stream.metadata';
  stationId: string;
  nowPlaying: NowPlaying;
  /** The fields this update named. */
  changed: string[];
  /** Set when the owner advanced the queue: this item left the queue and plays now. */
  queueItemId?: string;
}

export interface ChatMessageEvent extends Sequenced {
  type: 'chat.message';
  message: ChatMessage;
}

export interface ChatDeletedEvent extends Sequenced {
  type: 'chat.deleted';
  messageId: string;
  deletedBy: string;
}

/** Ephemeral, coalesced to at most about one a second. */
export interface ListenersFrame extends ListenerCounts {
  type: 'listeners';
  stationId: string;
}

/** Ephemeral: the taps of one window, summed per emoji. */
export interface ReactionsFrame {
  type: 'reactions';
  stationId: string;
  counts: Partial<Record<ReactionEmoji, number>>;
  windowMs: number;
}

/** Ephemeral, sent only to the moderated user's own sockets. A ban closes them with 4403. */
export interface ModerationFrame {
  type: 'moderation';
  action: 'mute' | 'unmute';
  /** When the mute ends; null while muted means until lifted. */
  until: number | null;
  reason: string | null;
}

export type StreamEvent =
  | StreamStartedEvent
  | StreamStoppedEvent
  | StreamMetadataEvent
  | ChatMessageEvent
  | ChatDeletedEvent
  | PollOpenedEvent
  | PollClosedEvent
  | QueueAddedEvent
  | QueueRemovedEvent
  | QueueMovedEvent
  | QueueClearedEvent;
export type StreamServerFrame =
  | CoreServerFrame
  | StreamEvent
  | ListenersFrame
  | ReactionsFrame
  | ModerationFrame
  | PollTalliesFrame
  | PollBallotFrame
  | AnalyticsFrame;

export interface StreamSnapshot {
  station: StationInfo;
  live: boolean;
  session: BroadcastSession | null;
  nowPlaying: NowPlaying | null;
  listeners: ListenerCounts;
  /** Latest chat messages, oldest first (at most CHAT_PAGE_SIZE). */
  chat: ChatMessage[];
  /** The open poll, or the last one (closed, with its final result); null before any. */
  poll: PollState | null;
  /** The upcoming tracks, next first. */
  queue: QueueItem[];
  you: {
    /** Owner or admin: may start/stop, change metadata and moderate. */
    canManage: boolean;
    muted: boolean;
    mutedUntil: number | null;
    /** Your ballot in `poll` (any of your tabs), or null. */
    ballot: number[] | null;
  };
}
export type StreamWelcome = WelcomeFrame<StreamSnapshot>;

/** A channel's view for REST (`GET /api/stations/:id`) and the lobby. */
export interface StreamStatus {
  station: StationInfo;
  live: boolean;
  session: BroadcastSession | null;
  nowPlaying: NowPlaying | null;
  listeners: ListenerCounts;
}
