// The platform broadcast (docs/protocol.md, "Broadcast"): one root object that takes and
// sequences announcements and market values, and BROADCAST_RELAYS relay objects that hold the
// sockets (each at most BROADCAST_RELAY_CAPACITY) and hear every change from the root. No object
// writes to every socket on the platform. Clients connect to `/ws/broadcast`; the worker picks a
// relay.
import { defineKind } from '../../channel/kind';
import { broadcastFrames, broadcastRootFrames } from '../../protocol/broadcast';
import type { BroadcastRelay } from './BroadcastRelay';

/** The root: no sockets; the admin routes and the server API write to it. */
export const broadcastRoot = defineKind({
  kind: 'broadcast-root',
  prefix: 'broadcast-root',
  singleton: 'broadcast-root',
  binding: 'BROADCAST_ROOT',
  frames: broadcastRootFrames,
  connect: 'signed-in',
  write: 'signed-in',
  presence: 'counts',
});

/** A relay: `broadcast:<index>`, anyone may listen; signed-in sockets may watch presence. */
export const broadcast = defineKind({
  kind: 'broadcast',
  prefix: 'broadcast',
  binding: 'BROADCAST_RELAY',
  frames: broadcastFrames,
  connect: 'anyone',
  write: 'signed-in',
  presence: 'counts',
  reservedEvents: ['announcement.', 'market.', 'user.'],
});

export const DEFAULT_RELAYS = 16;
export const DEFAULT_RELAY_CAPACITY = 4000;
export const DEFAULT_MARKET_UPDATES_PER_SECOND = 5;

function setting(value: string | undefined, fallback: number, max: number): number {
  const n = Number(value || fallback);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : fallback;
}

export function relayCount(env: Env): number {
  return setting(env.BROADCAST_RELAYS, DEFAULT_RELAYS, 1024);
}

export function relayCapacity(env: Env): number {
  return setting(env.BROADCAST_RELAY_CAPACITY, DEFAULT_RELAY_CAPACITY, 32_000);
}

/** At most this many `market.values` frames a second reach one client. */
export function marketRate(env: Env): number {
  return setting(env.MARKET_UPDATES_PER_SECOND, DEFAULT_MARKET_UPDATES_PER_SECOND, 100);
}

export function relayStubByName(env: Env, name: string): DurableObjectStub<BroadcastRelay> {
  return env.BROADCAST_RELAY.get(env.BROADCAST_RELAY.idFromName(name));
}
