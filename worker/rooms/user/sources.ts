// How the product's flows notify users (docs/notifications.md, "Sources"). A source adds an
// outbox row inside the commit of its own change (a booking, a transfer, a go-live), so the
// notification cannot be lost or sent for a change that rolled back; the row is delivered after
// the commit and retried until it lands. Each carries a source key, and the user's inbox keeps
// one notification per key, so a retried row (or a retried booking) delivers once.
//
// One recipient: the row calls the user's channel object. Many recipients (every holder of an
// event, every user who favourited a station): the row puts one message on the notification
// queue, whose consumer (fanout.ts) pages the recipients out of D1 — never a loop inside the
// request or the source's object.
import { defineOutboxEffect } from '../../channel/outbox';
import type { Tx } from '../../channel/room';
import type { NotificationInput } from '../../protocol/user';
import { userChannel } from './kind';

/** Who a fan-out reaches, read from D1 page by page by the queue's consumer. */
export type Audience =
  | { kind: 'favourites'; stationId: string }
  | { kind: 'holders'; eventId: string };

/** What every recipient of a fan-out gets; `key` is the source key (one per recipient's inbox). */
export type Template = Omit<NotificationInput, 'key'> & { key: string };

export interface FanoutMessage {
  type: 'fanout';
  audience: Audience;
  template: Template;
  /** The last recipient id of the previous page (null: start). */
  after: string | null;
}

export interface DeliverMessage {
  type: 'deliver';
  userIds: string[];
  template: Template;
}

export type NotificationMessage = FanoutMessage | DeliverMessage;

interface NotifyRow {
  userId: string;
  notification: Template;
}

defineOutboxEffect<NotifyRow>('notify', async (env, row) => {
  await userChannel.room(env, row.userId).notify(row.notification);
});

defineOutboxEffect<FanoutMessage>('notify.fanout', async (env, message) => {
  await env.NOTIFY_QUEUE.send(message, { contentType: 'json' });
});

/** Inside a commit: `userId` is told once, after the commit, however often this is retried. */
export function notifyInCommit(tx: Tx, userId: string, notification: Template): void {
  tx.outbox('notify', { userId, notification } satisfies NotifyRow);
}

/** Inside a commit: everyone in `audience` is told, through the queue (docs/notifications.md). */
export function fanOut(tx: Tx, audience: Audience, template: Template): void {
  tx.outbox('notify.fanout', {
    type: 'fanout',
    audience,
    template,
    after: null,
  } satisfies FanoutMessage);
}
