// The wire protocol shared by every channel kind. Worker and client import these types;
// docs/protocol.md documents every frame, error code and close code.
import { z } from 'zod';

export const PROTOCOL_VERSION = 1;

/** Largest client frame accepted; a bigger one closes the socket with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;

/** The heartbeat answered by the runtime itself (`setWebSocketAutoResponse`), never waking a DO. */
export const HEARTBEAT_REQUEST = '{"type":"ping"}';
export const HEARTBEAT_RESPONSE = '{"type":"pong"}';

/**
 * Any client frame may carry `rtt`: the client's last measured heartbeat round trip, in whole
 * milliseconds (0–MAX_RTT_MS). Clients report it at most once per RTT_REPORT_INTERVAL_MS, on a
 * frame they send anyway (or as `?rtt=` when reconnecting), so reporting never wakes a channel.
 */
export const MAX_RTT_MS = 120_000;
export const RTT_REPORT_INTERVAL_MS = 60_000;

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  /** Heartbeat missed: the ghost sweep closed a silent socket. Retryable. */
  heartbeatTimeout: 4408,
  unauthenticated: 4401,
  forbidden: 4403,
  /** The channel no longer exists (e.g. event deleted). Terminal. */
  gone: 4404,
  rateLimited: 4429,
  /** Server asked the client to reconnect (deploy, restart). Retryable. */
  restart: 4500,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close codes after which a client must not reconnect on its own. */
export const TERMINAL_CLOSE_CODES: readonly number[] = [
  CloseCode.unauthenticated,
  CloseCode.forbidden,
  CloseCode.gone,
  CloseCode.tooBig,
];

/** Stable error codes carried by `error` frames and HTTP error bodies. */
export const ErrorCode = {
  malformedJson: 'malformed_json',
  binaryNotSupported: 'binary_not_supported',
  unknownType: 'unknown_type',
  invalidFrame: 'invalid_frame',
  rateLimited: 'rate_limited',
  authRequired: 'auth_required',
  forbidden: 'forbidden',
  notFound: 'not_found',
  conflict: 'conflict',
  internal: 'internal_error',
  // Stations (docs/stations.md)
  alreadyLive: 'already_live',
  notLive: 'not_live',
  muted: 'muted',
  banned: 'banned',
  // Polls and the track queue (docs/stations.md, issue 11)
  pollNotFound: 'poll_not_found',
  pollClosed: 'poll_closed',
  pollAlreadyOpen: 'poll_already_open',
  unknownOption: 'unknown_option',
  duplicateChoice: 'duplicate_choice',
  tooManyChoices: 'too_many_choices',
  queueFull: 'queue_full',
  queueEmpty: 'queue_empty',
  queueItemNotFound: 'queue_item_not_found',
  invalidPosition: 'invalid_position',
  sessionNotFound: 'session_not_found',
  // HTTP-only
  invalidJson: 'invalid_json',
  invalidBody: 'invalid_body',
  invalidQuery: 'invalid_query',
  invalidToken: 'invalid_token',
  invalidCredentials: 'invalid_credentials',
  emailTaken: 'email_taken',
  originNotAllowed: 'origin_not_allowed',
  upgradeRequired: 'upgrade_required',
  unsupportedMediaType: 'unsupported_media_type',
  idempotencyKeyInUse: 'idempotency_key_in_use',
  // events and bookings (docs/bookings.md)
  eventNotFound: 'event_not_found',
  eventAccessDenied: 'event_access_denied',
  soldOut: 'sold_out',
  insufficientSeats: 'insufficient_seats',
  bookingClosed: 'booking_closed',
  bookingNotFound: 'booking_not_found',
  alreadyCancelled: 'already_cancelled',
  idempotencyKeyReused: 'idempotency_key_reused',
  invalidIdempotencyKey: 'invalid_idempotency_key',
  capacityBelowBooked: 'capacity_below_booked',
  ticketNotFound: 'ticket_not_found',
  ticketCancelled: 'ticket_cancelled',
  ticketTransferred: 'ticket_transferred',
  notHolder: 'not_holder',
  userNotFound: 'user_not_found',
  eventCancelled: 'event_cancelled',
  // door checks (docs/protocol.md, "Limits")
  tooManyConnections: 'too_many_connections',
  // the user channel (docs/notifications.md)
  notificationNotFound: 'notification_not_found',
  watermarkInFuture: 'watermark_in_future',
  staleVersion: 'stale_version',
  tokenRevoked: 'token_revoked',
  // the server API, announcements, market values, presence (docs/server-api.md, docs/presence.md)
  invalidServerKey: 'invalid_server_key',
  unknownChannel: 'unknown_channel',
  invalidEventType: 'invalid_event_type',
  eventTypeReserved: 'event_type_reserved',
  payloadTooLarge: 'payload_too_large',
  staleMarketValue: 'stale_market_value',
  announcementNotFound: 'announcement_not_found',
  tooManyIds: 'too_many_ids',
  tooManyAnnouncements: 'too_many_announcements',
  marketKeysFull: 'market_keys_full',
} as const;
export type KnownErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

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
