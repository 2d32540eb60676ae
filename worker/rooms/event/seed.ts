// An event created, or booked, before its object kept its own inventory lives only in D1. The
// object copies what it needs once, before its first request — the event row with its booked
// seats, the access list, every booking and ticket (it may have to cancel or transfer them), and
// the booking answers still within their 24 hours — and never reads D1 for them again.
import { ChannelError } from '../../channel/errors';
import type { ChannelKit } from '../../channel/room';
import { answersWithHashes, bookingsOfEvent } from '../../db/bookings';
import { db } from '../../db/client';
import { accessOf, findEvent } from '../../db/events';
import { ErrorCode } from '../../protocol/core';
import { IDEMPOTENCY_TTL_MS, MAX_SEATS_PER_BOOKING } from '../../protocol/events';
import type { AccessList } from './access';
import { type BookingAnswers, bookingRequestHash } from './answers';
import type { Bookings } from './bookings';
import type { Inventory } from './inventory';

const SEEDED = 'inventory-seeded';

export interface Seeded {
  inventory: Inventory;
  access: AccessList;
  bookings: Bookings;
  answers: BookingAnswers;
}

/** Copies the event from D1 unless done before. */
export async function seedFromD1(kit: ChannelKit, eventId: string, into: Seeded): Promise<void> {
  if (kit.log.getMeta(SEEDED) === '1') return;
  const event = await findEvent(db(kit.env.DB), eventId);
  // Nothing is kept for an unknown id: the next request asks D1 again, as the worker used to.
  if (!event) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
  // A booking's request hash names its event and quantity, so this event's answers are those
  // with one of these hashes.
  const hashes = await Promise.all(
    Array.from({ length: MAX_SEATS_PER_BOOKING }, (_, i) => bookingRequestHash(eventId, i + 1)),
  );
  const [access, held, answers] = await Promise.all([
    accessOf(kit.env.DB, eventId),
    bookingsOfEvent(kit.env.DB, eventId),
    answersWithHashes(kit.env.DB, hashes, Date.now() - IDEMPOTENCY_TTL_MS),
  ]);
  kit.transaction(() => {
    into.inventory.put(event);
    into.access.put(access);
    into.bookings.put(held.bookings, held.tickets);
    into.answers.put(answers);
    kit.log.setMeta(SEEDED, '1');
  });
}
