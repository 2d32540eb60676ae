// The rules of an event's inventory, as pure functions: what a booking request's fingerprint
// is, why a booking cannot be had, and what a stored answer means for a retry. The guarded D1
// writes are in worker/db/bookings.ts (docs/bookings.md).
import type { KeyState } from '../../db/bookings';
import { ErrorCode } from '../../protocol/core';
import type { BookingRequest } from '../../protocol/events';

/** A stable fingerprint of the normalised request (defaults applied, key order fixed). */
export async function requestHash(request: BookingRequest): Promise<string> {
  const canonical = JSON.stringify({ eventId: request.eventId, quantity: request.quantity });
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Why a booking cannot be had right now, judged on the room's numbers; null if it fits. */
export function refusalFor(
  event: { capacity: number; bookedSeats: number; startsAt: number },
  quantity: number,
  now: number,
): { code: string; message: string } | null {
  const available = event.capacity - event.bookedSeats;
  if (event.startsAt <= now) {
    return { code: ErrorCode.bookingClosed, message: 'the event has started; booking is closed' };
  }
  if (available <= 0) return { code: ErrorCode.soldOut, message: 'the event is sold out' };
  if (quantity > available) {
    return {
      code: ErrorCode.insufficientSeats,
      message: `only ${available} seat${available === 1 ? '' : 's'} left; asked for ${quantity}`,
    };
  }
  return null;
}

/** What the room or the worker does with a key's state: replay, refuse, or go ahead (null). */
export function settle(
  state: KeyState,
  hash: string,
): { kind: 'replay'; status: number; body: string } | { kind: 'reused'; message: string } | null {
  switch (state.kind) {
    case 'fresh':
      return null;
    case 'answered':
      return state.requestHash === hash
        ? { kind: 'replay', status: state.status, body: state.body }
        : {
            kind: 'reused',
            message: 'this Idempotency-Key was already used for a different request',
          };
    case 'spent':
      return {
        kind: 'reused',
        message: `this Idempotency-Key made booking ${state.bookingId}; use a new key for a new booking`,
      };
  }
}
