// The SDK's kind helpers against `wrangler dev`: lobby, station and event channels over
// partysocket, with typed frames, acks by request id, and REST in between.
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Channel, WavecastClient } from '../../client/sdk';
import { baseUrl, register, unique } from './helpers';

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function record<F extends { type: string }>(channel: Channel<F>): F[] {
  const frames: F[] = [];
  channel.on('*', (f) => frames.push(f as F));
  return frames;
}

describe('SDK kind helpers', () => {
  it('follows a station going live in the lobby, chats on it, and watches an event’s seats', async () => {
    const [owner, organiser, fan] = await Promise.all([
      register('station_owner'),
      register('organiser'),
      register('listener', 'Fan'),
    ]);
    const ownerSdk = new WavecastClient({ baseUrl: baseUrl(), token: owner.token, WebSocket });
    const fanSdk = new WavecastClient({ baseUrl: baseUrl(), token: fan.token, WebSocket });
    const anonSdk = new WavecastClient({ baseUrl: baseUrl(), WebSocket });

    // Anonymous lobby: sees the station go live.
    const lobby = anonSdk.lobby();
    const lobbyFrames = record(lobby);
    await until(() => lobby.snapshot !== null, 'lobby welcome');
    const { station } = await ownerSdk.request<{ station: { id: string } }>(
      'POST',
      '/api/stations',
      {
        name: unique('SDK FM'),
      },
    );
    const ownerChannel = ownerSdk.station(station.id);
    await until(() => ownerChannel.snapshot !== null, 'owner welcome');
    const started = await ownerChannel.request({ type: 'stream.start', showTitle: 'SDK Show' });
    expect(started.seq).toBeGreaterThan(0);
    await until(
      () =>
        lobbyFrames.some((f) => f.type === 'station.live' && f.station.stationId === station.id),
      'station.live in the lobby',
    );

    // A signed-in listener chats; the owner's channel gets it with the same seq as the ack.
    const fanChannel = fanSdk.station(station.id);
    const ownerFrames = record(ownerChannel);
    await until(() => fanChannel.snapshot !== null, 'fan welcome');
    const sent = await fanChannel.request<{ message: { id: string } }>({
      type: 'chat.send',
      body: 'hello from the SDK',
    });
    await until(
      () => ownerFrames.some((f) => f.type === 'chat.message' && f.seq === sent.seq),
      'chat at the owner',
    );
    // The SDK surfaces refusals as RequestError with the server's code.
    const anonChannel = anonSdk.station(station.id);
    await until(() => anonChannel.snapshot !== null, 'anonymous welcome');
    await expect(
      anonChannel.request({ type: 'chat.send', body: 'let me in' }),
    ).rejects.toMatchObject({
      code: 'auth_required',
    });

    // Events: a watcher on the SDK sees availableSeats drop after a REST booking.
    const orgSdk = new WavecastClient({ baseUrl: baseUrl(), token: organiser.token, WebSocket });
    const { event } = await orgSdk.request<{ event: { id: string } }>('POST', '/api/events', {
      title: 'SDK night',
      venue: 'Loopback Hall',
      startsAt: Date.now() + 86_400_000,
      capacity: 5,
    });
    const watcher = anonSdk.event(event.id);
    const watched = record(watcher);
    await until(() => watcher.snapshot !== null, 'event welcome');
    expect(watcher.snapshot?.availableSeats).toBe(5);
    await fanSdk.request(
      'POST',
      '/api/bookings',
      { eventId: event.id, quantity: 2 },
      { 'idempotency-key': unique('k') },
    );
    await until(
      () => watched.some((f) => f.type === 'booking.created' && f.availableSeats === 3),
      'booking.created with 3 seats left',
    );

    await ownerChannel.request({ type: 'stream.stop' });
    await until(
      () => lobbyFrames.some((f) => f.type === 'station.offline' && f.stationId === station.id),
      'station.offline in the lobby',
    );
    for (const c of [lobby, ownerChannel, fanChannel, anonChannel, watcher]) c.close();
  });
});
