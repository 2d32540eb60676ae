// How an event's changes commit: through the core's one commit point, with outbox rows whose
// payloads are checked against the D1 writers that will apply them (worker/db/).
import type { Outbox } from '../../channel/outbox';
import type { ChannelKit, Tx } from '../../channel/room';
import { bookingWriters } from '../../db/bookings';
import { eventWriters } from '../../db/events';

const writers = { ...bookingWriters, ...eventWriters };
type Writers = typeof writers;
type Op = keyof Writers;

/** Registers every D1 writer the event's outbox rows name. */
export function registerWriters(outbox: Outbox): void {
  for (const op of Object.keys(writers) as Op[]) {
    outbox.register(op, writers[op] as (d1: D1Database, payload: never) => D1PreparedStatement[]);
  }
}

/** Adds an outbox row (inside a commit) for D1 to follow. */
export function mirror<K extends Op>(tx: Tx, op: K, payload: Parameters<Writers[K]>[1]): void {
  tx.outbox(op, payload);
}

/**
 * Commits a change in one synchronous transaction and returns what `apply` made. Bookings keep
 * their Idempotency-Key answers themselves (answers.ts); the other routes key theirs in D1.
 */
export function commitChange<T>(kit: ChannelKit, apply: (tx: Tx) => T): T {
  return kit.commit(null, (tx) => ({ result: apply(tx) })).result;
}
