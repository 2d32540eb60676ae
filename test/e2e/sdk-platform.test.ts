// The SDK's platform channel against `wrangler dev`: announcements and market values as stores
// that follow the server, a presence watch's status map, and a reconnect that returns to its
// relay and resumes. docs/protocol.md, "Kind: broadcast"; docs/presence.md.
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Announcement, type MarketValue, WavecastClient } from '../../client/sdk';
import { api, baseUrl, connect, register, unique } from './helpers';
import { E2E_SERVER_KEY } from './server';

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const serverApi = <T>(path: string, init: { method?: string; json?: unknown } = {}) =>
  api<T>(`/server/v1${path}`, {
    method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${E2E_SERVER_KEY}` },
    ...(init.json === undefined ? {} : { json: init.json }),
  });

describe('SDK platform channel', () => {
  it('keeps announcements and market values as stores, and resumes on its relay', async () => {
    const sdk = new WavecastClient({ baseUrl: baseUrl(), WebSocket });
    const platform = sdk.platform();
    await until(() => platform.channel.snapshot !== null, 'welcome');
    const seenAnnouncements: Announcement[][] = [];
    platform.announcements.subscribe((list) => seenAnnouncements.push(list));

    const posted = await serverApi<{ announcement: Announcement }>('/announcements', {
      json: { message: unique('SDK notice'), level: 'error' },
    });
    const id = posted.body.announcement.id;
    await until(
      () => platform.announcements.get().some((a) => a.id === id),
      'announcement in store',
    );

    const key = unique('sdk-price');
    const versions: number[] = [];
    platform.marketValue(key).subscribe((v) => {
      if (v) versions.push(v.version);
    });
    for (let v = 1; v <= 20; v++) {
      expect((await serverApi('/market', { json: { key, value: v * 2, version: v } })).status).toBe(
        200,
      );
    }
    await until(() => platform.market.get()[key]?.version === 20, 'latest market value');
    expect((platform.market.get()[key] as MarketValue).value).toBe(40);
    for (let i = 1; i < versions.length; i++)
      expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);

    // A dropped connection comes back to the same relay and resumes its log.
    const relay = platform.relay;
    platform.channel.socket.reconnect();
    await serverApi(`/announcements/${id}`, { method: 'DELETE' });
    await until(
      () => !platform.announcements.get().some((a) => a.id === id),
      'withdrawal in store',
    );
    expect(platform.relay).toBe(relay);

    const brief = await serverApi<{ announcement: Announcement }>('/announcements', {
      json: { message: unique('brief'), expiresInSeconds: 1 },
    });
    await until(
      () => platform.announcements.get().some((a) => a.id === brief.body.announcement.id),
      'brief one',
    );
    await until(
      () => !platform.announcements.get().some((a) => a.id === brief.body.announcement.id),
      'expiry',
      8000,
    );
    expect(seenAnnouncements.length).toBeGreaterThan(2);
    platform.close();
  });

  it('watches users: a live status map per watch that follows their user channels', async () => {
    const [me, a, b] = await Promise.all([register(), register(), register()]);
    const sdk = new WavecastClient({ baseUrl: baseUrl(), token: me.token, WebSocket });
    const platform = sdk.platform();
    const watch = platform.presence.watch([a.id, b.id]);
    await until(
      () => Object.keys(watch.statuses.get()).length === 2 && platform.channel.snapshot !== null,
      'statuses',
    );
    expect(watch.statuses.get()[a.id]).toMatchObject({ online: false });
    const batch = await sdk.presence([a.id, b.id]);
    expect(batch.users[b.id]?.online).toBe(false);
    // `a` opens their user channel: the map follows, and back when they leave.
    const tab = await connect('/ws/me', { token: a.token });
    await until(() => watch.statuses.get()[a.id]?.online === true, 'a online');
    expect(watch.statuses.get()[b.id]?.online).toBe(false);
    tab.close();
    await until(() => watch.statuses.get()[a.id]?.online === false, 'a offline');
    watch.unwatch();
    platform.close();
  });
});
