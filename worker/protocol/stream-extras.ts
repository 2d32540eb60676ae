// A station's live polls, its track queue and its engagement analytics (issue 11): the client
// frames' schemas, the server frames and the shapes REST answers with. docs/stations.md.
import { z } from 'zod';
import type { Sequenced } from './core';
import { text } from './core';
import type { ReactionEmoji } from './stream';

const line = (max: number) =>
  text().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

// ---- polls -------------------------------------------------------------------------

export const POLL_MIN_OPTIONS = 2;
export const POLL_MAX_OPTIONS = 10;
export const POLL_MIN_SECONDS = 10;
export const POLL_MAX_SECONDS = 24 * 60 * 60;
export const POLL_DEFAULT_SECONDS = 120;
/** Tallies reach listeners at most about once per this window while votes come in. */
export const POLL_TALLY_WINDOW_MS = 500;

export const pollCreate = z
  .object({
    question: line(200),
    options: z
      .array(line(100))
      .min(POLL_MIN_OPTIONS, `a poll needs at least ${POLL_MIN_OPTIONS} options`)
      .max(POLL_MAX_OPTIONS, `a poll has at most ${POLL_MAX_OPTIONS} options`)
      .refine(
        (options) => new Set(options.map((o) => o.toLowerCase())).size === options.length,
        'options must differ from each other',
      ),
    /** Several choices per voter (default: one). */
    multiple: z.boolean().default(false),
    durationSeconds: z
      .number()
      .int()
      .min(POLL_MIN_SECONDS)
      .max(POLL_MAX_SECONDS)
      .default(POLL_DEFAULT_SECONDS),
  })
  .strict();
export type PollCreate = z.infer<typeof pollCreate>;

/** A ballot: option indexes (0-based). A later ballot replaces the voter's earlier one. */
export const pollVote = z
  .object({ choices: z.array(z.number().int()).min(1).max(POLL_MAX_OPTIONS) })
  .strict();

export const pollId = text().min(1).max(64);

export type PollCloseReason = 'timer' | 'owner' | 'stream_stopped';

export interface Poll {
  id: string;
  stationId: string;
  /** The broadcast session it was opened in. */
  sessionId: string;
  question: string;
  options: string[];
  multiple: boolean;
  openedBy: string;
  openedAt: number;
  closesAt: number;
  closedAt: number | null;
  closeReason: PollCloseReason | null;
}

export interface PollTallies {
  /** Votes per option, in option order. */
  tallies: number[];
  /** Choices counted over all ballots (more than `voters` on a multiple-choice poll). */
  votes: number;
  /** Signed-in users with a ballot. */
  voters: number;
}

export interface PollState extends Poll, PollTallies {
  open: boolean;
}

/** A poll's results as saved in D1 (listed per station and per session). */
export interface PollResult extends PollState {
  /** Signed-in users on the channel while it was open (the participation denominator). */
  eligible: number;
}

export interface PollOpenedEvent extends Sequenced {
  type: 'poll.opened';
  poll: PollState;
}

/** Sequenced: the final, exact result. A reconnecting listener sees it in the welcome. */
export interface PollClosedEvent extends Sequenced {
  type: 'poll.closed';
  poll: PollState;
}

/** Ephemeral, coalesced: the counts now; the last one before `poll.closed` is exact. */
export interface PollTalliesFrame extends PollTallies {
  type: 'poll.tallies';
  pollId: string;
}

/** Ephemeral, to the voter's own sockets: their ballot (one vote per user, not per tab). */
export interface PollBallotFrame {
  type: 'poll.ballot';
  pollId: string;
  choices: number[];
}

// ---- the track queue ---------------------------------------------------------------

export const QUEUE_MAX_TRACKS = 200;

export const queueTrack = z
  .object({
    trackName: line(200),
    artistName: line(200).nullable().optional(),
    trackId: line(128).nullable().optional(),
    durationSeconds: z
      .number()
      .int()
      .min(1)
      .max(24 * 60 * 60)
      .nullable()
      .optional(),
  })
  .strict();

const position = z.number().int().min(0);

export const queueAdd = queueTrack.extend({ position: position.optional() }).strict();
export type QueueAdd = z.infer<typeof queueAdd>;
export const queueItemId = text().min(1).max(64);
export const queueMove = z.object({ position }).strict();

export interface QueueItem {
  id: string;
  trackName: string;
  artistName: string | null;
  trackId: string | null;
  durationSeconds: number | null;
  addedBy: string;
  addedAt: number;
}

export interface QueueAddedEvent extends Sequenced {
  type: 'queue.added';
  item: QueueItem;
  /** Where it went (0 = next). */
  position: number;
}

export interface QueueRemovedEvent extends Sequenced {
  type: 'queue.removed';
  itemId: string;
}

export interface QueueMovedEvent extends Sequenced {
  type: 'queue.moved';
  itemId: string;
  position: number;
}

export interface QueueClearedEvent extends Sequenced {
  type: 'queue.cleared';
}

// ---- engagement analytics ------------------------------------------------------------

/** One minute of a broadcast session (UTC minute). */
export interface AnalyticsMinute {
  /** Start of the minute (ms since the epoch, a multiple of 60 000). */
  minute: number;
  /** Listeners when the minute ended (or now, for the open minute). */
  listeners: number;
  /** Most listeners at once during the minute. */
  peak: number;
  /** Distinct listeners of the session so far, at the end of the minute. */
  distinct: number;
  /** Connections opened during the minute. */
  joins: number;
  chatMessages: number;
  reactions: Partial<Record<ReactionEmoji, number>>;
  /** Ballots cast or changed. */
  pollVotes: number;
  favouritesGained: number;
  favouritesLost: number;
  /** Listening time accrued during the minute, summed over listeners. */
  listeningMs: number;
}

export interface PollParticipation {
  pollId: string;
  question: string;
  open: boolean;
  voters: number;
  votes: number;
  eligible: number;
  /** voters ÷ eligible (0 when nobody was eligible). */
  participation: number;
}

export interface SessionAnalytics {
  stationId: string;
  sessionId: string;
  live: boolean;
  startedAt: number;
  endedAt: number | null;
  listeners: { current: number; peak: number; distinct: number };
  chatMessages: number;
  /** Chat messages per minute of the session (total ÷ minutes). */
  chatPerMinute: number;
  reactions: Partial<Record<ReactionEmoji, number>>;
  reactionsPerMinute: Partial<Record<ReactionEmoji, number>>;
  pollVotes: number;
  polls: PollParticipation[];
  favouritesGained: number;
  favouritesLost: number;
  /** Total listening time ÷ distinct listeners, in seconds. */
  averageListeningSeconds: number;
  listeningSeconds: number;
  minutes: AnalyticsMinute[];
  at: number;
}

/** Ephemeral, to the station's owner and admins on its channel, at most every few seconds. */
export interface AnalyticsFrame {
  type: 'analytics';
  analytics: SessionAnalytics;
}

/** A live station's engagement as the lobby's admin view shows it (summed across stations). */
export interface EngagementSummary {
  pollVotes: number;
  favouritesGained: number;
  listeningSeconds: number;
  averageListeningSeconds: number;
  reactionsPerMinute: number;
  chatPerMinute: number;
}
