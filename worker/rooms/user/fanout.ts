// The notification queue's consumer (this worker's `queue` handler). A `fanout` message reads
// one page of recipients from D1 and queues `deliver` messages for them plus a `fanout` for the
// next page; a `deliver` message tells each of its users' channel objects. Every step is
// retried by the queue on failure, and delivered twice changes nothing: each inbox keeps one
// notification per source key. docs/notifications.md ("Fan-out through the queue").
import { favouritersPage, holdersPage } from '../../db/notifications';
import { userChannel } from './kind';
import type { DeliverMessage, FanoutMessage, NotificationMessage } from './sources';

/** Recipients read from D1 per fan-out message. */
export const FANOUT_PAGE = 500;
/** Users per `deliver` message (each one call to their channel object). */
export const DELIVER_BATCH = 50;
/** Calls to channel objects a `deliver` message makes at once. */
const PARALLEL = 10;

export async function consumeNotifications(
  batch: MessageBatch<NotificationMessage>,
  env: Env,
): Promise<void> {
  for (const message of batch.messages) {
    try {
      const body = message.body;
      if (body.type === 'fanout') await fanoutPage(env, body);
      else if (body.type === 'deliver') await deliver(env, body);
      else console.error('notification queue: unknown message', JSON.stringify(body));
      message.ack();
    } catch (err) {
      console.error(
        `notification queue: message ${message.id} failed (attempt ${message.attempts})`,
        err,
      );
      message.retry({ delaySeconds: Math.min(60, 2 ** message.attempts) });
    }
  }
}

async function fanoutPage(env: Env, message: FanoutMessage): Promise<void> {
  const { audience, after } = message;
  const ids =
    audience.kind === 'favourites'
      ? await favouritersPage(env.DB, audience.stationId, after, FANOUT_PAGE)
      : await holdersPage(env.DB, audience.eventId, after, FANOUT_PAGE);
  const sends: MessageSendRequest<NotificationMessage>[] = [];
  for (let i = 0; i < ids.length; i += DELIVER_BATCH) {
    const deliverMessage: DeliverMessage = {
      type: 'deliver',
      userIds: ids.slice(i, i + DELIVER_BATCH),
      template: message.template,
    };
    sends.push({ body: deliverMessage, contentType: 'json' });
  }
  const last = ids.at(-1);
  if (ids.length === FANOUT_PAGE && last) {
    sends.push({ body: { ...message, after: last }, contentType: 'json' });
  }
  // sendBatch takes at most 100 messages: FANOUT_PAGE / DELIVER_BATCH + 1 stays far below.
  if (sends.length > 0) await env.NOTIFY_QUEUE.sendBatch(sends);
}

async function deliver(env: Env, message: DeliverMessage): Promise<void> {
  const failures: unknown[] = [];
  for (let i = 0; i < message.userIds.length; i += PARALLEL) {
    const slice = message.userIds.slice(i, i + PARALLEL);
    const results = await Promise.allSettled(
      slice.map((userId) => userChannel.room(env, userId).notify(message.template)),
    );
    for (const r of results) if (r.status === 'rejected') failures.push(r.reason);
  }
  // The whole message is retried; the users already told keep one notification (the key).
  if (failures.length > 0) throw failures[0];
}
