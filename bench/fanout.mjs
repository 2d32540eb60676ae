#!/usr/bin/env node
// Fan-out on one channel: 1,000 watchers of one station's chat, 50 messages a second for 20 s,
// against Wavecast, a bare Durable Object and seed 001's Socket.IO server in the same run.
// The target: p99 publish→delivery under 100 ms. See bench/README.md.
import { runChannelScenario } from './lib/load.mjs';

await runChannelScenario({
  scenario: 'fanout',
  mode: 'rate',
  defaults: { rooms: 1, watchers: 1000, rate: 50, seconds: 20, kind: 'stream' },
  tiny: { watchers: 5, rate: 4, seconds: 2, drain: 10 },
  describe: (c) =>
    `${c.rooms} room × ${c.watchers} watchers (${c.kind}), ${c.rate} posts/s for ${c.seconds} s ` +
    `(${c.publishersPerRoom} publishers; offered ${c.offeredDeliveriesPerSecond} deliveries/s)`,
  checks: (s) => {
    const w = s.wavecast;
    if (!w) return [];
    return [
      {
        target: 'Wavecast p99 under 100 ms',
        met: w.latencyMs.p99 !== null && w.latencyMs.p99 < 100 && w.lost === 0,
        detail: `p99 ${w.latencyMs.p99} ms, ${w.lost} undelivered`,
      },
    ];
  },
});
