// The user channel (`/ws/me`): one user's devices. The notification inbox and its unread count,
// the latest balance, and "log out everywhere". docs/protocol.md ("The user channel") and
// docs/notifications.md.
import { z } from 'zod';
import type { ClientFrame, CoreServerFrame, FrameMap, Sequenced, WelcomeFrame } from './core';
import { text } from './core';

/** Notifications in the welcome (newest first) and the default REST page. */
export const NOTIFICATION_PAGE_SIZE = 20;
export const MAX_NOTIFICATION_PAGE = 100;
/** Ids one `notifications.read` may name. */
export const MAX_READ_IDS = 100;
export const NOTIFICATION_TITLE_MAX = 200;
export const NOTIFICATION_BODY_MAX = 2000;
export const NOTIFICATION_LINK_MAX = 2048;
/** A notification's `data`, as JSON, at most this many bytes. */
export const NOTIFICATION_DATA_MAX_BYTES = 4096;

/** What the product's own flows send (docs/notifications.md, "Sources"). */
export const NOTIFICATION_KINDS = [
  'booking.confirmed',
  'booking.cancelled',
  'ticket.received',
  'ticket.sent',
  'event.updated',
  'event.cancelled',
  'station.live',
  'chat.muted',
  'chat.banned',
] as const;
export type KnownNotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** A value in a notification's `data`: a scalar, or a list or object of scalars (one level). */
type Scalar = string | number | boolean | null;
export type JsonValue = Scalar | Scalar[] | { [key: string]: Scalar };
const scalar = z.union([text(), z.number(), z.boolean(), z.null()]);
const dataValue = z.union([scalar, z.array(scalar), z.record(z.string(), scalar)]);

export interface Notification {
  id: string;
  /** One of NOTIFICATION_KINDS for the product's sources; a trusted backend may name its own. */
  kind: string;
  title: string;
  body: string;
  link: string | null;
  data: { [key: string]: JsonValue } | null;
  createdAt: number;
  /** Null while unread. */
  readAt: number | null;
}

const notificationId = text().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a notification id');

/** A watermark: every notification created at or before this time (epoch ms). */
const watermark = z
  .number()
  .int('must be a whole number of milliseconds')
  .min(0, 'must not be negative')
  .max(Number.MAX_SAFE_INTEGER);

/** `{ ids }` or `{ upTo }`, exactly one. */
export const readRequest = z
  .object({
    ids: z
      .array(notificationId)
      .min(1, 'name at least one notification')
      .max(MAX_READ_IDS, `at most ${MAX_READ_IDS} ids at once`)
      .optional(),
    upTo: watermark.optional(),
  })
  .strict()
  .refine((r) => (r.ids === undefined) !== (r.upTo === undefined), {
    message: 'send either "ids" or "upTo", not both',
  });
export type ReadRequest = z.infer<typeof readRequest>;

export const userFrames = {
  'notifications.read': readRequest,
  'notifications.read-all': z.object({}).strict(),
} satisfies FrameMap;
export type UserClientFrame = ClientFrame<typeof userFrames>;

/** What a source (or a trusted backend) asks to deliver. `key` makes a retry deliver once. */
export const notificationInput = z
  .object({
    kind: text().regex(
      /^[a-z][a-z0-9_.-]{0,63}$/,
      'must be a lower-case kind like "booking.confirmed"',
    ),
    title: text()
      .trim()
      .min(1, 'must not be empty')
      .max(NOTIFICATION_TITLE_MAX, `must be at most ${NOTIFICATION_TITLE_MAX} characters`),
    body: text()
      .max(NOTIFICATION_BODY_MAX, `must be at most ${NOTIFICATION_BODY_MAX} characters`)
      .default(''),
    link: text()
      .max(NOTIFICATION_LINK_MAX)
      .regex(/^(\/|https?:\/\/)\S*$/, 'must be a path ("/…") or an http(s) URL')
      .nullish(),
    data: z
      .record(z.string(), dataValue)
      .refine(
        (d) => JSON.stringify(d).length <= NOTIFICATION_DATA_MAX_BYTES,
        `must be at most ${NOTIFICATION_DATA_MAX_BYTES} bytes as JSON`,
      )
      .nullish(),
    key: text().min(1).max(256).optional(),
  })
  .strict();
export type NotificationInput = z.input<typeof notificationInput>;

/** A decimal amount: money is carried as text so no float ever rounds it. */
const DECIMAL = /^-?\d{1,30}(\.\d{1,18})?$/;

export const balanceInput = z
  .object({
    amount: z.union([
      text().regex(DECIMAL, 'must be a decimal number like "12.50"'),
      z.number().refine((n) => Number.isFinite(n) && Math.abs(n) < 1e30, 'must be a finite number'),
    ]),
    currency: text().regex(
      /^[A-Za-z0-9._-]{1,16}$/,
      'must be a currency or token code (1–16 letters, digits, ._-)',
    ),
    version: z
      .number()
      .int('must be a whole number')
      .min(0, 'must not be negative')
      .max(Number.MAX_SAFE_INTEGER),
  })
  .strict();
export type BalanceInput = z.input<typeof balanceInput>;

export interface Balance {
  /** Decimal text, as sent (numbers are turned into their shortest decimal text). */
  amount: string;
  currency: string;
  /** Higher wins; a late older version never overwrites a newer one. */
  version: number;
  updatedAt: number;
}

// ---- server → client --------------------------------------------------------------

export interface NotificationNewEvent extends Sequenced {
  type: 'notification.new';
  notification: Notification;
  unread: number;
}

export interface NotificationsReadEvent extends Sequenced {
  type: 'notifications.read';
  /** A mark by ids: the ones it turned from unread to read. */
  ids?: string[];
  /** A watermark mark: everything created at or before this time is read now. */
  upTo?: number;
  /** A read-all: everything received before this frame is read now. */
  all?: true;
  /** How many notifications this mark turned from unread to read (never 0: a no-op sends nothing). */
  marked: number;
  readAt: number;
  unread: number;
}

export interface BalanceUpdatedEvent extends Sequenced {
  type: 'balance.updated';
  balance: Balance;
}

/** Sent just before the server closes every device with 4401 (not sequenced). */
export interface SessionRevokedFrame {
  type: 'session.revoked';
  /** Tokens issued before this moment are refused everywhere. */
  revokedAt: number;
  reason: string;
}

export type UserEvent = NotificationNewEvent | NotificationsReadEvent | BalanceUpdatedEvent;
export type UserServerFrame = CoreServerFrame | UserEvent | SessionRevokedFrame;

export interface UserSnapshot {
  userId: string;
  unread: number;
  /** The newest NOTIFICATION_PAGE_SIZE notifications, newest first. */
  notifications: Notification[];
  /** Cursor for `GET /api/me/notifications?before=` past the welcome's page (null: none). */
  nextCursor: string | null;
  balance: Balance | null;
  /** This user's open devices on the channel. */
  devices: number;
}
export type UserWelcome = WelcomeFrame<UserSnapshot>;

/** The answer of a mark, over REST and in a socket's ack. */
export interface ReadResult {
  marked: number;
  ids: string[];
  unread: number;
}

export interface NotificationPage {
  notifications: Notification[];
  nextCursor: string | null;
  unread: number;
}
