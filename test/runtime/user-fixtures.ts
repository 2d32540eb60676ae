// Fixtures for the user channel tests: deliver notifications the way a trusted caller does (the
// room's typed `notify`), read the inbox over REST, wait for the object's outbox to reach D1.
import { unreadInD1 } from '../../worker/db/notifications';
import type { Notification, NotificationInput, NotificationPage } from '../../worker/protocol/user';
import { userChannel } from '../../worker/rooms/user/kind';
import type { UserChannel } from '../../worker/rooms/user/UserChannel';
import { api, drained, env, type TestUser } from './helpers';

export function userRoom(userId: string): DurableObjectStub<UserChannel> {
  return userChannel.stub(env, userId) as DurableObjectStub<UserChannel>;
}

let n = 0;
export async function notify(
  userId: string,
  input: Partial<NotificationInput> = {},
): Promise<{ notification: Notification; created: boolean; unread: number }> {
  n += 1;
  return userChannel.room(env, userId).notify({ kind: 'test.note', title: `Note ${n}`, ...input });
}

export async function inbox(user: TestUser, query = ''): Promise<NotificationPage> {
  const res = await api(`/api/me/notifications${query}`, { token: user.token });
  if (res.status !== 200) throw new Error(`inbox: ${res.status} ${await res.text()}`);
  return (await res.json()) as NotificationPage;
}

export async function unreadCount(user: TestUser): Promise<number> {
  const res = await api('/api/me/notifications/unread-count', { token: user.token });
  if (res.status !== 200) throw new Error(`unread: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { unread: number }).unread;
}

export function markRead(user: TestUser, body: unknown): Promise<Response> {
  return api('/api/me/notifications/read', { method: 'POST', token: user.token, json: body });
}

/** The unread rows D1 holds once the user's object has written its outbox. */
export async function unreadInD1Settled(userId: string): Promise<number> {
  await drained(userRoom(userId));
  return unreadInD1(env.DB, userId);
}

/** Waits until the user's inbox holds `count` notifications of `kind` (deliveries are async). */
export async function waitForKind(
  user: TestUser,
  kind: string,
  count = 1,
  timeoutMs = 10_000,
): Promise<Notification[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await inbox(user, '?limit=100');
    const found = page.notifications.filter((x) => x.kind === kind);
    if (found.length >= count) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `expected ${count} ${kind}, inbox has ${JSON.stringify(page.notifications.map((x) => x.kind))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
