#!/usr/bin/env node
// Many rooms, many posts: N comment rooms × W watcher sockets, each room receiving R posts/s for
// S seconds from signed-in publisher sockets. Measures logical deliveries/s (comment frames
// received by watchers), publish→delivery latency, lost deliveries and the server's CPU per
// delivery, against Wavecast and, in the same run, a bare Durable Object that only broadcasts
// (bench/bare/). Each server runs only while it is measured. See bench/README.md.
import { writeFileSync } from 'node:fs';
import {
  BENCH_ADMIN,
  BENCH_SECRET,
  clientCpuSeconds,
  DevServer,
  inBatches,
  machine,
  median,
  openSocket,
  parseFlags,
  percentile,
  printTable,
  registerUsers,
  round,
  serverCpuSeconds,
  sleep,
} from './lib/common.mjs';

const flags = parseFlags(
  process.argv.slice(2),
  {
    rooms: 100,
    watchers: 20,
    rate: 20,
    seconds: 20,
    // Publisher sockets per room; 0 = one per 5 posts/s (the socket frame bucket is 10/s).
    publishers: 0,
    // Signed-in users shared by the publisher sockets (registration is PBKDF2: slow on purpose).
    users: 50,
    // Longest wait after the last post for deliveries still in flight.
    drain: 30,
    runs: 1,
    target: 'both',
    json: '',
    tiny: false,
  },
  { tiny: { rooms: 2, watchers: 3, rate: 2, seconds: 2, users: 2, drain: 10 } },
);
const publishersPerRoom = flags.publishers || Math.max(1, Math.ceil(flags.rate / 5));
const targets = flags.target === 'both' ? ['wavecast', 'bare'] : [flags.target];
for (const t of targets) {
  if (t !== 'wavecast' && t !== 'bare') throw new Error(`--target must be wavecast, bare or both`);
}

/** A client this busy (percent of one core) is the limit, not the server. */
const CLIENT_LIMIT_PERCENT = 90;
/** The drain ends early once nothing has arrived for this long. */
const QUIET_MS = 10_000;
const MARKER = 'bench|';
const FILLER = ' the quick brown fox jumps over the lazy dog, again and again';

const TARGETS = {
  wavecast: {
    server: () =>
      new DevServer({
        name: 'bench-rooms',
        vars: { JWT_SECRET: BENCH_SECRET, ADMIN_EMAILS: BENCH_ADMIN },
      }),
    path: (room) => `/ws/comments/${room}`,
    needsUsers: true,
  },
  bare: {
    server: () =>
      new DevServer({ name: 'bench-bare', config: 'bench/bare/wrangler.toml', migrate: false }),
    path: (room) => `/ws/rooms/${room}`,
    needsUsers: false,
  },
};

async function measure(kind, run) {
  const target = TARGETS[kind];
  const server = target.server();
  const log = (msg) => console.error(`[${kind} run ${run}] ${msg}`);
  await server.start();
  const sockets = [];
  try {
    const users = target.needsUsers
      ? await registerUsers(server.baseUrl, Math.min(flags.users, flags.rooms * publishersPerRoom))
      : [];
    const roomIds = Array.from(
      { length: flags.rooms },
      (_, r) => `bench-${process.pid}-${run}-${r}`,
    );
    const postsPerRoom = Math.round(flags.rate * flags.seconds);
    const totalPosts = postsPerRoom * flags.rooms;
    const received = new Uint16Array(totalPosts);
    const sentAt = new Float64Array(totalPosts);
    let latencies = new Float64Array(Math.max(1024, totalPosts * flags.watchers));
    let delivered = 0;
    let duplicates = 0;
    let lastDeliveryAt = 0;
    let acked = 0;
    let rejected = 0;
    const closes = new Map();

    const onWatcherFrame = (data) => {
      const at = data.indexOf(MARKER);
      if (at < 0) return;
      const now = performance.now();
      const [, index] = data.toString('latin1', at, at + 24).split('|');
      const post = Number(index);
      if (received[post] >= flags.watchers) {
        duplicates += 1;
        return;
      }
      received[post] += 1;
      if (delivered === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[delivered++] = now - sentAt[post];
      lastDeliveryAt = now;
    };
    const errors = {};
    const onPublisherFrame = (data) => {
      if (data.indexOf('"type":"ack"') >= 0) acked += 1;
      else if (data.indexOf('"type":"error"') >= 0) {
        rejected += 1;
        const code = JSON.parse(data.toString()).code ?? 'unknown';
        errors[code] = (errors[code] ?? 0) + 1;
      }
    };
    const track = (ws, role) => {
      sockets.push(ws);
      ws.on('close', (code) => {
        const key = `${role} ${code}`;
        closes.set(key, (closes.get(key) ?? 0) + 1);
      });
      ws.on('error', () => {});
    };

    // Watchers first (anonymous, read-only), then the publishers of each room.
    const connectStart = performance.now();
    const watcherCount = flags.rooms * flags.watchers;
    await inBatches(watcherCount, 50, async (i) => {
      const room = roomIds[Math.floor(i / flags.watchers)];
      const ws = await openSocket(`${server.wsBase}${target.path(room)}`);
      ws.on('message', onWatcherFrame);
      track(ws, 'watcher');
    });
    const publishers = await inBatches(flags.rooms * publishersPerRoom, 50, async (i) => {
      const room = roomIds[Math.floor(i / publishersPerRoom)];
      const user = users[i % Math.max(1, users.length)];
      const query = user ? `?token=${encodeURIComponent(user.token)}` : '';
      const ws = await openSocket(`${server.wsBase}${target.path(room)}${query}`);
      ws.on('message', onPublisherFrame);
      track(ws, 'publisher');
      return ws;
    });
    log(
      `${sockets.length} sockets open in ${round((performance.now() - connectStart) / 1000)} s; load for ${flags.seconds} s`,
    );
    await sleep(1000);

    // The load: each room sends on its own phase so the rooms do not all fire at once.
    const sent = new Uint32Array(flags.rooms);
    let sentTotal = 0;
    const interval = 1000 / flags.rate;
    const cpuServer0 = serverCpuSeconds(server);
    const cpuGroup0 = server.cpuSeconds();
    const cpuClient0 = clientCpuSeconds();
    const start = performance.now();
    while (sentTotal < totalPosts) {
      const elapsed = performance.now() - start;
      for (let r = 0; r < flags.rooms; r++) {
        const phase = (r / flags.rooms) * interval;
        const due = Math.min(postsPerRoom, Math.floor((elapsed - phase) / interval) + 1);
        while (sent[r] < due) {
          const n = sent[r]++;
          const post = r * postsPerRoom + n;
          const ws = publishers[r * publishersPerRoom + (n % publishersPerRoom)];
          sentAt[post] = performance.now();
          const body = `${MARKER}${post}|${FILLER}`;
          if (ws.readyState === ws.OPEN) {
            ws.send(JSON.stringify({ type: 'comment.create', id: `p${post}`, body }));
          }
          sentTotal += 1;
        }
      }
      await sleep(5);
    }
    const sendEnd = performance.now();

    const expected = () => (sentTotal - rejected) * flags.watchers;
    const drainDeadline = sendEnd + flags.drain * 1000;
    for (;;) {
      const now = performance.now();
      if (delivered >= expected() || now > drainDeadline) break;
      if (now - Math.max(lastDeliveryAt, sendEnd) > QUIET_MS) break;
      await sleep(50);
    }
    const end = performance.now();
    const cpuServer = serverCpuSeconds(server) - cpuServer0;
    const cpuWrangler = server.cpuSeconds() - cpuGroup0 - cpuServer;
    const cpuClient = clientCpuSeconds() - cpuClient0;

    const window = (Math.max(lastDeliveryAt, sendEnd) - start) / 1000;
    const wall = (end - start) / 1000;
    const sorted = latencies.subarray(0, delivered).sort();
    const clientPercent = (cpuClient / wall) * 100;
    const result = {
      target: kind,
      run,
      posts: sentTotal,
      acked: target.needsUsers ? acked : null,
      rejected,
      errors,
      expectedDeliveries: expected(),
      delivered,
      lost: Math.max(0, expected() - delivered),
      duplicates,
      offeredDeliveriesPerSecond: flags.rooms * flags.rate * flags.watchers,
      deliveriesPerSecond: round(delivered / window, 0),
      latencyMs: {
        p50: round(percentile(sorted, 50)),
        p95: round(percentile(sorted, 95)),
        p99: round(percentile(sorted, 99)),
        max: round(sorted.at(-1) ?? null),
      },
      seconds: { load: round((sendEnd - start) / 1000, 2), delivery: round(window, 2) },
      serverCpuSeconds: round(cpuServer, 2),
      serverCpuPercent: round((cpuServer / wall) * 100),
      // wrangler's node process and esbuild's watcher: `wrangler dev` only, not the server.
      wranglerCpuSeconds: round(cpuWrangler, 2),
      serverCpuMicrosPerDelivery: delivered ? round((cpuServer * 1e6) / delivered) : null,
      clientCpuPercent: round(clientPercent),
      clientLimited: clientPercent >= CLIENT_LIMIT_PERCENT,
      limitedBy: '',
      closes: Object.fromEntries(closes),
    };
    const keptUp = delivered / window >= 0.95 * result.offeredDeliveriesPerSecond && !result.lost;
    result.limitedBy = keptUp ? 'none (kept up)' : result.clientLimited ? 'load client' : 'server';
    log(
      `${delivered}/${expected()} delivered, ${result.deliveriesPerSecond}/s, p99 ${result.latencyMs.p99} ms`,
    );
    return result;
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.dispose();
  }
}

function summarise(results, kind) {
  const of = results.filter((r) => r.target === kind);
  if (of.length === 0) return null;
  const pick = (f) => median(of.map(f));
  return {
    runs: of.length,
    deliveriesPerSecond: pick((r) => r.deliveriesPerSecond),
    latencyMs: {
      p50: pick((r) => r.latencyMs.p50),
      p95: pick((r) => r.latencyMs.p95),
      p99: pick((r) => r.latencyMs.p99),
    },
    lost: pick((r) => r.lost),
    rejected: pick((r) => r.rejected),
    serverCpuMicrosPerDelivery: pick((r) => r.serverCpuMicrosPerDelivery),
    serverCpuPercent: pick((r) => r.serverCpuPercent),
    clientCpuPercent: pick((r) => r.clientCpuPercent),
    limitedBy: [...new Set(of.map((r) => r.limitedBy))].join(' / '),
  };
}

const ratio = (a, b) => (a === null || b === null || b === 0 ? null : round(a / b, 2));

const results = [];
for (let run = 1; run <= flags.runs; run++) {
  for (const kind of targets) results.push(await measure(kind, run));
}
const summary = { wavecast: summarise(results, 'wavecast'), bare: summarise(results, 'bare') };
const w = summary.wavecast;
const b = summary.bare;
const ratios =
  w && b
    ? {
        deliveriesPerSecond: ratio(w.deliveriesPerSecond, b.deliveriesPerSecond),
        serverCpuPerDelivery: ratio(w.serverCpuMicrosPerDelivery, b.serverCpuMicrosPerDelivery),
        p99: ratio(w.latencyMs.p99, b.latencyMs.p99),
      }
    : null;

const config = {
  rooms: flags.rooms,
  watchers: flags.watchers,
  rate: flags.rate,
  seconds: flags.seconds,
  publishersPerRoom,
  users: flags.users,
  runs: flags.runs,
  offeredDeliveriesPerSecond: flags.rooms * flags.rate * flags.watchers,
};
const cell = (s, f) => (s ? f(s) : null);
console.log(
  `\nrooms: ${config.rooms} rooms × ${config.watchers} watchers, ${config.rate} posts/s per room for ${config.seconds} s ` +
    `(${config.publishersPerRoom} publishers per room; offered ${config.offeredDeliveriesPerSecond} deliveries/s); ` +
    `median of ${flags.runs} run(s); ${machine().cores} cores\n`,
);
printTable(
  ['metric', 'wavecast', 'bare DO', 'wavecast/bare'],
  [
    [
      'deliveries/s',
      cell(w, (s) => s.deliveriesPerSecond),
      cell(b, (s) => s.deliveriesPerSecond),
      ratios?.deliveriesPerSecond ?? null,
    ],
    ['latency p50 ms', cell(w, (s) => s.latencyMs.p50), cell(b, (s) => s.latencyMs.p50), null],
    ['latency p95 ms', cell(w, (s) => s.latencyMs.p95), cell(b, (s) => s.latencyMs.p95), null],
    [
      'latency p99 ms',
      cell(w, (s) => s.latencyMs.p99),
      cell(b, (s) => s.latencyMs.p99),
      ratios?.p99 ?? null,
    ],
    ['undelivered at end', cell(w, (s) => s.lost), cell(b, (s) => s.lost), null],
    ['rejected posts', cell(w, (s) => s.rejected), cell(b, (s) => s.rejected), null],
    [
      'workerd CPU µs/delivery',
      cell(w, (s) => s.serverCpuMicrosPerDelivery),
      cell(b, (s) => s.serverCpuMicrosPerDelivery),
      ratios?.serverCpuPerDelivery ?? null,
    ],
    ['workerd CPU %', cell(w, (s) => s.serverCpuPercent), cell(b, (s) => s.serverCpuPercent), null],
    ['client CPU %', cell(w, (s) => s.clientCpuPercent), cell(b, (s) => s.clientCpuPercent), null],
    ['limited by', cell(w, (s) => s.limitedBy), cell(b, (s) => s.limitedBy), null],
  ],
);
const report = {
  bench: 'rooms',
  date: new Date().toISOString(),
  machine: machine(),
  config,
  summary,
  ratios,
  runs: results,
};
console.log('\nJSON:');
console.log(JSON.stringify(report, null, 2));
if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
