#!/usr/bin/env node
// A burst to one big room: N messages sent as fast as the channel allows (every publisher
// empties its allowance at once) to 1,000 watchers; logical deliveries per second until the last
// one arrives, against Wavecast, a bare Durable Object and seed 001's Socket.IO server in the
// same run. The target: at least Socket.IO's deliveries/s. See bench/README.md.
import { runChannelScenario } from './lib/load.mjs';

await runChannelScenario({
  scenario: 'burst',
  mode: 'burst',
  defaults: { rooms: 1, watchers: 1000, burst: 500, kind: 'stream' },
  tiny: { watchers: 5, burst: 10, drain: 10 },
  describe: (c) =>
    `${c.postsPerRoom} posts at once to ${c.rooms} room × ${c.watchers} watchers (${c.kind}; ` +
    `${c.publishersPerRoom} publishers, each within its allowance)`,
  checks: (s) => {
    const w = s.wavecast;
    const io = s.socketio;
    if (!w || !io) return [];
    return [
      {
        target: "Wavecast burst deliveries/s at least Socket.IO's",
        met: w.lost === 0 && w.deliveriesPerSecond >= io.deliveriesPerSecond,
        detail: `${w.deliveriesPerSecond}/s vs ${io.deliveriesPerSecond}/s; Socket.IO's client CPU ${io.clientCpuPercent} %`,
      },
    ];
  },
});
