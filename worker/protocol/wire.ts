// The protocol's plain values: versions, limits, heartbeat texts, close and error codes. No
// schema library here: the browser SDK imports this file alone (core.ts re-exports it).
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

/** Ids one presence watch (and one `GET /api/presence`) may name (docs/presence.md). */
export const MAX_WATCH_IDS = 500;
