// Stories (seed 003): a story's record, its live document (a Yjs CRDT edited by its co-authors)
// and multiplayer play sessions. docs/stories.md explains the model; docs/protocol.md the frames.
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
import { MAX_FRAME_BYTES, text } from './core';
import { MAX_AWARENESS_BYTES, MAX_UPDATE_BYTES } from './story-wire';

export * from './story-wire';

export const StoryErrorCode = {
  storyNotFound: 'story_not_found',
  notPublished: 'story_not_published',
  invalidUpdate: 'invalid_update',
  updateTooLarge: 'update_too_large',
  documentTooLarge: 'document_too_large',
  sessionNotFound: 'session_not_found',
  sessionFull: 'session_full',
  notPlaying: 'session_not_playing',
  alreadyStarted: 'session_already_started',
  notHost: 'not_host',
  invalidChoice: 'invalid_choice',
} as const;

// ---- binary inside JSON ---------------------------------------------------------------

/** Base64 (standard alphabet, padded) of at most `maxBytes` bytes. */
export function base64(maxBytes: number) {
  return z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4, `must encode at most ${maxBytes} bytes`)
    .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'must be base64');
}

// ---- the story record --------------------------------------------------------------

export const STORY_TITLE_MAX = 200;
export const STORY_BODY_MAX = 200_000;
export const MAX_PASSAGES = 200;
export const MAX_CHOICES = 6;
export const MAX_COAUTHORS = 20;

const passageId = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be 1–40 letters, digits, _ or -');

export const choiceSchema = z
  .object({
    id: passageId,
    label: text().trim().min(1).max(200),
    to: passageId,
  })
  .strict();

export const passageSchema = z
  .object({
    id: passageId,
    text: text().max(20_000),
    /** No choices: an ending. */
    choices: z.array(choiceSchema).max(MAX_CHOICES).default([]),
  })
  .strict();

/** The branching structure a session plays: passages, choices leading to other passages. */
export const storyGraph = z
  .object({
    start: passageId,
    passages: z.array(passageSchema).min(1).max(MAX_PASSAGES),
  })
  .strict()
  .superRefine((graph, ctx) => {
    const ids = new Set<string>();
    graph.passages.forEach((p, i) => {
      if (ids.has(p.id)) {
        ctx.addIssue({ code: 'custom', path: ['passages', i, 'id'], message: 'is used twice' });
      }
      ids.add(p.id);
    });
    if (!ids.has(graph.start)) {
      ctx.addIssue({ code: 'custom', path: ['start'], message: 'names no passage' });
    }
    graph.passages.forEach((p, i) => {
      const choiceIds = new Set<string>();
      p.choices.forEach((c, j) => {
        if (!ids.has(c.to)) {
          ctx.addIssue({
            code: 'custom',
            path: ['passages', i, 'choices', j, 'to'],
            message: 'names no passage',
          });
        }
        if (choiceIds.has(c.id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['passages', i, 'choices', j, 'id'],
            message: 'is used twice in this passage',
          });
        }
        choiceIds.add(c.id);
      });
    });
  });
export type StoryGraph = z.output<typeof storyGraph>;
export type Passage = StoryGraph['passages'][number];

export const storyTitle = text().trim().min(1, 'must not be empty').max(STORY_TITLE_MAX);

export const createStoryBody = z
  .object({
    title: storyTitle,
    /** The document's first text; afterwards the body changes only through the live document. */
    body: text().max(STORY_BODY_MAX).default(''),
    graph: storyGraph.nullable().default(null),
  })
  .strict();

export const updateStoryBody = z
  .object({ title: storyTitle, graph: storyGraph.nullable() })
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'name at least one of title, graph');

export interface StoryView {
  id: string;
  ownerId: string;
  title: string;
  body: string;
  graph: StoryGraph | null;
  published: boolean;
  publishedAt: number | null;
  coauthorIds: string[];
  createdAt: number;
  updatedAt: number;
}

/** What a story's channel knows of its record: enough to decide who may read and write. */
export interface StoryAccess {
  storyId: string;
  ownerId: string;
  coauthorIds: string[];
  published: boolean;
  title: string;
  /** Grows with every change of the fields above; a room ignores an older copy. */
  version: number;
}

// ---- the story's live document (kind `story`) ----------------------------------------

export const storyFrames = {
  /**
   * A Yjs update (v1 encoding) from a co-author. Bounded by the frame limit here; the room
   * refuses one over MAX_UPDATE_BYTES with `update_too_large`.
   */
  'doc.update': z.object({ update: base64(MAX_FRAME_BYTES) }).strict(),
  /**
   * Yjs sync step 1: the client's state vector. Answered by a `doc.synced` frame to this socket
   * (sync step 2) rather than in an ack, so the whole document is never kept as a request's answer.
   */
  'doc.sync': z.object({ stateVector: base64(MAX_UPDATE_BYTES) }).strict(),
  /** A y-protocols awareness update (cursor, selection, name): passed on, never stored. */
  'doc.awareness': z.object({ update: base64(MAX_AWARENESS_BYTES) }).strict(),
} satisfies FrameMap;
export type StoryClientFrame = ClientFrame<typeof storyFrames>;

export interface DocUpdateEvent extends Sequenced {
  type: 'doc.update';
  update: string;
  /** The co-author who sent it. */
  by: string;
}

/** The record changed: title, co-authors, published. Clients re-derive what they may do. */
export interface StoryChangedEvent extends Sequenced {
  type: 'story.changed';
  story: StoryAccess;
}

/** Yjs sync step 2, to one socket: the update holding everything its state vector lacked. */
export interface DocSyncedFrame {
  type: 'doc.synced';
  update: string;
}

/** Ephemeral: another co-author's cursor and selection (y-protocols awareness encoding). */
export interface AwarenessFrame {
  type: 'doc.awareness';
  update: string;
}

export type StoryEvent = DocUpdateEvent | StoryChangedEvent;
export type StoryServerFrame = CoreServerFrame | StoryEvent | AwarenessFrame | DocSyncedFrame;

export interface StorySnapshot {
  story: StoryAccess;
  /** Whether this connection may send `doc.update` and `doc.awareness`. */
  canEdit: boolean;
  /** The document's state vector at `seq`: push what it lacks, ask with `doc.sync` for the rest. */
  stateVector: string;
  /**
   * The whole document, for anonymous watchers only (they may not send `doc.sync`); signed-in
   * clients ask for what they lack with `doc.sync` instead.
   */
  document?: string;
  /** Every co-author's current awareness state, or null when nobody has one. */
  awareness: string | null;
  presence: PresenceSnapshot;
}
export type StoryWelcome = WelcomeFrame<StorySnapshot>;

/** The ack of `doc.update`: whether it changed the document (a repeat changes nothing). */
export interface DocUpdateResult {
  applied: boolean;
}
/** The live document as its channel holds it (`GET /api/stories/:id/live`). */
export interface LiveDocument {
  body: string;
  /** The whole Yjs state (v1 update, base64). */
  state: string;
  seq: number;
}

// ---- play sessions (kind `play`) ------------------------------------------------------

export const PLAY_DEFAULTS = { maxPlayers: 8, choiceSeconds: 30 } as const;
export const PLAY_LIMITS = {
  maxPlayers: { min: 1, max: 32 },
  choiceSeconds: { min: 1, max: 600 },
} as const;

export const openSessionBody = z
  .object({
    maxPlayers: z
      .number()
      .int()
      .min(PLAY_LIMITS.maxPlayers.min)
      .max(PLAY_LIMITS.maxPlayers.max)
      .default(PLAY_DEFAULTS.maxPlayers),
    choiceSeconds: z
      .number()
      .int()
      .min(PLAY_LIMITS.choiceSeconds.min)
      .max(PLAY_LIMITS.choiceSeconds.max)
      .default(PLAY_DEFAULTS.choiceSeconds),
  })
  .strict();
export type OpenSessionBody = z.output<typeof openSessionBody>;

export const playFrames = {
  'play.start': z.object({}).strict(),
  'play.vote': z.object({ choiceId: passageId }).strict(),
  'play.end': z.object({}).strict(),
} satisfies FrameMap;
export type PlayClientFrame = ClientFrame<typeof playFrames>;

export type SessionStatus = 'lobby' | 'playing' | 'ended';
export type DecisionReason = 'all_voted' | 'deadline';
/** `ending`: a passage without choices; `step_limit`: a loop ran past MAX_PLAY_STEPS. */
export type EndReason = 'ending' | 'host_ended' | 'step_limit';
/** A story whose choices loop ends its session after this many passages. */
export const MAX_PLAY_STEPS = 500;

export interface PlaySessionInfo {
  id: string;
  storyId: string;
  title: string;
  host: PublicUser;
  maxPlayers: number;
  choiceSeconds: number;
  status: SessionStatus;
  createdAt: number;
}

/** A passage as players see it: its text and the labels of its choices. */
export interface PlayPassage {
  id: string;
  text: string;
  choices: { id: string; label: string }[];
}

export interface PassageEvent extends Sequenced {
  type: 'play.passage';
  /** 0 for the opening passage, one more after each decision. */
  step: number;
  passage: PlayPassage;
  /** When the vote closes (epoch ms); null for an ending. */
  deadline: number | null;
}

export interface VotesEvent extends Sequenced {
  type: 'play.votes';
  step: number;
  tallies: Record<string, number>;
  voted: number;
  players: number;
}

export interface ChosenEvent extends Sequenced {
  type: 'play.chosen';
  step: number;
  choiceId: string;
  tallies: Record<string, number>;
  reason: DecisionReason;
}

export interface EndedEvent extends Sequenced {
  type: 'play.ended';
  reason: EndReason;
  steps: number;
}

export type PlayEvent = PassageEvent | VotesEvent | ChosenEvent | EndedEvent;
export type PlayServerFrame = CoreServerFrame | PlayEvent;

export interface PlaySnapshot {
  session: PlaySessionInfo;
  step: number | null;
  passage: PlayPassage | null;
  tallies: Record<string, number>;
  deadline: number | null;
  /** This connection's user's vote in the current step, if any. */
  myVote: string | null;
  /** Users who joined the session (a seat is kept for a player who drops). */
  seats: number;
  presence: PresenceSnapshot;
}
export type PlayWelcome = WelcomeFrame<PlaySnapshot>;

/** One decision on the session's path, as stored in D1 when the session ends. */
export interface PlayStep {
  step: number;
  passageId: string;
  choiceId: string | null;
  tallies: Record<string, number>;
  reason: DecisionReason | null;
  decidedAt: number;
}

export interface PlaySessionRecord {
  id: string;
  storyId: string;
  hostId: string;
  status: 'open' | 'ended';
  maxPlayers: number;
  choiceSeconds: number;
  createdAt: number;
  endedAt: number | null;
  endReason: EndReason | null;
  path: PlayStep[];
}
