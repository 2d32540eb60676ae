// Platform presence (docs/presence.md): shards hear each user's 0→1 / 1→0 (the input the user
// channel feeds), watchers on the broadcast relays get the current status at once and then only
// their users' changes, batch reads, the admins' summed count, and the limits.
import { describe, expect, it } from 'vitest';
import type { PresenceStatuses } from '../../worker/protocol/presence';
import { reportPresence, shardCount, shardOf, shardStub } from '../../worker/rooms/presence/kind';
import { api, connect, env, register, unique } from './helpers';
import { server } from './server-fixtures';

const admin = await register('admin');
let version = 0;
const report = (userId: string, online: boolean) => reportPresence(env, userId, online, ++version);

async function watcher(relay = 0) {
  const user = await register();
  const socket = await connect('/ws/broadcast', { token: user.token, query: { relay } });
  await socket.next('welcome');
  return { user, socket };
}

async function watch(
  socket: Awaited<ReturnType<typeof watcher>>['socket'],
  ids: string[],
  id = unique('w'),
) {
  socket.send({ type: 'presence.watch', id, ids });
  const ack = await socket.next<{ result: { users: PresenceStatuses } }>(
    (f) => f.type === 'ack' && f.id === id,
  );
  return ack.result.users;
}

describe('watching users', () => {
  it('answers the current status at once, then only the watched users’ changes, in order', async () => {
    const [a, b, c] = [unique('ua'), unique('ub'), unique('uc')];
    await report(a, true);
    const { socket } = await watcher(0);
    const other = await watcher(1);
    const statuses = await watch(socket, [a, b]);
    expect(statuses[a]).toMatchObject({ online: true });
    expect(statuses[b]).toEqual({ online: false, since: null, version: 0 });
    await watch(other.socket, [c]);

    await report(b, true);
    await report(c, true);
    await report(a, false);
    await report(b, false);
    await socket.next((f) => f.type === 'user.offline' && f.userId === b);
    const seen = socket.received
      .filter((f) => f.type === 'user.online' || f.type === 'user.offline')
      .map((f) => `${f.userId === a ? 'a' : f.userId === b ? 'b' : 'c'}:${f.type}`);
    expect(seen).toEqual(['b:user.online', 'a:user.offline', 'b:user.offline']);
    const theirs = await other.socket.next<{ userId: string }>('user.online');
    expect(theirs.userId).toBe(c);
    expect(
      other.socket.all(
        (f) => f.type === 'user.offline' || (f.type === 'user.online' && f.userId !== c),
      ),
    ).toEqual([]);
    socket.close();
    other.socket.close();
  });

  it('two tabs are one user: a repeated or older report changes nothing', async () => {
    const u = unique('tabs');
    const { socket } = await watcher(2);
    await watch(socket, [u]);
    await reportPresence(env, u, true, 10);
    await reportPresence(env, u, true, 11); // another "online" for the same user
    await reportPresence(env, u, false, 9); // late: older than what the shard has
    await reportPresence(env, u, false, 12);
    await socket.next((f) => f.type === 'user.offline' && f.userId === u);
    const frames = socket.received.filter((f) => f.userId === u).map((f) => [f.type, f.version]);
    expect(frames).toEqual([
      ['user.online', 10],
      ['user.offline', 12],
    ]);
    socket.close();
  });

  it('a new watch replaces the last one; watchers of a user are counted once per relay', async () => {
    const [x, y] = [unique('x'), unique('y')];
    const one = await watcher(0);
    const two = await watcher(0);
    await watch(one.socket, [x]);
    await watch(two.socket, [x]);
    const shard = shardStub(env, shardOf(env, x));
    const before = await shard.watchers();
    await watch(one.socket, [y]);
    await report(x, true);
    await two.socket.next((f) => f.type === 'user.online' && f.userId === x);
    expect(one.socket.all((f) => f.userId === x && f.type === 'user.online')).toEqual([]);
    two.socket.close();
    one.socket.close();
    const deadline = Date.now() + 5000;
    while ((await shard.watchers()).pairs >= before.pairs) {
      if (Date.now() > deadline) throw new Error('the relay never unregistered');
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it('refuses 501 ids with too_many_ids and bad ids with invalid_frame; 500 is fine', async () => {
    const { socket } = await watcher(1);
    const ids = Array.from({ length: 501 }, (_, i) => `user-${i}`);
    socket.send({ type: 'presence.watch', id: 'big', ids });
    expect(await socket.next('error')).toMatchObject({ id: 'big', code: 'too_many_ids' });
    const ok = await watch(socket, ids.slice(0, 500));
    expect(Object.keys(ok)).toHaveLength(500);
    socket.send({ type: 'presence.watch', id: 'bad', ids: ['has space'] });
    expect(await socket.next('error')).toMatchObject({ id: 'bad', code: 'invalid_frame' });
    socket.send({ type: 'presence.watch', id: 'bad2', ids: 'nope' });
    expect(await socket.next('error')).toMatchObject({ id: 'bad2', code: 'invalid_frame' });
    socket.close();
  });
});

describe('GET /api/presence and the online count', () => {
  it('answers a batch from the shards that hold the ids', async () => {
    const user = await register();
    const [p, q] = [unique('p'), unique('q')];
    await report(p, true);
    const res = await api(`/api/presence?ids=${p},${q}`, { token: user.token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { users: PresenceStatuses };
    expect(body.users[p]?.online).toBe(true);
    expect(body.users[q]?.online).toBe(false);
    const viaServer = (await (await server(`/presence?ids=${p}&ids=${q}`)).json()) as {
      users: PresenceStatuses;
    };
    expect(viaServer.users).toEqual(body.users);
  });

  it('refuses anonymous callers, 501 ids, no ids and bad ids', async () => {
    const user = await register();
    expect((await api('/api/presence?ids=a')).status).toBe(401);
    const many = Array.from({ length: 501 }, (_, i) => `u${i}`).join(',');
    const res = await api(`/api/presence?ids=${many}`, { token: user.token });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('too_many_ids');
    expect((await api('/api/presence', { token: user.token })).status).toBe(400);
    expect((await api('/api/presence?ids=a%20b', { token: user.token })).status).toBe(400);
  });

  it('admins see the platform-wide online count, summed over every shard', async () => {
    const read = async () => {
      const res = await api('/api/admin/presence', { token: admin.token });
      expect(res.status).toBe(200);
      return (await res.json()) as { online: number; shards: number };
    };
    const start = await read();
    expect(start.shards).toBe(shardCount(env));
    const ids = Array.from({ length: 12 }, () => unique('count'));
    expect(new Set(ids.map((id) => shardOf(env, id))).size).toBeGreaterThan(1);
    for (const id of ids) await report(id, true);
    expect((await read()).online).toBe(start.online + 12);
    for (const id of ids.slice(0, 5)) await report(id, false);
    expect((await read()).online).toBe(start.online + 7);
    const user = await register();
    expect((await api('/api/admin/presence', { token: user.token })).status).toBe(403);
  });
});
