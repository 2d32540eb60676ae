// The broadcast tree at 5,000 sockets, in the runtime (docs/protocol.md, "Broadcast"): 200 relays
// of 25 sockets each (each relay under its BROADCAST_RELAY_CAPACITY), one announcement and 100
// market updates from the root. Every socket gets the announcement exactly once and, per key,
// strictly rising versions ending at the newest: none missed, doubled or reordered.
import { describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import type { Announcement, MarketValue } from '../../worker/protocol/broadcast';
import { broadcast, broadcastRoot } from '../../worker/rooms/broadcast/kind';
import { FrameQueue } from '../support/frames';
import { api, env, register } from './helpers';

const RELAYS = 200;
const PER_RELAY = 25;
const KEYS = 10;
const VERSIONS = 10;

async function openOn(relay: number, n: number): Promise<FrameQueue> {
  const request = new Request('https://wavecast.test/ws/broadcast', {
    headers: {
      upgrade: 'websocket',
      'cf-connecting-ip': `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`,
    },
  });
  const res = await broadcast
    .stub(env, String(1000 + relay))
    .fetch(forwardToChannel(request, null));
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`relay ${relay} refused: ${res.status}`);
  ws.accept();
  return new FrameQueue(ws);
}

async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the broadcast tree at 5,000 sockets', () => {
  it('reaches every socket over 200 relays with none missed, doubled or reordered', {
    timeout: 300_000,
  }, async () => {
    const admin = await register('admin');
    const sockets: FrameQueue[] = [];
    for (let r = 0; r < RELAYS; r++) {
      const batch = await Promise.all(
        Array.from({ length: PER_RELAY }, (_, i) => openOn(r, r * PER_RELAY + i)),
      );
      sockets.push(...batch);
    }
    expect(sockets).toHaveLength(RELAYS * PER_RELAY);
    await until(
      'every welcome',
      () => sockets.every((s) => s.received[0]?.type === 'welcome'),
      60_000,
    );
    const attached = await broadcastRoot.room(env).relays();
    expect(attached.filter((name) => Number(name.split(':')[1]) >= 1000)).toHaveLength(RELAYS);

    const res = await api('/api/admin/announcements', {
      method: 'POST',
      token: admin.token,
      json: { message: 'to everyone', level: 'info' },
    });
    expect(res.status).toBe(201);
    const { announcement } = (await res.json()) as { announcement: Announcement };
    const keys = Array.from({ length: KEYS }, (_, k) => `fanout-${k}`);
    for (let v = 1; v <= VERSIONS; v++) {
      for (const key of keys) {
        const set = await api('/api/admin/market', {
          method: 'POST',
          token: admin.token,
          json: { key, value: v, version: v },
        });
        expect(set.status).toBe(200);
      }
    }

    const versionsOf = (s: FrameQueue) => {
      const seen = new Map<string, number[]>();
      for (const f of s.all<{ values: MarketValue[] }>('market.values')) {
        for (const m of f.values) seen.set(m.key, [...(seen.get(m.key) ?? []), m.version]);
      }
      return seen;
    };
    const complete = (s: FrameQueue) =>
      s.received.some((f) => f.type === 'announcement.posted') &&
      keys.every((k) => versionsOf(s).get(k)?.at(-1) === VERSIONS);
    await until('every socket has everything', () => sockets.every(complete), 120_000);

    for (const s of sockets) {
      const posted = s.all<{ announcement: Announcement }>('announcement.posted');
      expect(posted.map((f) => f.announcement.id)).toEqual([announcement.id]);
      const seen = versionsOf(s);
      for (const key of keys) {
        const versions = seen.get(key) ?? [];
        for (let i = 1; i < versions.length; i++) {
          expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);
        }
        expect(versions.at(-1)).toBe(VERSIONS);
      }
    }
    for (const s of sockets) s.close();
  });
});
