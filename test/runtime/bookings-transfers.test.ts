// Ticket transfers (seed 004 "ticket transferred"): only the current holder may hand a valid
// ticket on, the new holder sees it in GET /api/me/tickets with its history, and a transferred
// ticket cannot be voided by the original booker.
import { beforeAll, describe, expect, it } from 'vitest';
import type { TicketView } from '../../worker/protocol/events';
import { booked, createEvent, errorOf, ledger, settled, ticketsOf } from './event-fixtures';
import { api, register, type TestUser } from './helpers';

let organiser: TestUser;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let admin: TestUser;

beforeAll(async () => {
  [organiser, alice, bob, carol, admin] = await Promise.all([
    register('organiser'),
    register('listener', 'Alice'),
    register('listener', 'Bob'),
    register('listener', 'Carol'),
    register('admin'),
  ]);
});

function transfer(ticketId: string, user: TestUser | null, json: unknown) {
  return api(`/api/tickets/${ticketId}/transfer`, {
    method: 'POST',
    ...(user ? { token: user.token } : {}),
    json,
  });
}

async function holderOf(ticketId: string, eventId: string): Promise<string | undefined> {
  return (await ledger(eventId)).tickets.find((t) => t.id === ticketId)?.holder_id;
}

async function aTicket(owner: TestUser, fields: Record<string, unknown> = {}) {
  const event = await createEvent(organiser, fields);
  const booking = await booked(owner, event.id, 1);
  const ticket = booking.tickets[0] as TicketView;
  return { event, booking, ticket };
}

describe('transferring a ticket', () => {
  it('moves the ticket to the new holder, who then sees it in their tickets with its history', async () => {
    const { event, ticket } = await aTicket(alice);
    const res = await transfer(ticket.id, alice, { toUserId: bob.id });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      ticket: TicketView;
      transfer: { fromUserId: string; toUserId: string; transferredAt: number };
    };
    expect(body.ticket).toMatchObject({ id: ticket.id, holderId: bob.id, status: 'valid' });
    expect(body.transfer).toMatchObject({ fromUserId: alice.id, toUserId: bob.id });

    await settled(event.id);
    const bobs = await ticketsOf(bob);
    const mine = bobs.find((t) => t.id === ticket.id);
    expect(mine).toMatchObject({ holderId: bob.id, event: { id: event.id, title: event.title } });
    expect(mine?.transfers).toEqual([
      expect.objectContaining({ fromUserId: alice.id, toUserId: bob.id }),
    ]);
    expect((await ticketsOf(alice)).some((t) => t.id === ticket.id)).toBe(false);
    expect(await holderOf(ticket.id, event.id)).toBe(bob.id);
  });

  it('keeps the whole history when a ticket changes hands twice', async () => {
    const { event, ticket } = await aTicket(alice);
    expect((await transfer(ticket.id, alice, { toUserId: bob.id })).status).toBe(200);
    expect((await transfer(ticket.id, bob, { toUserId: carol.id })).status).toBe(200);
    await settled(event.id);
    const held = (await ticketsOf(carol)).find((t) => t.id === ticket.id);
    expect(held?.transfers.map((t) => [t.fromUserId, t.toUserId])).toEqual([
      [alice.id, bob.id],
      [bob.id, carol.id],
    ]);
  });

  it('refuses everyone but the current holder with not_holder, the original booker included', async () => {
    const { event, ticket } = await aTicket(alice);
    await transfer(ticket.id, alice, { toUserId: bob.id });
    for (const user of [alice, carol, organiser, admin]) {
      const res = await transfer(ticket.id, user, {
        toUserId: user === carol ? alice.id : carol.id,
      });
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe('not_holder');
    }
    expect(await holderOf(ticket.id, event.id)).toBe(bob.id);
  });

  it('lets only one of two simultaneous transfers of the same ticket through', async () => {
    const { event, ticket } = await aTicket(alice);
    const answers = await Promise.all([
      transfer(ticket.id, alice, { toUserId: bob.id }),
      transfer(ticket.id, alice, { toUserId: carol.id }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 403]);
    const holder = await holderOf(ticket.id, event.id);
    await settled(event.id);
    const held = (await ticketsOf(holder === bob.id ? bob : carol)).find((t) => t.id === ticket.id);
    expect(held?.transfers).toHaveLength(1);
  });

  it('refuses a cancelled ticket with ticket_cancelled', async () => {
    const { event, booking, ticket } = await aTicket(alice);
    await api(`/api/bookings/${booking.id}`, { method: 'DELETE', token: alice.token });
    const res = await transfer(ticket.id, alice, { toUserId: bob.id });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('ticket_cancelled');
    expect(await holderOf(ticket.id, event.id)).toBe(alice.id);
  });

  it('refuses a recipient without access to a private event, and accepts one with it', async () => {
    const { event, ticket } = await aTicket(alice, {
      visibility: 'private',
      accessUserIds: [alice.id, carol.id],
    });
    const res = await transfer(ticket.id, alice, { toUserId: bob.id });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe('event_access_denied');
    expect(await holderOf(ticket.id, event.id)).toBe(alice.id);
    expect((await transfer(ticket.id, alice, { toUserId: carol.id })).status).toBe(200);
  });

  it.each([
    ['a missing recipient', {}, 400, 'invalid_body'],
    ['a recipient of the wrong type', { toUserId: 42 }, 400, 'invalid_body'],
    ['an unknown field', { toUserId: 'x', note: 'hi' }, 400, 'invalid_body'],
    ['a recipient who does not exist', { toUserId: 'no-such-user' }, 404, 'user_not_found'],
  ])('refuses %s and moves nothing', async (_, body, status, code) => {
    const { event, ticket } = await aTicket(alice);
    const res = await transfer(ticket.id, alice, body);
    expect(res.status).toBe(status);
    expect((await errorOf(res)).code).toBe(code);
    expect(await holderOf(ticket.id, event.id)).toBe(alice.id);
  });

  it('refuses a transfer to oneself, an unknown ticket and an anonymous caller', async () => {
    const { ticket } = await aTicket(alice);
    const self = await transfer(ticket.id, alice, { toUserId: alice.id });
    expect(self.status).toBe(400);
    expect((await errorOf(self)).code).toBe('invalid_body');
    const unknown = await transfer('5b0e1d2c-0000-4000-8000-000000000000', alice, {
      toUserId: bob.id,
    });
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe('ticket_not_found');
    expect((await transfer(ticket.id, null, { toUserId: bob.id })).status).toBe(401);
  });
});

describe('cancelling a booking whose tickets moved', () => {
  it('refuses the original booker with ticket_transferred, so the new holder keeps the ticket', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const booking = await booked(alice, event.id, 2);
    const moved = booking.tickets[0] as TicketView;
    await transfer(moved.id, alice, { toUserId: bob.id });
    const res = await api(`/api/bookings/${booking.id}`, {
      method: 'DELETE',
      token: alice.token,
    });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('ticket_transferred');
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 2, validTickets: 2 });
    // The new holder holds a ticket, not the booking.
    const byHolder = await api(`/api/bookings/${booking.id}`, {
      method: 'DELETE',
      token: bob.token,
    });
    expect(byHolder.status).toBe(403);
  });

  it('lets the organiser cancel it, voiding the transferred ticket too', async () => {
    const event = await createEvent(organiser, { capacity: 5 });
    const booking = await booked(alice, event.id, 2);
    const moved = booking.tickets[0] as TicketView;
    await transfer(moved.id, alice, { toUserId: bob.id });
    const res = await api(`/api/bookings/${booking.id}`, {
      method: 'DELETE',
      token: organiser.token,
    });
    expect(res.status).toBe(200);
    expect(await ledger(event.id)).toMatchObject({ bookedSeats: 0, validTickets: 0 });
    await settled(event.id);
    expect((await ticketsOf(bob)).find((t) => t.id === moved.id)?.status).toBe('cancelled');
  });
});
