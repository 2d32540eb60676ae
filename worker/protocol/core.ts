// The wire protocol shared by every channel kind. Worker and client import these types;
// docs/protocol.md documents every frame, error code and close code.
import { z } from 'zod';

// Plain values (no schema library) live in wire.ts, so the browser SDK can import them alone.
export * from './wire';

/**
 * A string of well-formed Unicode: every free-text field is one. `JSON.parse` turns the escape
 * `"\ud800"` into a lone surrogate, which the log and live frames would keep raw while D1 hands
 * it back as U+FFFD, so history and live would disagree; such a string is refused instead.
 */
export function text() {
  return z
    .string()
    .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)');
}

/** A client-chosen request id; a repeated id is acknowledged again but not applied twice. */
export const requestId = text().min(1).max(64);

/**
 * A kind's client frames: each frame type names the schema of its fields (without `type` and
 * `id`, which the core owns). The core derives the set of types, answers `ping`, and handles
 * request ids for every kind alike.
 */
export type FrameMap = Record<string, z.ZodType<object>>;

/** A frame as the server's handlers see it, after validation. */
export type FrameOf<M extends FrameMap, K extends keyof M & string> = { type: K } & z.output<M[K]>;

/** What a client may send on a kind's channel (input types: defaults may be omitted). */
export type ClientFrame<M extends FrameMap> =
  | { [K in keyof M & string]: { type: K; id?: string; rtt?: number } & z.input<M[K]> }[keyof M &
      string]
  | PingFrame;

export interface PingFrame {
  type: 'ping';
  id?: string;
  rtt?: number;
}

export interface PublicUser {
  id: string;
  name: string;
  role: string;
}

/**
 * Who a server API call acts as inside a channel (docs/server-api.md): a trusted backend, not a
 * user. Its request ids live under this id in each channel's ledger, apart from every user's.
 */
export const SERVER_PRINCIPAL: PublicUser = { id: 'server', name: 'server', role: 'server' };

/**
 * Every durable channel event carries `seq` (monotonic per channel). Events that need a time
 * carry their own (`createdAt`, `startedAt` …), so frames carry no separate timestamp.
 */
export interface Sequenced {
  seq: number;
}

export interface RecoveryInfo {
  /** The client asked to resume (sent `since` and `epoch`). */
  requested: boolean;
  /** True when every missed event follows the welcome; false means "start from the snapshot". */
  recovered: boolean;
  /** Number of replayed events that follow the welcome frame. */
  missed: number;
}

export interface WelcomeFrame<Snapshot = unknown> {
  type: 'welcome';
  protocol: number;
  connectionId: string;
  channel: string;
  kind: string;
  user: PublicUser | null;
  /** Position of the channel when the snapshot was taken. */
  seq: number;
  epoch: string;
  snapshot: Snapshot;
  recovery: RecoveryInfo;
}

export interface AckFrame<Result = unknown> {
  type: 'ack';
  id: string;
  /** Present when the request produced a sequenced event. */
  seq?: number;
  result?: Result;
  /** True when this ack answers a retried id that was already applied. */
  duplicate?: boolean;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  id?: string;
  /** Field problems for `invalid_frame`. */
  issues?: { path: string; message: string }[];
}

export interface PongFrame {
  type: 'pong';
  id?: string;
}

export interface PresenceMember {
  user: PublicUser;
  connections: number;
}

export interface PresenceJoinedFrame {
  type: 'presence.joined';
  user: PublicUser;
  users: number;
  connections: number;
}

export interface PresenceLeftFrame {
  type: 'presence.left';
  user: PublicUser;
  users: number;
  connections: number;
}

/**
 * Sent instead of every join and leave once a `members` room holds more people than its
 * member limit: the counts, coalesced to at most one frame per window.
 */
export interface PresenceCountsFrame {
  type: 'presence.counts';
  users: number;
  connections: number;
}

/** Presence section of a channel snapshot. */
export interface PresenceSnapshot {
  users: number;
  connections: number;
  /** Omitted by kinds that only count (large audiences). At most the room's member limit. */
  members?: PresenceMember[];
  /** True when `members` lists only the first of more users than the member limit. */
  membersTruncated?: boolean;
}

/**
 * Under load a channel sends one frame per short window (≤ 50 ms) carrying every frame of that
 * window in order; clients handle each as if it had come alone (docs/protocol.md, "Batches").
 */
export interface BatchFrame<F = unknown> {
  type: 'batch';
  frames: F[];
}

export type CoreServerFrame =
  | WelcomeFrame
  | AckFrame
  | ErrorFrame
  | PongFrame
  | PresenceJoinedFrame
  | PresenceLeftFrame
  | PresenceCountsFrame;
