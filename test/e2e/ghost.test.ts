// The ghost sweep end to end (invariant 3, docs/protocol.md "heartbeat"): a socket that stays
// silent past HEARTBEAT_TIMEOUT_SECONDS is closed with 4408 and leaves the counts within the
// timeout plus one sweep interval — also when nothing else happens in its room, and also when
// another socket keeps itself alive only with runtime-answered heartbeats (which never wake the
// object). Its own `wrangler dev` runs with a short timeout.
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { CommentWelcome } from '../../worker/protocol/comments';
import type { PresenceLeftFrame } from '../../worker/protocol/core';
import { connect, register, unique } from './helpers';
import { type DevServer, e2eServer } from './server';

const TIMEOUT_SECONDS = 4;
/** The sweep runs every min(30, max(1, timeout / 2)) seconds. */
const SWEEP_SECONDS = Math.min(30, Math.max(1, TIMEOUT_SECONDS / 2));
/** Silence allowed before the close must have arrived: timeout, one sweep, and some slack. */
const CLOSED_WITHIN_MS = (TIMEOUT_SECONDS + SWEEP_SECONDS + 4) * 1000;
const HEARTBEAT = '{"type":"ping"}';
/**
 * The close frame (4408) arrives within the bound; when the sweep closes a socket from the
 * object's alarm, local `wrangler dev` ends the TCP connection only some seconds later, and the
 * `ws` client reports `close` (with the server's code) then. So the bound is checked on the close
 * handshake, and the code on the client's `close` event, allowed to come later.
 */
const TCP_CLOSE_MS = 30_000;

// The cases run at once, each in its own room, so the file waits for one timeout, not three.
describe.concurrent('silent sockets', () => {
  let server: DevServer;
  let base: string;

  beforeAll(async () => {
    server = e2eServer('ghost', { HEARTBEAT_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) });
    await server.start();
    base = server.baseUrl;
  });

  afterAll(async () => {
    await server?.dispose({ keepLog: !!process.env.E2E_LOG });
  });

  /** A lone silent socket's close, then the counts a newcomer is welcomed with. */
  async function loneGhost(token?: string) {
    const itemId = unique('ghost');
    const ghost = await connect(`/ws/comments/${itemId}`, { base, ...(token ? { token } : {}) });
    await ghost.next('welcome');
    // The server closes within the bound; counts must have dropped by then.
    await ghost.closing(CLOSED_WITHIN_MS);
    const probe = await connect(`/ws/comments/${itemId}`, { base });
    const welcome = await probe.next<CommentWelcome>('welcome');
    probe.close();
    const closed = await ghost.closed(TCP_CLOSE_MS);
    return { closed, presence: welcome.snapshot.presence };
  }

  it('closes a lone silent signed-in socket with 4408 and counts it out, with nothing else happening in the room', async ({
    expect,
  }) => {
    const user = await register('listener', 'Ghost', base);
    const { closed, presence } = await loneGhost(user.token);
    expect(closed.code).toBe(4408);
    expect(presence).toMatchObject({ users: 0, connections: 1 });
  });

  it('closes a lone silent anonymous socket with 4408 and counts it out', async ({ expect }) => {
    const { closed, presence } = await loneGhost();
    expect(closed.code).toBe(4408);
    expect(presence).toMatchObject({ users: 0, connections: 1 });
  });

  it('closes a silent socket beside one kept alive by heartbeats alone, and tells the live one', async ({
    expect,
  }) => {
    const [ghostUser, observerUser] = await Promise.all([
      register('listener', 'Ghost', base),
      register('listener', 'Observer', base),
    ]);
    const itemId = unique('ghost-beside');
    const observer = await connect(`/ws/comments/${itemId}`, { base, token: observerUser.token });
    await observer.next('welcome');
    // Only the heartbeat the runtime answers itself: it never wakes the object.
    const beat = setInterval(() => observer.send(HEARTBEAT), 1000);
    try {
      const ghost = await connect(`/ws/comments/${itemId}`, { base, token: ghostUser.token });
      await ghost.next('welcome');
      await observer.next('presence.joined');

      await ghost.closing(CLOSED_WITHIN_MS);
      const left = await observer.next<PresenceLeftFrame>('presence.left', 2000);
      expect(left.user.id).toBe(ghostUser.id);
      expect(left.users).toBe(1);
      expect(left.connections).toBe(1);
      expect((await ghost.closed(TCP_CLOSE_MS)).code).toBe(4408);

      // The live socket outlasts another timeout and sweep and is still answered.
      await new Promise((r) => setTimeout(r, (TIMEOUT_SECONDS + SWEEP_SECONDS) * 1000));
      expect(observer.closeEvent).toBeNull();
      observer.send(HEARTBEAT);
      await observer.next((f) => f.type === 'pong');
    } finally {
      clearInterval(beat);
      observer.close();
    }
  });
});
