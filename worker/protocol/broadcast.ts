// The platform broadcast channel (docs/protocol.md, "Broadcast"): system announcements and market
// values for every connected client, fanned out through a tree — one root object that sequences,
// relay objects that each hold a bounded share of the sockets. Signed-in clients also watch
// other users' presence here (docs/presence.md).
import { z } from 'zod';
import type { CoreServerFrame, FrameMap, Sequenced, WelcomeFrame } from './core';
import { text } from './core';
import type { PresenceWatchAnswer, UserOfflineFrame, UserOnlineFrame } from './presence';
import { watchIds } from './presence';

export const ANNOUNCEMENT_LEVELS = ['info', 'warning', 'error'] as const;
export type AnnouncementLevel = (typeof ANNOUNCEMENT_LEVELS)[number];

/** Active announcements at once (each is in every welcome). */
export const MAX_ACTIVE_ANNOUNCEMENTS = 20;
/** Longest announcement expiry: 30 days. */
export const MAX_ANNOUNCEMENT_TTL_SECONDS = 30 * 24 * 60 * 60;
/** Market keys the platform keeps (every one is in every welcome). */
export const MAX_MARKET_KEYS = 1000;
/** Largest market value, serialised. */
export const MAX_MARKET_VALUE_BYTES = 1024;

export interface Announcement {
  id: string;
  message: string;
  level: AnnouncementLevel;
  createdAt: number;
  /** When it goes by itself (epoch ms), or null until withdrawn. */
  expiresAt: number | null;
}

export interface MarketValue {
  key: string;
  value: unknown;
  /** Grows with every update of the key (a counter or a timestamp the publisher chooses). */
  version: number;
  updatedAt: number;
}

export const marketKey = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'a key is 1–64 of A-Z a-z 0-9 _ . : -');

const jsonValue = z
  .unknown()
  .refine((v) => v !== undefined, 'required')
  .refine(
    (v) => new TextEncoder().encode(JSON.stringify(v)).length <= MAX_MARKET_VALUE_BYTES,
    `at most ${MAX_MARKET_VALUE_BYTES} bytes as JSON`,
  );

export const announcementBody = z
  .object({
    message: text().trim().min(1).max(1000),
    level: z.enum(ANNOUNCEMENT_LEVELS).default('info'),
    expiresInSeconds: z.number().int().min(1).max(MAX_ANNOUNCEMENT_TTL_SECONDS).optional(),
  })
  .strict();

export const marketBody = z
  .object({
    key: marketKey,
    value: jsonValue,
    version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  })
  .strict();

/** What the root takes (from the admin REST routes and the server API, never from a socket). */
export const broadcastRootFrames = {
  'announcement.post': announcementBody,
  'announcement.withdraw': z.object({ announcementId: z.string().min(1).max(64) }).strict(),
  'market.set': marketBody,
} satisfies FrameMap;

/** What a client may send on a relay: presence watches (signed-in only). */
export const broadcastFrames = {
  'presence.watch': z.object({ ids: watchIds }).strict(),
} satisfies FrameMap;

export interface AnnouncementPostedEvent extends Sequenced {
  type: 'announcement.posted';
  announcement: Announcement;
}

export interface AnnouncementWithdrawnEvent extends Sequenced {
  type: 'announcement.withdrawn';
  announcementId: string;
  reason: 'withdrawn' | 'expired';
}

/** Root-only (relays turn it into `market.values`): one key's new value. */
export interface MarketUpdatedEvent extends Sequenced {
  type: 'market.updated';
  value: MarketValue;
}

export type RootEvent = AnnouncementPostedEvent | AnnouncementWithdrawnEvent | MarketUpdatedEvent;

/** Ephemeral, coalesced per relay: the keys that changed since the last one, newest values. */
export interface MarketValuesFrame {
  type: 'market.values';
  values: MarketValue[];
}

/** Everything the root holds, for a relay that attaches or fell behind. */
export interface RootState {
  seq: number;
  announcements: Announcement[];
  market: MarketValue[];
}

export interface BroadcastSnapshot {
  /** Which relay holds this socket (`?relay=` on a reconnect asks for it again). */
  relay: number;
  announcements: Announcement[];
  market: MarketValue[];
}

export type BroadcastWelcome = WelcomeFrame<BroadcastSnapshot>;
export type BroadcastServerFrame =
  | CoreServerFrame
  | AnnouncementPostedEvent
  | AnnouncementWithdrawnEvent
  | MarketValuesFrame
  | UserOnlineFrame
  | UserOfflineFrame;
export type { PresenceWatchAnswer };
