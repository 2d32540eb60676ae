// Ticket transfers for the EventRoom: only the current holder may hand a valid ticket on.
import { eq } from 'drizzle-orm';
import { ChannelError } from '../channel/errors';
import { db, schema } from '../db/client';
import { ErrorCode, type PublicUser } from '../protocol/core';
import { commitTransfer } from './event-inventory';
import { canSee, type EventScope, findTicket, ticketView } from './event-records';

export async function transferTicket(
  scope: EventScope,
  user: PublicUser,
  ticketId: string,
  toUserId: string,
) {
  const database = db(scope.d1);
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
  const recipient = await database.query.users.findFirst({
    where: eq(schema.users.id, toUserId),
    columns: { id: true, displayName: true, role: true },
  });
  if (!recipient) throw new ChannelError(ErrorCode.userNotFound, 'no such recipient', 404);
  const to = { id: recipient.id, name: recipient.displayName, role: recipient.role };
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
  const moved = await commitTransfer(scope.d1, {
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
