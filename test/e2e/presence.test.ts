// Against `wrangler dev`: platform presence fed by the user channel. 50 users with 1–3 tabs each
// on `/ws/me` go online and offline — some closing their tabs, some dropping them abruptly — while
// a watcher of 20 of them on `/ws/broadcast` sees exactly their transitions, in order, and no
// others. docs/presence.md.
import { afterAll, describe, expect, it } from 'vitest';
import type { PresenceStatuses } from '../../worker/protocol/presence';
import type { FrameQueue } from '../support/frames';
import { api, connect, type E2EUser, register } from './helpers';

const USERS = 50;
const WATCHED = 20;
const ROUNDS = 3;

type Tab = FrameQueue & { raw: { terminate(): void; close(code?: number): void } };
const open: Tab[] = [];

afterAll(() => {
  for (const t of open) t.raw.terminate();
});

/** Seeded, so a failure can be replayed: the tabs and the abrupt drops are the same each run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function statusOf(token: string, id: string): Promise<boolean> {
  const res = await api<{ users: PresenceStatuses }>(`/api/presence?ids=${id}`, { token });
  return res.body.users[id]?.online === true;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('platform presence from the user channels', () => {
  it('a watcher of 20 of 50 users sees exactly their transitions, in order', {
    timeout: 300_000,
  }, async () => {
    const rand = random(9);
    const users: E2EUser[] = [];
    for (let i = 0; i < USERS; i++) users.push(await register('listener', `presence-${i}`));
    const watcherUser = await register('listener', 'watcher');
    const watched = users.slice(0, WATCHED);
    const watcher = await connect('/ws/broadcast', { token: watcherUser.token });
    await watcher.next('welcome');
    watcher.send({ type: 'presence.watch', id: 'w', ids: watched.map((u) => u.id) });
    const ack = await watcher.next<{ result: { users: PresenceStatuses } }>('ack');
    for (const u of watched) expect(ack.result.users[u.id]?.online).toBe(false);

    const expected = new Map<string, string[]>(watched.map((u) => [u.id, []]));
    // Each user, on their own: go online with 1–3 tabs, then offline (closing or dropping the
    // tabs), ROUNDS times; the users run side by side.
    await Promise.all(
      users.map(async (user, index) => {
        for (let round = 0; round < ROUNDS; round++) {
          const tabs = 1 + Math.floor(rand() * 3);
          const mine: Tab[] = [];
          for (let t = 0; t < tabs; t++) {
            const tab = (await connect('/ws/me', { token: user.token })) as Tab;
            open.push(tab);
            mine.push(tab);
            await tab.next('welcome');
          }
          expected.get(user.id)?.push('user.online');
          await until(`${index} online`, () => statusOf(user.token, user.id));
          const abrupt = rand() < 0.4;
          for (const tab of mine) {
            if (abrupt) tab.raw.terminate();
            else tab.raw.close(1000);
          }
          expected.get(user.id)?.push('user.offline');
          await until(`${index} offline`, async () => !(await statusOf(user.token, user.id)));
        }
      }),
    );
    const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
    const seen = () =>
      watcher.received.filter((f) => f.type === 'user.online' || f.type === 'user.offline');
    await until('the watcher saw every transition', async () => seen().length >= total, 20_000);
    // A moment for anything extra to show up, then compare exactly.
    await new Promise((r) => setTimeout(r, 1000));
    const actual = new Map<string, string[]>(watched.map((u) => [u.id, []]));
    for (const f of seen()) {
      const list = actual.get(f.userId as string);
      expect(list, `a frame for an unwatched user ${String(f.userId)}`).toBeDefined();
      list?.push(f.type);
    }
    expect(actual).toEqual(expected);
    watcher.close();
  });
});
