// The SDK as a package: it imports by its name (`@wavecast/sdk`, the built ESM and its exports
// map), its browser bundle holds no server code and no schema library, reconnects back off with
// jitter, connection states are events, the token is read (async) on every reconnect, and the
// offline queue is bounded. Against `wrangler dev` where a server is needed.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { backoffDelay, type ChannelState, WavecastClient } from '../../client/sdk';
import { baseUrl, register, unique } from './helpers';

const sdkDir = fileURLToPath(new URL('../../client/sdk', import.meta.url));

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the SDK package', () => {
  it('imports by its package name from the built ESM (npm run build:sdk)', async () => {
    expect(existsSync(`${sdkDir}/dist/index.js`)).toBe(true);
    expect(existsSync(`${sdkDir}/dist/types/client/sdk/index.d.ts`)).toBe(true);
    const pkg = await import('@wavecast/sdk');
    expect(typeof pkg.WavecastClient).toBe('function');
    expect(typeof pkg.Channel).toBe('function');
    const stories = await import('@wavecast/sdk/stories');
    expect(typeof stories.StoryDocument).toBe('function');
    const react = await import('@wavecast/sdk/react');
    expect(typeof react.useChannel).toBe('function');
    expect(typeof react.useConnectionState).toBe('function');
    expect(typeof react.useUnreadCount).toBe('function');
    expect(typeof react.useBalance).toBe('function');
  });

  it('bundles for the browser without zod, drizzle, hono or any worker file but the wire values', async () => {
    const out = await build({
      stdin: {
        contents: "export * from './index'; export * from './stories';",
        resolveDir: sdkDir,
        loader: 'ts',
      },
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(out.metafile.inputs);
    expect(inputs.filter((f) => /node_modules\/(zod|drizzle-orm|hono)\//.test(f))).toEqual([]);
    expect(inputs.filter((f) => f.includes('worker/')).sort()).toEqual([
      'worker/protocol/story-wire.ts',
      'worker/protocol/wire.ts',
    ]);
  });

  it('backs off exponentially with jitter, capped, so clients do not return in lockstep', () => {
    expect(backoffDelay(0, 500, 10_000)).toBe(0);
    expect(backoffDelay(1, 500, 10_000, () => 0)).toBe(250);
    expect(backoffDelay(1, 500, 10_000, () => 1)).toBe(500);
    expect(backoffDelay(4, 500, 10_000, () => 0.5)).toBe(3000);
    expect(backoffDelay(20, 500, 10_000, () => 1)).toBe(10_000);
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(5, 500, 10_000)));
    expect(spread.size).toBeGreaterThan(10);
    for (const d of spread) expect(d >= 4000 && d <= 8000).toBe(true);
  });

  it('reports state changes as events and reads an async token on every reconnect', async () => {
    const owner = await register('station_owner');
    const fresh = await register('listener', 'Rotating');
    let reads = 0;
    const sdk = new WavecastClient({
      baseUrl: baseUrl(),
      WebSocket,
      token: async () => {
        reads += 1;
        await new Promise((r) => setTimeout(r, 5));
        return fresh.token;
      },
    });
    const setup = new WavecastClient({ baseUrl: baseUrl(), token: owner.token, WebSocket });
    const { station } = await setup.request<{ station: { id: string } }>('POST', '/api/stations', {
      name: unique('State FM'),
    });
    const channel = sdk.station(station.id, {
      minReconnectionDelay: 50,
      maxReconnectionDelay: 200,
    });
    const states: ChannelState[] = [];
    const clientStates: string[] = [];
    channel.onStateChange((s) => states.push(s));
    sdk.onConnectionState((s) => clientStates.push(s));
    await until(() => channel.snapshot !== null, 'welcome');
    expect(channel.connectionId).not.toBeNull();
    expect(reads).toBe(1);
    const firstConnection = channel.connectionId;

    // The server drops the socket: reconnecting, then open again, with the token read again.
    channel.socket.reconnect(4500, 'restart');
    await until(() => channel.connectionId !== firstConnection && channel.state === 'open', 'back');
    expect(reads).toBe(2);
    expect(states).toEqual(['open', 'reconnecting', 'open']);
    expect(clientStates).toContain('reconnecting');
    expect(sdk.connectionState).toBe('open');
    channel.close();
    expect(states.at(-1)).toBe('closed');
  });

  it('holds at most offlineQueueSize frames while disconnected, oldest dropped, and sends them on reconnect', async () => {
    const owner = await register('station_owner');
    const fan = await register('listener', 'Queued');
    const setup = new WavecastClient({ baseUrl: baseUrl(), token: owner.token, WebSocket });
    const { station } = await setup.request<{ station: { id: string } }>('POST', '/api/stations', {
      name: unique('Queue FM'),
    });
    const ownerChannel = setup.station(station.id);
    await until(() => ownerChannel.snapshot !== null, 'owner welcome');
    await ownerChannel.request({ type: 'stream.start', showTitle: 'Queue show' });
    const heard: string[] = [];
    ownerChannel.on('chat.message', (f) => heard.push(f.message.body));

    const sdk = new WavecastClient({ baseUrl: baseUrl(), token: fan.token, WebSocket });
    const channel = sdk.station(station.id, { offlineQueueSize: 3, maxPendingRequests: 2 });
    await until(() => channel.state === 'open', 'open');
    channel.socket.close(1000, 'going offline');
    await until(() => channel.state !== 'open', 'closed');
    for (let i = 0; i < 5; i++) channel.send({ type: 'chat.send', body: `queued ${i}` });
    expect(channel.queued).toBe(3);
    // Requests wait too, up to maxPendingRequests; one more is refused at once.
    const waiting = [
      channel.request({ type: 'chat.send', body: 'one' }),
      channel.request({ type: 'chat.send', body: 'two' }),
    ];
    await expect(channel.request({ type: 'chat.send', body: 'three' })).rejects.toMatchObject({
      code: 'queue_full',
    });
    channel.socket.reconnect();
    await Promise.all(waiting);
    expect(channel.queued).toBe(0);
    await until(() => heard.length === 5, 'three queued frames and two requests');
    expect(heard).toEqual(['queued 2', 'queued 3', 'queued 4', 'one', 'two']);
    channel.close();
    ownerChannel.close();
  });
});
