// A bookable event's channel: the single writer for its inventory. Bookings, cancellations,
// transfers and edits run one at a time (`exclusive`), each committed to D1 in one guarded
// transaction before anything is broadcast. Watchers get seat numbers with every change.
import { ChannelError } from '../../channel/errors';
import { ChannelRoom, type Handlers } from '../../channel/room';
import {
  commitBooking,
  commitCancel,
  isConstraintError,
  type KeyState,
  keyState,
  storeRefusal,
} from '../../db/bookings';
import { db } from '../../db/client';
import { findBooking, withAccess } from '../../db/events';
import { CloseCode, ErrorCode, type PublicUser } from '../../protocol/core';
import type {
  BookingCreatedResponse,
  BookingView,
  EventChanges,
  EventRoomSnapshot,
  eventFrames,
  TicketView,
} from '../../protocol/events';
import { canManage, canSee } from './access';
import { grantAccess, revokeAccess, updateEvent } from './admin';
import { refusalFor, settle } from './inventory';
import { event as eventKind } from './kind';
import { EventState } from './state';
import { transferTicket } from './tickets';
import { bookingView, eventView } from './views';

/** An HTTP answer decided by the room; `body` is sent byte for byte (and replayed so). */
export interface Answer {
  status: number;
  body: string;
  /** True when this is a stored answer to an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

export interface Idempotency {
  key: string;
  requestHash: string;
}

/** Rounds of "D1 disagreed, reload and try again" before a booking gives up. */
const MAX_RESYNCS = 3;

export class EventRoom extends ChannelRoom<typeof eventFrames, EventRoomSnapshot> {
  protected readonly handlers: Handlers<typeof eventFrames> = {};
  readonly #state: EventState;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, eventKind);
    this.#state = new EventState(this.kit, this.channelId);
  }

  protected override async authorize(user: PublicUser | null): Promise<void> {
    const event = await this.#state.current();
    if (!(await canSee(db(this.env.DB), event, user))) {
      throw new ChannelError(ErrorCode.eventAccessDenied, 'this event is private', 403);
    }
  }

  protected snapshot(): EventRoomSnapshot {
    const event = this.#state.loaded();
    return { event: eventView(event), ...this.#state.seats(), watchers: this.presenceSnapshot() };
  }

  // ---- RPC for the REST routes -------------------------------------------------------

  book(user: PublicUser, quantity: number, idempotency?: Idempotency) {
    return this.rpc(() => this.exclusive(() => this.#book(user, quantity, idempotency)));
  }

  cancelBooking(user: PublicUser, bookingId: string) {
    return this.rpc(() => this.exclusive(() => this.#cancel(user, bookingId)));
  }

  transferTicket(user: PublicUser, ticketId: string, toUserId: string) {
    return this.rpc(() =>
      this.exclusive(() => transferTicket(this.#state, this.env.DB, user, ticketId, toUserId)),
    );
  }

  updateEvent(user: PublicUser, changes: EventChanges) {
    return this.rpc(() =>
      this.exclusive(async () => {
        const { event, narrowed } = await updateEvent(this.#state, this.env.DB, user, changes);
        if (narrowed) await this.#closeWithoutAccess();
        return { event };
      }),
    );
  }

  grantAccess(user: PublicUser, userId: string) {
    return this.rpc(() =>
      this.exclusive(() => grantAccess(this.#state, this.env.DB, user, userId)),
    );
  }

  revokeAccess(user: PublicUser, userId: string) {
    return this.rpc(() =>
      this.exclusive(async () => {
        const { narrowed, ...revoked } = await revokeAccess(this.#state, this.env.DB, user, userId);
        if (narrowed) await this.#closeWithoutAccess();
        return revoked;
      }),
    );
  }

  /** The event is private: sockets of anyone not allowed in (anonymous ones too) close with 4403. */
  async #closeWithoutAccess(): Promise<void> {
    const event = this.#state.loaded();
    const watchers = [...this.connections()];
    const listed = [
      ...new Set(watchers.flatMap((w) => (w.user && !canManage(event, w.user) ? [w.user.id] : []))),
    ];
    const allowed = await withAccess(db(this.env.DB), this.channelId, listed);
    for (const w of watchers) {
      const user = w.user;
      if (user && (canManage(event, user) || allowed.has(user.id))) continue;
      this.closeConnection(w, CloseCode.forbidden, 'no access to this private event');
    }
  }

  // ---- bookings ----------------------------------------------------------------------

  async #book(user: PublicUser, quantity: number, idem?: Idempotency): Promise<Answer> {
    const database = db(this.env.DB);
    // Looked up inside the queue: a retry that arrives while the first attempt is still
    // committing waits its turn and then finds the stored answer.
    if (idem) {
      const settled = this.#settled(await keyState(database, user.id, idem.key), idem);
      if (settled) return settled;
    }
    const event = await this.#state.current();
    if (!(await canSee(database, event, user))) {
      throw new ChannelError(ErrorCode.eventAccessDenied, 'this event is private', 403);
    }
    for (let round = 0; round < MAX_RESYNCS; round++) {
      const now = Date.now();
      const current = this.#state.loaded();
      const refusal = refusalFor(current, quantity, now);
      if (refusal) return this.#refuse(user, refusal, idem, now);

      const bookingId = crypto.randomUUID();
      // Sorted so the answer lists tickets in the order every later read does (created, id).
      const ticketIds = Array.from({ length: quantity }, () => crypto.randomUUID()).sort();
      const tickets: TicketView[] = ticketIds.map((id) => ({
        id,
        bookingId,
        eventId: this.channelId,
        holderId: user.id,
        status: 'valid',
        createdAt: now,
      }));
      const booking: BookingView = {
        id: bookingId,
        eventId: this.channelId,
        userId: user.id,
        quantity,
        status: 'confirmed',
        createdAt: now,
        cancelledAt: null,
        cancelledBy: null,
        tickets,
      };
      const response: BookingCreatedResponse = {
        booking,
        availableSeats: current.capacity - current.bookedSeats - quantity,
      };
      const body = JSON.stringify(response);
      let booked: number | null;
      try {
        booked = await commitBooking(this.env.DB, {
          eventId: this.channelId,
          expectedBooked: current.bookedSeats,
          bookingId,
          ticketIds,
          userId: user.id,
          quantity,
          now,
          ...(idem ? { idempotency: { ...idem, status: 201, body } } : {}),
        });
      } catch (err) {
        // The key was claimed meanwhile by a request for another event (another room).
        if (idem && isConstraintError(err)) {
          const settled = this.#settled(await keyState(database, user.id, idem.key), idem);
          if (settled) return settled;
        }
        throw err;
      }
      if (booked === null) {
        await this.#state.resync();
        continue;
      }
      this.#state.replace({ ...current, bookedSeats: booked });
      this.#state.emit({
        type: 'booking.created',
        eventId: this.channelId,
        bookingId,
        quantity,
        ...this.#state.seats(),
      });
      return { status: 201, body, replayed: false };
    }
    throw new Error(`event ${this.channelId}: D1 kept disagreeing with the room's seat count`);
  }

  /** The stored answer for a key, a refusal for a key used otherwise, or null for a new key. */
  #settled(state: KeyState, idem: Idempotency): Answer | null {
    const settled = settle(state, idem.requestHash);
    if (!settled) return null;
    if (settled.kind === 'reused') {
      throw new ChannelError(ErrorCode.idempotencyKeyReused, settled.message, 422);
    }
    return { status: settled.status, body: settled.body, replayed: true };
  }

  /** A 409 that is part of the booking's outcome: stored under the key like a success. */
  async #refuse(
    user: PublicUser,
    refusal: { code: string; message: string },
    idem: Idempotency | undefined,
    now: number,
  ): Promise<Answer> {
    const { availableSeats } = this.#state.seats();
    const body = JSON.stringify({
      error: { code: refusal.code, message: refusal.message },
      availableSeats,
    });
    if (!idem) return { status: 409, body, replayed: false };
    const stored = await storeRefusal(this.env.DB, {
      userId: user.id,
      key: idem.key,
      requestHash: idem.requestHash,
      status: 409,
      body,
      now,
    });
    // Ours, unless a request with the same key got there first (then its answer stands).
    const first = this.#settled({ kind: 'answered', ...stored }, idem);
    if (!first) throw new Error('a stored answer settled nothing');
    return { ...first, replayed: first.body !== body };
  }

  async #cancel(user: PublicUser, bookingId: string) {
    const database = db(this.env.DB);
    const event = await this.#state.current();
    const found = await findBooking(database, bookingId);
    if (!found || found.booking.eventId !== this.channelId) {
      throw new ChannelError(ErrorCode.bookingNotFound, 'no such booking', 404);
    }
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
    const seats = await commitCancel(this.env.DB, {
      eventId: this.channelId,
      bookingId,
      quantity: booking.quantity,
      by: user.id,
      now,
    });
    if (!seats) {
      throw new ChannelError(ErrorCode.alreadyCancelled, 'this booking is already cancelled', 409);
    }
    this.#state.replace({ ...this.#state.loaded(), ...seats });
    this.#state.emit({
      type: 'booking.cancelled',
      eventId: this.channelId,
      bookingId,
      quantity: booking.quantity,
      ...this.#state.seats(),
    });
    const cancelled = bookingView(
      { ...booking, status: 'cancelled', cancelledAt: now, cancelledBy: user.id },
      tickets.map((t) => ({ ...t, status: 'cancelled' as const })),
    );
    return { booking: cancelled, availableSeats: this.#state.seats().availableSeats };
  }
}
