// The event as its room holds it: the row (kept in the object's SQLite, so a wake does not read
// D1), its seat numbers, and the events that tell watchers when they move. The room is the only
// writer of its event; D1 is read only when the object has never seen the event, or disagrees.
import { ChannelError } from '../../channel/errors';
import type { ChannelKit } from '../../channel/room';
import { db } from '../../db/client';
import { type EventRow, findEvent } from '../../db/events';
import { ErrorCode } from '../../protocol/core';
import type { Seats } from '../../protocol/events';
import type { UnsequencedEvent } from './views';

export class EventState {
  #row: EventRow | null | undefined;

  constructor(
    private readonly kit: ChannelKit,
    readonly eventId: string,
  ) {}

  /** The event, from this object or (first time, or after a reset) from D1. */
  async current(): Promise<EventRow> {
    if (this.#row === undefined) {
      const kept = this.kit.log.getMeta('event');
      this.#row = kept ? (JSON.parse(kept) as EventRow) : null;
    }
    if (!this.#row) {
      const fresh = await findEvent(db(this.kit.env.DB), this.eventId);
      if (fresh) this.replace(fresh);
    }
    return this.loaded();
  }

  /** The event as held now; refuses with `event_not_found` if there is none. */
  loaded(): EventRow {
    if (!this.#row) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
    return this.#row;
  }

  replace(row: EventRow): void {
    this.#row = row;
    this.kit.log.setMeta('event', JSON.stringify(row));
  }

  seats(): Seats {
    const { capacity, bookedSeats } = this.loaded();
    return { capacity, bookedSeats, availableSeats: Math.max(0, capacity - bookedSeats) };
  }

  emit(event: UnsequencedEvent): void {
    this.kit.commit(null, (tx) => tx.publish(event));
  }

  /** D1 disagreed with the room: take D1's numbers and tell watchers if they moved. */
  async resync(): Promise<EventRow> {
    const before = this.loaded();
    const fresh = await findEvent(db(this.kit.env.DB), this.eventId);
    if (!fresh) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
    this.replace(fresh);
    if (fresh.bookedSeats !== before.bookedSeats || fresh.capacity !== before.capacity) {
      this.emit({
        type: 'seats.updated',
        eventId: this.eventId,
        reason: 'resync',
        ...this.seats(),
      });
    }
    return fresh;
  }
}
