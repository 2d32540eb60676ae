#!/usr/bin/env node
// Idle connections: how fast N sockets join one channel, what each costs in server memory while
// it idles, and what the idle channel costs in CPU — Wavecast, a bare Durable Object and seed
// 001's Socket.IO server, one after the other. Idle means asleep (DESIGN.md §2): each socket
// only sends the heartbeat `{"type":"ping"}` every `--ping` seconds, as the SDK does (answered by
// the runtime without waking the object; Socket.IO keeps its own ping/pong). See bench/README.md.
import { writeFileSync } from 'node:fs';
import {
  BENCH_ADMIN,
  inBatches,
  machine,
  machineCpuSeconds,
  median,
  parseFlags,
  printTable,
  ratio,
  registerUser,
  round,
  sleep,
} from './lib/common.mjs';
import { makeTarget, TARGET_LABELS, targetList } from './lib/targets.mjs';

const flags = parseFlags(
  process.argv.slice(2),
  {
    sockets: 1000,
    minutes: 1,
    // Seconds between one socket's heartbeats (the SDK's interval).
    ping: 30,
    // Seconds of silence after which Wavecast closes a socket (4408); above `ping`.
    heartbeatTimeout: 75,
    // Seconds between the last socket joining and the memory reading / idle measurement.
    settle: 5,
    // Sockets opening at once.
    parallel: 50,
    runs: 1,
    target: 'all',
    // Wavecast's channel: `comments` (as in the before-numbers) or `stream`.
    kind: 'comments',
    json: '',
    tiny: false,
  },
  { tiny: { sockets: 20, minutes: 1 / 6, ping: 4, settle: 1 } },
);
const names = targetList(flags.target);
const MIB = 2 ** 20;

/** The channel's wake counters (Wavecast's admin stats), or null. */
async function readWakes(target, channelId, token) {
  const kind = flags.kind === 'stream' ? 'stream' : 'comments';
  try {
    const res = await fetch(
      `${target.server.baseUrl}/api/admin/channels/${kind}/${channelId}/stats`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    if (res.status !== 200) return null;
    const body = await res.json();
    return body && typeof body.wakes === 'object' && body.wakes !== null ? body.wakes : null;
  } catch {
    return null;
  }
}

/**
 * end − start for every counter. The counters live in the object's memory: when one went down,
 * the object was evicted (it hibernated) in between, and the end's counters are since it woke.
 */
function difference(start, end) {
  const out = {};
  let evicted = false;
  for (const [key, value] of Object.entries(end ?? {})) {
    if (typeof value !== 'number' || typeof start?.[key] !== 'number') continue;
    if (value < start[key]) evicted = true;
    out[key] = value - start[key];
  }
  return evicted ? { evictedWhileIdle: true, sinceWake: end } : out;
}

async function measure(name, run) {
  const target = makeTarget(name, {
    kind: flags.kind,
    vars: { HEARTBEAT_TIMEOUT_SECONDS: String(flags.heartbeatTimeout) },
  });
  const log = (msg) => console.error(`[idle ${name} run ${run}] ${msg}`);
  const sockets = [];
  const timers = [];
  let pongs = 0;
  let pings = 0;
  await target.start();
  try {
    const admin =
      name === 'wavecast' ? await registerUser(target.server.baseUrl, BENCH_ADMIN) : null;
    const { channelIds } = await target.setup({
      channels: 1,
      publishersPerChannel: 0,
      users: 0,
      run,
    });
    const channelId = channelIds[0];
    const onPong = () => {
      pongs += 1;
    };
    const open = async () => {
      const socket = await target.openIdle(channelId, onPong);
      sockets.push(socket);
      // Like the SDK: a heartbeat every `ping` seconds from the socket's own start.
      timers.push(
        setInterval(() => {
          if (socket.isOpen()) {
            socket.heartbeat();
            pings += 1;
          }
        }, flags.ping * 1000),
      );
    };
    // One socket first, so the channel (object, isolate, room) exists before the baseline
    // memory reading: what follows is the cost of the connections alone.
    await open();
    await sleep(2000);
    const rssBefore = target.rss();

    const connectStart = performance.now();
    await inBatches(flags.sockets, flags.parallel, () => open());
    const connectSeconds = (performance.now() - connectStart) / 1000;
    log(`${flags.sockets} sockets joined in ${round(connectSeconds, 1)} s`);
    await sleep(flags.settle * 1000);
    const rssAfter = target.rss();

    const wakesStart = admin ? await readWakes(target, channelId, admin.token) : null;
    const cpuStart = target.serverCpuSeconds();
    const toolStart = target.toolCpuSeconds();
    const machineStart = machineCpuSeconds();
    const start = performance.now();
    await sleep(flags.minutes * 60_000);
    const minutes = (performance.now() - start) / 60_000;
    const cpu = target.serverCpuSeconds() - cpuStart;
    const toolCpu = target.toolCpuSeconds() - toolStart;
    const machineEnd = machineCpuSeconds();
    const wakesEnd = wakesStart ? await readWakes(target, channelId, admin.token) : null;
    const rssEnd = target.rss();
    const openAtEnd = sockets.filter((s) => s.isOpen()).length;

    const perConnection = (after) => ({
      serverKiB: round((after.server - rssBefore.server) / flags.sockets / 1024, 1),
      treeKiB: round((after.tree - rssBefore.tree) / flags.sockets / 1024, 1),
    });
    const result = {
      target: name,
      run,
      loadAverage: machine().loadAverage,
      sockets: flags.sockets + 1,
      connectSeconds: round(connectSeconds, 2),
      connectsPerSecond: round(flags.sockets / connectSeconds, 0),
      rssMiB: {
        before: { server: round(rssBefore.server / MIB), tree: round(rssBefore.tree / MIB) },
        afterConnect: { server: round(rssAfter.server / MIB), tree: round(rssAfter.tree / MIB) },
        end: { server: round(rssEnd.server / MIB), tree: round(rssEnd.tree / MIB) },
      },
      perConnection: perConnection(rssAfter),
      perConnectionAtEnd: perConnection(rssEnd),
      idleMinutes: round(minutes, 2),
      serverCpuSecondsPerMinute: round(cpu / minutes, 3),
      // wrangler's node process and esbuild's watcher: `wrangler dev` only, not the server.
      toolCpuSecondsPerMinute: round(toolCpu / minutes, 3),
      // Both cores while idling: what else ran on the machine meanwhile.
      machineBusyPercent: round(
        ((machineEnd.busy - machineStart.busy) / (machineEnd.total - machineStart.total)) * 100,
      ),
      socketsOpenAtEnd: openAtEnd,
      heartbeats: { sent: pings, answered: pongs },
      wakes: wakesStart ? difference(wakesStart, wakesEnd) : null,
      closes: { ...target.closes },
    };
    log(
      `${result.connectsPerSecond} connects/s, ${result.perConnection.serverKiB} KiB per connection, ` +
        `${result.serverCpuSecondsPerMinute} CPU s/min idle, ${openAtEnd}/${flags.sockets + 1} open`,
    );
    return result;
  } finally {
    for (const t of timers) clearInterval(t);
    for (const s of sockets) s.close();
    await target.dispose();
  }
}

const results = [];
for (let run = 1; run <= flags.runs; run++) {
  for (const name of names) results.push(await measure(name, run));
}
const summary = {};
for (const name of names) {
  const of = results.filter((r) => r.target === name);
  const pick = (f) => median(of.map(f));
  summary[name] = {
    runs: of.length,
    connectsPerSecond: pick((r) => r.connectsPerSecond),
    perConnectionServerKiB: pick((r) => r.perConnection.serverKiB),
    perConnectionTreeKiB: pick((r) => r.perConnection.treeKiB),
    rssAfterConnectMiB: pick((r) => r.rssMiB.afterConnect.tree),
    serverCpuSecondsPerMinute: pick((r) => r.serverCpuSecondsPerMinute),
    socketsOpenAtEnd: Math.min(...of.map((r) => r.socketsOpenAtEnd)),
    wakes: of[0].wakes,
  };
}
const ratios = {};
for (const base of ['bare', 'socketio']) {
  const w = summary.wavecast;
  const b = summary[base];
  if (!w || !b) continue;
  ratios[base] = {
    connectsPerSecond: ratio(w.connectsPerSecond, b.connectsPerSecond),
    perConnectionServer: ratio(w.perConnectionServerKiB, b.perConnectionServerKiB),
    serverCpuPerMinute: ratio(w.serverCpuSecondsPerMinute, b.serverCpuSecondsPerMinute),
  };
}

console.log(
  `\nidle: ${flags.sockets} sockets joining one channel (${flags.parallel} at a time; Wavecast ${flags.kind}), ` +
    `then ${round(flags.minutes, 2)} min idle with a heartbeat every ${flags.ping} s; ` +
    `median of ${flags.runs} run(s); ${machine().cores} cores\n`,
);
const ratioColumns = ['bare', 'socketio'].filter((b) => ratios[b]);
const header = [
  'metric',
  ...names.map((n) => TARGET_LABELS[n]),
  ...ratioColumns.map((b) => `Wavecast/${TARGET_LABELS[b]}`),
];
const row = (label, f, key) => [
  label,
  ...names.map((n) => f(summary[n])),
  ...ratioColumns.map((b) => (key ? ratios[b][key] : null)),
];
printTable(header, [
  row('connects/s', (s) => s.connectsPerSecond, 'connectsPerSecond'),
  row('server KiB per connection', (s) => s.perConnectionServerKiB, 'perConnectionServer'),
  row('process tree KiB per conn.', (s) => s.perConnectionTreeKiB),
  row('process tree RSS MiB', (s) => s.rssAfterConnectMiB),
  row('idle server CPU s/min', (s) => s.serverCpuSecondsPerMinute, 'serverCpuPerMinute'),
  row('sockets open at end', (s) => s.socketsOpenAtEnd),
]);
if (summary.wavecast) {
  console.log(
    summary.wavecast.wakes
      ? `\nWavecast wake-ups while idle: ${JSON.stringify(summary.wavecast.wakes)}`
      : '\nWavecast wake-ups: n/a (no stats endpoint)',
  );
}
const report = {
  bench: 'idle',
  date: new Date().toISOString(),
  machine: machine(),
  config: {
    sockets: flags.sockets,
    parallel: flags.parallel,
    minutes: round(flags.minutes, 2),
    pingSeconds: flags.ping,
    heartbeatTimeoutSeconds: flags.heartbeatTimeout,
    kind: flags.kind,
    runs: flags.runs,
  },
  summary,
  ratios,
  runs: results,
};
console.log('\nJSON:');
console.log(JSON.stringify(report, null, 2));
if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
