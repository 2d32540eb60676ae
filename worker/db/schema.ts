// The system of record (D1). Times are epoch milliseconds; ids are random UUIDs.
// Migrations are generated from this file into migrations/ by `npm run db:generate`.
import { sql } from 'drizzle-orm';
import {
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core';

export const ROLES = ['listener', 'station_owner', 'organiser', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  email: text('email').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  displayName: text('display_name').notNull(),
  role: text('role', { enum: ROLES }).notNull().default('listener'),
  createdAt: integer('created_at').notNull(),
});

// Comment rooms: comments on one item (a story, a post).
export const comments = sqliteTable(
  'comments',
  {
    id: text('id').primaryKey(),
    itemId: text('item_id').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    body: text('body').notNull(),
    createdAt: integer('created_at').notNull(),
    deletedAt: integer('deleted_at'),
    deletedBy: text('deleted_by').references(() => users.id),
  },
  (t) => [index('comments_item_created').on(t.itemId, t.createdAt, t.id)],
);

// Live stations.
export const stations = sqliteTable(
  'stations',
  {
    id: text('id').primaryKey(),
    ownerId: text('owner_id')
      .notNull()
      .references(() => users.id),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    genre: text('genre'),
    isLive: integer('is_live', { mode: 'boolean' }).notNull().default(false),
    currentSessionId: text('current_session_id'),
    // JSON of the now-playing metadata while live (track, artist, track id, show title, host).
    nowPlaying: text('now_playing'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('stations_owner').on(t.ownerId), index('stations_live').on(t.isLive)],
);

export const broadcastSessions = sqliteTable(
  'broadcast_sessions',
  {
    id: text('id').primaryKey(),
    stationId: text('station_id')
      .notNull()
      .references(() => stations.id),
    showTitle: text('show_title').notNull(),
    hostName: text('host_name'),
    showType: text('show_type'),
    hostUserId: text('host_user_id').references(() => users.id),
    startedAt: integer('started_at').notNull(),
    endedAt: integer('ended_at'),
    peakListeners: integer('peak_listeners').notNull().default(0),
    distinctListeners: integer('distinct_listeners').notNull().default(0),
    chatMessageCount: integer('chat_message_count').notNull().default(0),
  },
  (t) => [index('broadcast_sessions_station').on(t.stationId, t.startedAt)],
);

export const chatMessages = sqliteTable(
  'chat_messages',
  {
    id: text('id').primaryKey(),
    stationId: text('station_id')
      .notNull()
      .references(() => stations.id),
    sessionId: text('session_id').references(() => broadcastSessions.id),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    body: text('body').notNull(),
    createdAt: integer('created_at').notNull(),
    deletedAt: integer('deleted_at'),
    deletedBy: text('deleted_by').references(() => users.id),
  },
  (t) => [index('chat_messages_station_created').on(t.stationId, t.createdAt, t.id)],
);

export const stationFavourites = sqliteTable(
  'station_favourites',
  {
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    stationId: text('station_id')
      .notNull()
      .references(() => stations.id),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.stationId] })],
);

export const MODERATION_ACTIONS = ['mute', 'unmute', 'ban', 'unban', 'delete_message'] as const;
export const moderationActions = sqliteTable(
  'moderation_actions',
  {
    id: text('id').primaryKey(),
    stationId: text('station_id')
      .notNull()
      .references(() => stations.id),
    targetUserId: text('target_user_id')
      .notNull()
      .references(() => users.id),
    action: text('action', { enum: MODERATION_ACTIONS }).notNull(),
    moderatorId: text('moderator_id')
      .notNull()
      .references(() => users.id),
    reason: text('reason'),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at'),
  },
  (t) => [index('moderation_station_target').on(t.stationId, t.targetUserId, t.createdAt)],
);

// A station's poll results and per-minute engagement (issue 11). Written from the station's
// outbox once a poll closes and as each minute of a session closes.
export const polls = sqliteTable(
  'polls',
  {
    id: text('id').primaryKey(),
    stationId: text('station_id')
      .notNull()
      .references(() => stations.id),
    sessionId: text('session_id')
      .notNull()
      .references(() => broadcastSessions.id),
    question: text('question').notNull(),
    /** JSON array of the option texts. */
    options: text('options').notNull(),
    multiple: integer('multiple', { mode: 'boolean' }).notNull(),
    openedBy: text('opened_by').references(() => users.id),
    openedAt: integer('opened_at').notNull(),
    closesAt: integer('closes_at').notNull(),
    closedAt: integer('closed_at').notNull(),
    closeReason: text('close_reason').notNull(),
    /** JSON array of votes per option. */
    tallies: text('tallies').notNull(),
    votes: integer('votes').notNull(),
    voters: integer('voters').notNull(),
    eligible: integer('eligible').notNull(),
  },
  (t) => [
    index('polls_station_opened').on(t.stationId, t.openedAt),
    index('polls_session_opened').on(t.sessionId, t.openedAt),
  ],
);

export const sessionMinutes = sqliteTable(
  'session_minutes',
  {
    sessionId: text('session_id')
      .notNull()
      .references(() => broadcastSessions.id),
    stationId: text('station_id')
      .notNull()
      .references(() => stations.id),
    minute: integer('minute').notNull(),
    listeners: integer('listeners').notNull(),
    peak: integer('peak').notNull(),
    distinctListeners: integer('distinct_listeners').notNull(),
    joins: integer('joins').notNull(),
    chatMessages: integer('chat_messages').notNull(),
    /** JSON object: reactions per emoji. */
    reactions: text('reactions').notNull(),
    pollVotes: integer('poll_votes').notNull(),
    favouritesGained: integer('favourites_gained').notNull(),
    favouritesLost: integer('favourites_lost').notNull(),
    listeningMs: integer('listening_ms').notNull(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.minute] })],
);

// Events and bookings.
export const events = sqliteTable(
  'events',
  {
    id: text('id').primaryKey(),
    organiserId: text('organiser_id')
      .notNull()
      .references(() => users.id),
    title: text('title').notNull(),
    description: text('description').notNull().default(''),
    venue: text('venue').notNull(),
    startsAt: integer('starts_at').notNull(),
    capacity: integer('capacity').notNull(),
    // Confirmed seats; the conditional update `booked_seats + n <= capacity` is the oversell guard.
    bookedSeats: integer('booked_seats').notNull().default(0),
    visibility: text('visibility', { enum: ['public', 'private'] })
      .notNull()
      .default('public'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    // Called off by its organiser (docs/notifications.md): no more bookings, every holder told.
    cancelledAt: integer('cancelled_at'),
  },
  (t) => [index('events_starts').on(t.startsAt)],
);

export const eventAccess = sqliteTable(
  'event_access',
  {
    eventId: text('event_id')
      .notNull()
      .references(() => events.id),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    grantedAt: integer('granted_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.userId] })],
);

export const bookings = sqliteTable(
  'bookings',
  {
    id: text('id').primaryKey(),
    eventId: text('event_id')
      .notNull()
      .references(() => events.id),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    quantity: integer('quantity').notNull(),
    status: text('status', { enum: ['confirmed', 'cancelled'] }).notNull(),
    idempotencyKey: text('idempotency_key'),
    createdAt: integer('created_at').notNull(),
    cancelledAt: integer('cancelled_at'),
    cancelledBy: text('cancelled_by').references(() => users.id),
  },
  (t) => [
    index('bookings_event').on(t.eventId),
    index('bookings_user').on(t.userId),
    uniqueIndex('bookings_user_idempotency').on(t.userId, t.idempotencyKey),
  ],
);

// Stored first answers for `Idempotency-Key` retries (see docs/bookings.md).
export const idempotencyKeys = sqliteTable(
  'idempotency_keys',
  {
    userId: text('user_id').notNull(),
    key: text('key').notNull(),
    scope: text('scope').notNull(),
    requestHash: text('request_hash').notNull(),
    responseStatus: integer('response_status').notNull(),
    responseBody: text('response_body').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.scope, t.key] }),
    index('idempotency_created').on(t.createdAt),
  ],
);

export const tickets = sqliteTable(
  'tickets',
  {
    id: text('id').primaryKey(),
    bookingId: text('booking_id')
      .notNull()
      .references(() => bookings.id),
    eventId: text('event_id')
      .notNull()
      .references(() => events.id),
    holderId: text('holder_id')
      .notNull()
      .references(() => users.id),
    status: text('status', { enum: ['valid', 'cancelled'] })
      .notNull()
      .default('valid'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('tickets_holder').on(t.holderId), index('tickets_booking').on(t.bookingId)],
);

export const ticketTransfers = sqliteTable(
  'ticket_transfers',
  {
    id: text('id').primaryKey(),
    ticketId: text('ticket_id')
      .notNull()
      .references(() => tickets.id),
    fromUserId: text('from_user_id')
      .notNull()
      .references(() => users.id),
    toUserId: text('to_user_id')
      .notNull()
      .references(() => users.id),
    transferredAt: integer('transferred_at').notNull().default(sql`(unixepoch() * 1000)`),
  },
  (t) => [index('ticket_transfers_ticket').on(t.ticketId)],
);

// Stories (docs/stories.md). The body is the live document's text, written by the story's
// channel (through its outbox) after edits settle; everything else is written by the routes.
export const stories = sqliteTable(
  'stories',
  {
    id: text('id').primaryKey(),
    ownerId: text('owner_id')
      .notNull()
      .references(() => users.id),
    title: text('title').notNull(),
    body: text('body').notNull().default(''),
    // The channel's seq of the document state `body` was taken from: saves only move forward.
    bodySeq: integer('body_seq').notNull().default(0),
    // JSON of the branching structure ({ start, passages }), or null.
    graph: text('graph'),
    published: integer('published', { mode: 'boolean' }).notNull().default(false),
    publishedAt: integer('published_at'),
    // Grows with every change of who may read or write (owner, co-authors, published, title).
    accessVersion: integer('access_version').notNull().default(1),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('stories_owner').on(t.ownerId),
    index('stories_published').on(t.published, t.publishedAt, t.id),
  ],
);

export const storyCoauthors = sqliteTable(
  'story_coauthors',
  {
    storyId: text('story_id')
      .notNull()
      .references(() => stories.id),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    addedAt: integer('added_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.storyId, t.userId] }),
    index('story_coauthors_user').on(t.userId),
  ],
);

// Multiplayer play sessions: opened by a host, written by the session's channel (outbox).
export const playSessions = sqliteTable(
  'play_sessions',
  {
    id: text('id').primaryKey(),
    storyId: text('story_id')
      .notNull()
      .references(() => stories.id),
    hostId: text('host_id')
      .notNull()
      .references(() => users.id),
    status: text('status', { enum: ['open', 'ended'] }).notNull(),
    maxPlayers: integer('max_players').notNull(),
    choiceSeconds: integer('choice_seconds').notNull(),
    createdAt: integer('created_at').notNull(),
    endedAt: integer('ended_at'),
    endReason: text('end_reason'),
  },
  (t) => [index('play_sessions_story').on(t.storyId, t.createdAt)],
);

// A session's path: one row per passage shown, with the votes and the winning choice.
export const playSteps = sqliteTable(
  'play_steps',
  {
    sessionId: text('session_id')
      .notNull()
      .references(() => playSessions.id),
    step: integer('step').notNull(),
    passageId: text('passage_id').notNull(),
    choiceId: text('choice_id'),
    // JSON { choiceId: votes }.
    tallies: text('tallies').notNull(),
    reason: text('reason'),
    decidedAt: integer('decided_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.step] })],
);

// Per-user notification inboxes (docs/notifications.md). The user's channel object commits each
// notification and each read; these rows follow through its outbox. `n` is the inbox's own
// running number (the object's order), so a read-all can name exactly what it marked.
export const notifications = sqliteTable(
  'notifications',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id),
    n: integer('n').notNull(),
    kind: text('kind').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull().default(''),
    link: text('link'),
    data: text('data'),
    // Where it came from (a booking, a go-live …): one notification per source, however often retried.
    sourceKey: text('source_key'),
    createdAt: integer('created_at').notNull(),
    readAt: integer('read_at'),
  },
  (t) => [
    uniqueIndex('notifications_user_n').on(t.userId, t.n),
    uniqueIndex('notifications_user_source').on(t.userId, t.sourceKey),
    index('notifications_user_unread').on(t.userId, t.readAt),
  ],
);

// "Log out everywhere": tokens of a user issued before `revokedAt` are refused (docs/notifications.md).
export const sessionRevocations = sqliteTable('session_revocations', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id),
  revokedAt: integer('revoked_at').notNull(),
});
