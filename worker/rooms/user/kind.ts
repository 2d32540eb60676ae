// The user channel: one object per user, where every tab and device of that user connects. It
// owns the notification inbox and its unread count, the latest balance, and forced logout.
// Other kinds and the routes reach it through `userChannel.room(env, userId)`: `notify`,
// `setBalance`, `revokeSessions` (typed, refusals as ChannelError). docs/notifications.md.
import { defineKind } from '../../channel/kind';
import { userFrames } from '../../protocol/user';

export const userChannel = defineKind({
  kind: 'user',
  prefix: 'user',
  binding: 'USER_CHANNEL',
  frames: userFrames,
  connect: 'signed-in',
  write: 'signed-in',
  // The devices of one person: counted, never announced to each other.
  presence: 'counts',
  reservedEvents: ['notification.', 'notifications.', 'balance.', 'session.'],
});

export { consumeNotifications } from './fanout';
export { type Audience, fanOut, type NotificationMessage, notifyInCommit } from './sources';
