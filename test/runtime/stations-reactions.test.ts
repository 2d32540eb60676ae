// Reactions (likes, emoji): an ephemeral lane, throttled per user, summed per window and
// broadcast as counts; never one frame per tap, never in the sequence log.
import { describe, expect, it } from 'vitest';
import type { AckFrame, ErrorFrame } from '../../worker/protocol/core';
import type { ReactionsFrame } from '../../worker/protocol/stream';
import type { FrameQueue } from '../support/frames';
import { register } from './helpers';
import { closeAll, createStation, goLive, listen } from './station-fixtures';

async function liveStation() {
  const owner = await register('station_owner');
  const station = await createStation(owner);
  await goLive(owner, station.id);
  return station;
}

/** Sums `reactions` frames until the totals match `want`. */
async function totalsReach(socket: FrameQueue, want: Record<string, number>) {
  const totals: Record<string, number> = {};
  const done = () => Object.entries(want).every(([emoji, n]) => totals[emoji] === n);
  while (!done()) {
    const frame = await socket.next<ReactionsFrame>('reactions');
    for (const [emoji, n] of Object.entries(frame.counts))
      totals[emoji] = (totals[emoji] ?? 0) + (n ?? 0);
  }
  return totals;
}

describe('reactions', () => {
  it('sums taps from many users into counts per emoji, a frame per window rather than per tap', async () => {
    const station = await liveStation();
    const users = await Promise.all(Array.from({ length: 8 }, () => register()));
    const watcher = await listen(station.id);
    const tappers = await Promise.all(users.map((u) => listen(station.id, u.token)));
    tappers.forEach((t, i) => {
      t.socket.send({ type: 'reaction', id: 'tap', emoji: i < 5 ? '❤️' : '🔥' });
    });
    for (const t of tappers) {
      expect(await t.socket.next<AckFrame>('ack')).toMatchObject({ result: { counted: true } });
    }
    const totals = await totalsReach(watcher.socket, { '❤️': 5, '🔥': 3 });
    expect(totals).toEqual({ '❤️': 5, '🔥': 3 });
    const frames = watcher.socket.all('reactions');
    expect(frames.length).toBeLessThanOrEqual(2);
    expect(frames[0]).toMatchObject({ stationId: station.id, windowMs: 1000 });
    await closeAll([watcher.socket, ...tappers.map((t) => t.socket)]);
  });

  it('throttles each user: taps faster than the interval are acknowledged but not counted', async () => {
    const station = await liveStation();
    const user = await register();
    const watcher = await listen(station.id);
    const tapper = await listen(station.id, user.token);
    for (let i = 0; i < 10; i++) tapper.socket.send({ type: 'reaction', id: `t${i}`, emoji: '👏' });
    const acks = [];
    for (let i = 0; i < 10; i++)
      acks.push(await tapper.socket.next<AckFrame<{ counted: boolean }>>('ack'));
    const counted = acks.filter((a) => a.result?.counted).length;
    expect(counted).toBeGreaterThanOrEqual(1);
    expect(counted).toBeLessThan(10);
    expect(await totalsReach(watcher.socket, { '👏': counted })).toEqual({ '👏': counted });
    await closeAll([watcher.socket, tapper.socket]);
  });

  it('refuses anonymous taps with auth_required and unknown emoji with invalid_frame', async () => {
    const station = await liveStation();
    const user = await register();
    const anon = await listen(station.id);
    anon.socket.send({ type: 'reaction', id: 'a', emoji: '❤️' });
    expect(await anon.socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'a',
      code: 'auth_required',
    });
    const signed = await listen(station.id, user.token);
    signed.socket.send({ type: 'reaction', id: 'b', emoji: '💩' });
    expect(await signed.socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'b',
      code: 'invalid_frame',
    });
    await closeAll([anon.socket, signed.socket]);
  });

  it('keeps reactions out of the sequence log', async () => {
    const station = await liveStation();
    const user = await register();
    const first = await listen(station.id, user.token);
    first.socket.send({ type: 'reaction', emoji: '🎉' });
    await first.socket.next('reactions');
    const later = await listen(station.id, undefined, {
      since: first.welcome.seq,
      epoch: first.welcome.epoch,
    });
    expect(later.welcome.seq).toBe(first.welcome.seq);
    expect(later.welcome.recovery.missed).toBe(0);
    await closeAll([first.socket, later.socket]);
  });
});
