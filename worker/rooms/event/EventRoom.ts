// A bookable event's channel: the single writer of its inventory. A booking, a cancellation, a
// transfer, an edit and an access change each commit in the object's own SQLite, in one
// synchronous transaction (seats, rows, the Idempotency-Key answer, the sequenced event, an
// outbox row); the answer and the broadcast follow that commit, and D1 catches up from the
// outbox. No booking waits for D1 (docs/bookings.md).
import { ChannelError } from '../../channel/errors';
import { type ChannelKit, ChannelRoom, type Handlers } from '../../channel/room';
import type { BookingRow, TicketRow } from '../../db/events';
import { CloseCode, ErrorCode, type PublicUser } from '../../protocol/core';
import type {
  BookingCreatedResponse,
  EventChanges,
  EventRoomSnapshot,
  eventFrames,
} from '../../protocol/events';
import { AccessList, canManage, canSee, mustSee } from './access';
import { accessList, cancelEvent, grantAccess, revokeAccess, updateEvent } from './admin';
import { type Answer, BookingAnswers, type Idempotency, keyReused } from './answers';
import { Bookings, itemId } from './bookings';
import { commitChange, mirror, registerWriters } from './commits';
import { Inventory, refusalFor, seatsOf } from './inventory';
import { KeyShards } from './KeyClaims';
import { event as eventKind } from './kind';
import { bookingCancelled, bookingConfirmed } from './notices';
import { seedFromD1 } from './seed';
import { transferTicket } from './tickets';
import { bookingView, eventView } from './views';

export type { Answer, Idempotency } from './answers';

/** What the event's changes work on: the kit and the object's own state, composed once. */
export interface EventParts {
  readonly kit: ChannelKit;
  readonly inventory: Inventory;
  readonly access: AccessList;
  readonly bookings: Bookings;
}

export class EventRoom extends ChannelRoom<typeof eventFrames, EventRoomSnapshot> {
  protected readonly handlers: Handlers<typeof eventFrames> = {};
  readonly #parts: EventParts;
  readonly #answers: BookingAnswers;
  readonly #keys: KeyShards;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, eventKind);
    const bookings = new Bookings(this.sql, this.channelId);
    this.#parts = {
      kit: this.kit,
      inventory: new Inventory(this.sql, this.channelId),
      access: new AccessList(this.sql),
      bookings,
    };
    this.#answers = new BookingAnswers(this.sql, bookings);
    this.#keys = new KeyShards(env);
    registerWriters(this.kit.outbox);
  }

  /** Copies, once ever (a flag in storage), what bookings made before this release left in D1. */
  protected override load(): Promise<void> {
    return seedFromD1(this.kit, this.channelId, { ...this.#parts, answers: this.#answers });
  }

  protected override mustExist(): void {
    this.#parts.inventory.event();
  }

  protected override authorize(user: PublicUser | null): void {
    mustSee(this.#parts.inventory.event(), user, this.#parts.access);
  }

  protected snapshot(): EventRoomSnapshot {
    const event = this.#parts.inventory.event();
    return { event: eventView(event), ...seatsOf(event), watchers: this.presenceSnapshot() };
  }

  // ---- RPC for the REST routes -------------------------------------------------------

  /** The event with the seats committed here, for whoever may see it. */
  view(user: PublicUser | null) {
    return this.rpc(() => {
      const event = this.#parts.inventory.event();
      mustSee(event, user, this.#parts.access);
      return { event: eventView(event) };
    });
  }

  book(user: PublicUser, quantity: number, idempotency?: Idempotency) {
    return this.rpc(() =>
      idempotency
        ? this.#answers.once(user.id, idempotency, () =>
            this.#claimAndBook(user, quantity, idempotency),
          )
        : this.#commitBooking(user, quantity),
    );
  }

  /** A booking, to its booker, the event's organiser or an admin (404 for anyone else). */
  booking(user: PublicUser, bookingId: string) {
    return this.rpc(() => {
      const found = this.#parts.bookings.find(bookingId);
      const event = this.#parts.inventory.event();
      if (!found || (found.booking.userId !== user.id && !canManage(event, user))) {
        throw new ChannelError(ErrorCode.bookingNotFound, 'no such booking', 404);
      }
      return { booking: bookingView(found.booking, found.tickets) };
    });
  }

  cancelBooking(user: PublicUser, bookingId: string) {
    return this.rpc(() => this.#cancel(user, bookingId));
  }

  transferTicket(user: PublicUser, ticketId: string, toUserId: string) {
    return this.rpc(() => transferTicket(this.#parts, user, ticketId, toUserId));
  }

  updateEvent(user: PublicUser, changes: EventChanges) {
    return this.rpc(() => {
      const { event, narrowed } = updateEvent(this.#parts, user, changes);
      if (narrowed) this.#closeWithoutAccess();
      return { event };
    });
  }

  cancelEvent(user: PublicUser, reason: string | null) {
    return this.rpc(() => cancelEvent(this.#parts, user, reason));
  }

  accessList(user: PublicUser) {
    return this.rpc(() => accessList(this.#parts, user));
  }

  grantAccess(user: PublicUser, userId: string) {
    return this.rpc(() => grantAccess(this.#parts, user, userId));
  }

  revokeAccess(user: PublicUser, userId: string) {
    return this.rpc(() => {
      const { narrowed, ...revoked } = revokeAccess(this.#parts, user, userId);
      if (narrowed) this.#closeWithoutAccess();
      return revoked;
    });
  }

  /** Sockets of anyone who may no longer see the event (anonymous ones too) close with 4403. */
  #closeWithoutAccess(): void {
    const event = this.#parts.inventory.event();
    for (const conn of [...this.connections()]) {
      if (canSee(event, conn.user, this.#parts.access)) continue;
      this.closeConnection(conn, CloseCode.forbidden, 'no access to this private event');
    }
  }

  // ---- bookings ----------------------------------------------------------------------

  /** A key this event has not seen: the user's KeyClaims object says whether it may be used. */
  async #claimAndBook(user: PublicUser, quantity: number, idem: Idempotency): Promise<Answer> {
    // Refused at the door: nothing is attempted, so nothing is claimed or stored.
    mustSee(this.#parts.inventory.event(), user, this.#parts.access);
    const claim = await this.#keys.claim(user.id, idem.key, idem.requestHash);
    if (!claim.ok) throw keyReused(claim.message);
    try {
      return this.#commitBooking(user, quantity, idem);
    } catch (err) {
      // Nothing was stored under the key, so a retry may use it for anything: give it back.
      this.ctx.waitUntil(
        this.#keys
          .release(user.id, idem.key, idem.requestHash)
          .catch((e: unknown) => console.error(`${this.kit.label}: releasing a key failed`, e)),
      );
      throw err;
    }
  }

  /**
   * Decides and commits a booking in one synchronous step: the seats are taken by the guarded
   * update, the booking, its tickets and the answer are written with them, and the event is
   * sequenced and queued for D1 in the same transaction. A refusal (409) changes no seats; under
   * a key it is stored as the answer too.
   */
  #commitBooking(user: PublicUser, quantity: number, idem?: Idempotency): Answer {
    const { inventory, access, bookings } = this.#parts;
    const now = Date.now();
    const event = inventory.event();
    mustSee(event, user, access);
    const refusal = refusalFor(event, quantity, now);
    if (refusal) {
      const body = JSON.stringify({
        error: refusal,
        availableSeats: seatsOf(event).availableSeats,
      });
      if (idem) this.#answers.store(user.id, idem, { status: 409, body }, now);
      return { status: 409, body, replayed: false };
    }
    const booking: BookingRow = {
      id: itemId(this.channelId),
      eventId: this.channelId,
      userId: user.id,
      quantity,
      status: 'confirmed',
      idempotencyKey: idem?.key ?? null,
      createdAt: now,
      cancelledAt: null,
      cancelledBy: null,
    };
    // Sorted so the answer lists tickets in the order every later read does (created, id).
    const tickets: TicketRow[] = Array.from({ length: quantity }, () => itemId(this.channelId))
      .sort()
      .map((id) => ({
        id,
        bookingId: booking.id,
        eventId: this.channelId,
        holderId: user.id,
        status: 'valid',
        createdAt: now,
      }));
    return commitChange(this.kit, (tx) => {
      const seats = inventory.take(quantity);
      bookings.insert(booking, tickets);
      const response: BookingCreatedResponse = {
        booking: bookingView(booking, tickets),
        availableSeats: seats.availableSeats,
      };
      const answer = { status: 201, body: JSON.stringify(response) };
      if (idem) this.#answers.store(user.id, idem, answer, now);
      tx.publish({
        type: 'booking.created',
        eventId: this.channelId,
        bookingId: booking.id,
        quantity,
        ...seats,
      });
      mirror(tx, 'booking.created', {
        booking: {
          id: booking.id,
          eventId: booking.eventId,
          userId: booking.userId,
          quantity,
          idempotencyKey: booking.idempotencyKey,
          createdAt: now,
        },
        ticketIds: tickets.map((t) => t.id),
        bookedSeats: seats.bookedSeats,
        ...(idem ? { answer: { ...idem, ...answer, at: now } } : {}),
      });
      bookingConfirmed(tx, event, user.id, booking.id, quantity);
      return { ...answer, replayed: false };
    });
  }

  #cancel(user: PublicUser, bookingId: string) {
    const { inventory, bookings } = this.#parts;
    const event = inventory.event();
    const found = bookings.find(bookingId);
    if (!found) throw new ChannelError(ErrorCode.bookingNotFound, 'no such booking', 404);
    const { booking, tickets } = found;
    const manager = canManage(event, user);
    if (booking.userId !== user.id && !manager) {
      throw new ChannelError(
        ErrorCode.forbidden,
        "only the booking's holder, the event's organiser or an admin may cancel it",
        403,
      );
    }
    if (booking.status === 'cancelled') {
      throw new ChannelError(ErrorCode.alreadyCancelled, 'this booking is already cancelled', 409);
    }
    // A booker may not void a ticket someone else now holds; the organiser (refunds) may.
    if (!manager && tickets.some((t) => t.holderId !== booking.userId)) {
      throw new ChannelError(
        ErrorCode.ticketTransferred,
        'a ticket of this booking was transferred; ask the organiser to cancel it',
        409,
      );
    }
    const now = Date.now();
    return commitChange(this.kit, (tx) => {
      bookings.cancel(bookingId, user.id, now);
      const seats = inventory.give(booking.quantity);
      tx.publish({
        type: 'booking.cancelled',
        eventId: this.channelId,
        bookingId,
        quantity: booking.quantity,
        ...seats,
      });
      mirror(tx, 'booking.cancelled', {
        eventId: this.channelId,
        bookingId,
        by: user.id,
        at: now,
        bookedSeats: seats.bookedSeats,
      });
      bookingCancelled(tx, event, booking.userId, bookingId, booking.quantity);
      const cancelled = bookingView(
        { ...booking, status: 'cancelled', cancelledAt: now, cancelledBy: user.id },
        tickets.map((t) => ({ ...t, status: 'cancelled' as const })),
      );
      return { booking: cancelled, availableSeats: seats.availableSeats };
    });
  }
}
