// A bookable event's channel: the single writer for its inventory. Bookings, cancellations,
// transfers and edits run one at a time (`exclusive`), each committed to D1 in one guarded
// transaction before anything is broadcast. Watchers get seat numbers with every change.
import { assertNever, ChannelError } from '../channel/errors';
import { ChannelRoom, type Connection, frameTypesOf, type Handled } from '../channel/room';
import { db } from '../db/client';
import { errorBody } from '../http/errors';
import { ErrorCode, type PublicUser } from '../protocol/core';
import {
  type BookingCreatedResponse,
  type BookingView,
  type EventChanges,
  type EventClientFrame,
  type EventRoomSnapshot,
  eventClientFrame,
  IDEMPOTENCY_TTL_MS,
  type Seats,
  type TicketView,
} from '../protocol/events';
import { grantAccess, revokeAccess, updateEvent } from './event-admin';
import {
  commitBooking,
  commitCancel,
  isConstraintError,
  type KeyState,
  keyState,
  pruneIdempotencyKeys,
  refusalFor,
  settle,
  storeRefusal,
} from './event-inventory';
import {
  bookingView,
  canManage,
  canSee,
  type EventRow,
  type EventScope,
  eventChannel,
  eventView,
  findBooking,
  findEvent,
  type UnsequencedEvent,
} from './event-records';
import { transferTicket } from './event-tickets';

export { eventChannel };

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

const PRUNE_TASK = 'prune-idempotency-keys';
const PRUNE_EVERY_MS = 60 * 60 * 1000;
/** Rounds of "D1 disagreed, reload and try again" before a booking gives up. */
const MAX_RESYNCS = 3;

export class EventRoom extends ChannelRoom<EventClientFrame, EventRoomSnapshot> {
  protected readonly frames = eventClientFrame;
  #eventId = '';
  #event: EventRow | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, {
      kind: 'event',
      frameTypes: frameTypesOf(eventClientFrame),
      presence: 'counts',
    });
  }

  protected override async load(channel: string): Promise<void> {
    this.#eventId = channel.slice('event:'.length);
    this.#event = (await findEvent(db(this.env.DB), this.#eventId)) ?? null;
  }

  protected override async authorize(user: PublicUser | null): Promise<void> {
    const event = await this.#requireEvent();
    if (!(await canSee(db(this.env.DB), event, user))) {
      throw new ChannelError(ErrorCode.eventAccessDenied, 'this event is private', 403);
    }
  }

  protected snapshot(): EventRoomSnapshot {
    const event = this.#loaded();
    return { event: eventView(event), ...this.#seats(), watchers: this.presenceSnapshot() };
  }

  protected onFrame(_conn: Connection, frame: EventClientFrame): Handled {
    switch (frame.type) {
      case 'ping':
        return {};
      default:
        return assertNever(frame.type);
    }
  }

  protected override async onTask(name: string): Promise<void> {
    if (name !== PRUNE_TASK) return;
    const now = Date.now();
    await pruneIdempotencyKeys(db(this.env.DB), now);
    // Keep pruning while answers this room stored are still inside the window.
    const last = Number(this.log.getMeta('lastKeyAt') ?? '0');
    if (last + IDEMPOTENCY_TTL_MS >= now) await this.schedule(PRUNE_TASK, now + PRUNE_EVERY_MS);
  }

  // ---- RPC for the REST routes -------------------------------------------------------

  book(eventId: string, user: PublicUser, quantity: number, idempotency?: Idempotency) {
    return this.rpc(eventChannel(eventId), () =>
      this.exclusive(() => this.#book(user, quantity, idempotency)),
    );
  }

  cancelBooking(eventId: string, user: PublicUser, bookingId: string) {
    return this.rpc(eventChannel(eventId), () =>
      this.exclusive(() => this.#cancel(user, bookingId)),
    );
  }

  transferTicket(eventId: string, user: PublicUser, ticketId: string, toUserId: string) {
    return this.rpc(eventChannel(eventId), () =>
      this.exclusive(() => transferTicket(this.#scope(), user, ticketId, toUserId)),
    );
  }

  updateEvent(eventId: string, user: PublicUser, changes: EventChanges) {
    return this.rpc(eventChannel(eventId), () =>
      this.exclusive(() => updateEvent(this.#scope(), user, changes)),
    );
  }

  grantAccess(eventId: string, user: PublicUser, userId: string) {
    return this.rpc(eventChannel(eventId), () =>
      this.exclusive(() => grantAccess(this.#scope(), user, userId)),
    );
  }

  revokeAccess(eventId: string, user: PublicUser, userId: string) {
    return this.rpc(eventChannel(eventId), () =>
      this.exclusive(() => revokeAccess(this.#scope(), user, userId)),
    );
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
    const event = await this.#requireEvent();
    if (!(await canSee(database, event, user))) {
      throw new ChannelError(ErrorCode.eventAccessDenied, 'this event is private', 403);
    }
    for (let round = 0; round < MAX_RESYNCS; round++) {
      const now = Date.now();
      const current = this.#loaded();
      const refusal = refusalFor(current, quantity, now);
      if (refusal) return this.#refuse(user, refusal, idem, now);

      const bookingId = crypto.randomUUID();
      // Sorted so the answer lists tickets in the order every later read does (created, id).
      const ticketIds = Array.from({ length: quantity }, () => crypto.randomUUID()).sort();
      const tickets: TicketView[] = ticketIds.map((id) => ({
        id,
        bookingId,
        eventId: this.#eventId,
        holderId: user.id,
        status: 'valid',
        createdAt: now,
      }));
      const booking: BookingView = {
        id: bookingId,
        eventId: this.#eventId,
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
          eventId: this.#eventId,
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
        await this.#resync();
        continue;
      }
      this.#event = { ...current, bookedSeats: booked };
      this.#emit({
        type: 'booking.created',
        eventId: this.#eventId,
        bookingId,
        quantity,
        ...this.#seats(),
      });
      if (idem) await this.#keyStored(now);
      return { status: 201, body, replayed: false };
    }
    throw new Error(`event ${this.#eventId}: D1 kept disagreeing with the room's seat count`);
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
    const { availableSeats } = this.#seats();
    const body = JSON.stringify({ ...errorBody(refusal.code, refusal.message), availableSeats });
    if (!idem) return { status: 409, body, replayed: false };
    const stored = await storeRefusal(this.env.DB, {
      userId: user.id,
      key: idem.key,
      requestHash: idem.requestHash,
      status: 409,
      body,
      now,
    });
    await this.#keyStored(now);
    // Ours, unless a request with the same key got there first (then its answer stands).
    const first = this.#settled({ kind: 'answered', ...stored }, idem);
    if (!first) throw new Error('a stored answer settled nothing');
    return { ...first, replayed: first.body !== body };
  }

  async #cancel(user: PublicUser, bookingId: string) {
    const database = db(this.env.DB);
    const event = await this.#requireEvent();
    const found = await findBooking(database, bookingId);
    if (!found || found.booking.eventId !== this.#eventId) {
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
      eventId: this.#eventId,
      bookingId,
      quantity: booking.quantity,
      by: user.id,
      now,
    });
    if (!seats) {
      throw new ChannelError(ErrorCode.alreadyCancelled, 'this booking is already cancelled', 409);
    }
    this.#event = { ...this.#loaded(), ...seats };
    this.#emit({
      type: 'booking.cancelled',
      eventId: this.#eventId,
      bookingId,
      quantity: booking.quantity,
      ...this.#seats(),
    });
    const cancelled = bookingView(
      { ...booking, status: 'cancelled', cancelledAt: now, cancelledBy: user.id },
      tickets.map((t) => ({ ...t, status: 'cancelled' as const })),
    );
    return { booking: cancelled, availableSeats: this.#seats().availableSeats };
  }

  // ---- state -------------------------------------------------------------------------

  async #requireEvent(): Promise<EventRow> {
    if (!this.#event) this.#event = (await findEvent(db(this.env.DB), this.#eventId)) ?? null;
    if (!this.#event) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
    return this.#event;
  }

  #loaded(): EventRow {
    if (!this.#event) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
    return this.#event;
  }

  #seats(): Seats {
    const { capacity, bookedSeats } = this.#loaded();
    return { capacity, bookedSeats, availableSeats: Math.max(0, capacity - bookedSeats) };
  }

  /** D1 disagreed with the room: take D1's numbers and tell watchers if they moved. */
  async #resync(): Promise<EventRow> {
    const before = this.#loaded();
    const fresh = await findEvent(db(this.env.DB), this.#eventId);
    if (!fresh) throw new ChannelError(ErrorCode.eventNotFound, 'no such event', 404);
    this.#event = fresh;
    if (fresh.bookedSeats !== before.bookedSeats || fresh.capacity !== before.capacity) {
      this.#emit({
        type: 'seats.updated',
        eventId: this.#eventId,
        reason: 'resync',
        ...this.#seats(),
      });
    }
    return fresh;
  }

  #scope(): EventScope {
    return {
      d1: this.env.DB,
      eventId: this.#eventId,
      current: () => this.#requireEvent(),
      replace: (row) => {
        this.#event = row;
      },
      resync: () => this.#resync(),
      seats: () => this.#seats(),
      emit: (event) => this.#emit(event),
      watchers: () =>
        [...this.connections()].map((conn) => ({
          user: conn.att.user,
          close: (code: number, reason: string) => this.closeConnection(conn, code, reason),
        })),
    };
  }

  #emit(event: UnsequencedEvent): void {
    this.publish(event);
  }

  async #keyStored(now: number): Promise<void> {
    this.log.setMeta('lastKeyAt', String(now));
    await this.schedule(PRUNE_TASK, now + PRUNE_EVERY_MS, { ifEarlier: true });
  }
}
