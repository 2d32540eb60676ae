#!/usr/bin/env node
// Many rooms, many posts: 100 rooms × 20 watchers, 20 posts a second per room for 20 s (40,000
// deliveries/s offered), against Wavecast's comment rooms, a bare Durable Object and seed 001's
// Socket.IO server in the same run. The target: all 40k deliveries/s delivered with p99
// under 250 ms. See bench/README.md.
import { runChannelScenario } from './lib/load.mjs';

await runChannelScenario({
  scenario: 'rooms',
  mode: 'rate',
  // Comment rooms: a station's chat paces each user (one message per 2 s), so 2,000 posts/s
  // would need thousands of users; comments have only the per-socket frame bucket.
  defaults: { rooms: 100, watchers: 20, rate: 20, seconds: 20, kind: 'comments' },
  tiny: { rooms: 2, watchers: 3, rate: 2, seconds: 2, drain: 10 },
  describe: (c) =>
    `${c.rooms} rooms × ${c.watchers} watchers (${c.kind}), ${c.rate} posts/s per room for ${c.seconds} s ` +
    `(${c.publishersPerRoom} publishers per room; offered ${c.offeredDeliveriesPerSecond} deliveries/s)`,
  checks: (s) => {
    const w = s.wavecast;
    if (!w) return [];
    return [
      {
        target: 'Wavecast delivers all 40k deliveries/s with p99 under 250 ms',
        met: w.keptUp && w.latencyMs.p99 !== null && w.latencyMs.p99 < 250,
        detail: `${w.deliveriesPerSecond}/s, ${w.lost} undelivered, p99 ${w.latencyMs.p99} ms; kept up in every run: ${w.keptUp}`,
      },
    ];
  },
});
