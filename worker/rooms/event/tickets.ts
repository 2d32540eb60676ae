// Ticket transfers for the EventRoom: only the current holder may hand a valid ticket on.
import { ChannelError } from '../../channel/errors';
import { findPublicUser } from '../../db/accounts';
import { commitTransfer } from '../../db/bookings';
import { db } from '../../db/client';
import { findTicket } from '../../db/events';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import { canSee } from './access';
import type { EventState } from './state';
import { ticketView } from './views';

export async function transferTicket(
  scope: EventState,
  d1: D1Database,
  user: PublicUser,
  ticketId: string,
  toUserId: string,
) {
  const database = db(d1);
  const event = await scope.current();
  const ticket = await findTicket(database, ticketId);
  if (!ticket || ticket.eventId !== scope.eventId) {
    throw new ChannelError(ErrorCode.ticketNotFound, 'no such ticket', 404);
  }
  if (ticket.holderId !== user.id) {
    throw new ChannelError(ErrorCode.notHolder, "only the ticket's holder may transfer it", 403);
  }
  if (ticket.status !== 'valid') {
    throw new ChannelError(ErrorCode.ticketCancelled, 'this ticket was cancelled', 409);
  }
  if (toUserId === user.id) {
    throw new ChannelError(ErrorCode.invalidBody, 'you already hold this ticket', 400);
  }
  const to = await findPublicUser(d1, toUserId);
  if (!to) throw new ChannelError(ErrorCode.userNotFound, 'no such recipient', 404);
  // The organiser decides who may attend a private event; a transfer cannot widen the list.
  if (!(await canSee(database, event, to))) {
    throw new ChannelError(
      ErrorCode.eventAccessDenied,
      'the recipient has no access to this private event',
      403,
    );
  }
  const now = Date.now();
  const transferId = crypto.randomUUID();
  const moved = await commitTransfer(d1, {
    ticketId,
    fromUserId: user.id,
    toUserId,
    transferId,
    now,
  });
  if (!moved) {
    throw new ChannelError(ErrorCode.conflict, 'the ticket changed meanwhile; try again', 409);
  }
  scope.emit({
    type: 'ticket.transferred',
    eventId: scope.eventId,
    ticketId,
    bookingId: ticket.bookingId,
  });
  return {
    ticket: ticketView({ ...ticket, holderId: toUserId }),
    transfer: { id: transferId, ticketId, fromUserId: user.id, toUserId, transferredAt: now },
  };
}
