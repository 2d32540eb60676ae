// Ticket transfers, committed in the event's object: only the current holder may hand a valid
// ticket on, and only to someone who may see the event. Watchers hear `ticket.transferred`
// without names; D1 gets the new holder and the transfer record through the outbox.
import { ChannelError } from '../../channel/errors';
import { findPublicUser } from '../../db/accounts';
import type { TicketRow } from '../../db/events';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import { canSee } from './access';
import { commitChange, mirror } from './commits';
import type { EventParts } from './EventRoom';
import { ticketTransferred } from './notices';
import { ticketView } from './views';

/** The ticket, if `user` may hand it on now. */
function transferable({ bookings }: EventParts, user: PublicUser, ticketId: string): TicketRow {
  const ticket = bookings.ticket(ticketId);
  if (!ticket) throw new ChannelError(ErrorCode.ticketNotFound, 'no such ticket', 404);
  if (ticket.holderId !== user.id) {
    throw new ChannelError(ErrorCode.notHolder, "only the ticket's holder may transfer it", 403);
  }
  if (ticket.status !== 'valid') {
    throw new ChannelError(ErrorCode.ticketCancelled, 'this ticket was cancelled', 409);
  }
  return ticket;
}

export async function transferTicket(
  parts: EventParts,
  user: PublicUser,
  ticketId: string,
  toUserId: string,
) {
  transferable(parts, user, ticketId);
  if (toUserId === user.id) {
    throw new ChannelError(ErrorCode.invalidBody, 'you already hold this ticket', 400);
  }
  const to = await findPublicUser(parts.kit.env.DB, toUserId);
  if (!to) throw new ChannelError(ErrorCode.userNotFound, 'no such recipient', 404);
  // Decided again after the await: another transfer of this ticket may have committed meanwhile.
  const ticket = transferable(parts, user, ticketId);
  // The organiser decides who may attend a private event; a transfer cannot widen the list.
  if (!canSee(parts.inventory.event(), to, parts.access)) {
    throw new ChannelError(
      ErrorCode.eventAccessDenied,
      'the recipient has no access to this private event',
      403,
    );
  }
  const transfer = {
    id: crypto.randomUUID(),
    ticketId,
    fromUserId: user.id,
    toUserId,
    transferredAt: Date.now(),
  };
  commitChange(parts.kit, (tx) => {
    parts.bookings.moveTicket(ticketId, user.id, toUserId);
    tx.publish({
      type: 'ticket.transferred',
      eventId: parts.inventory.eventId,
      ticketId,
      bookingId: ticket.bookingId,
    });
    mirror(tx, 'ticket.transferred', {
      transferId: transfer.id,
      ticketId,
      fromUserId: user.id,
      toUserId,
      at: transfer.transferredAt,
    });
    ticketTransferred(tx, parts.inventory.event(), transfer);
  });
  return { ticket: ticketView({ ...ticket, holderId: toUserId }), transfer };
}
