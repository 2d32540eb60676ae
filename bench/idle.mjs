#!/usr/bin/env node
// Idle means asleep (DESIGN.md §2): hold many idle sockets on one comments channel, each sending
// only the heartbeat `{"type":"ping"}` every 30 s as the SDK does (answered by the runtime without
// waking the object), and report the server's CPU per minute and, when the core exposes its
// stats, how often the channel's object woke. See bench/README.md.
import { writeFileSync } from 'node:fs';
import {
  BENCH_ADMIN,
  BENCH_SECRET,
  DevServer,
  HEARTBEAT,
  inBatches,
  machine,
  openSocket,
  parseFlags,
  printTable,
  registerUser,
  round,
  serverCpuSeconds,
  sleep,
} from './lib/common.mjs';

const flags = parseFlags(
  process.argv.slice(2),
  {
    sockets: 1000,
    minutes: 5,
    // Seconds between one socket's heartbeats (the SDK's interval).
    ping: 30,
    // Seconds of silence after which the server closes a socket (4408); above `ping`.
    heartbeatTimeout: 75,
    // Seconds between the last socket opening and the start of the measurement.
    settle: 5,
    json: '',
    tiny: false,
  },
  { tiny: { sockets: 20, minutes: 1 / 3, ping: 5, settle: 1 } },
);

const itemId = `idle-${process.pid}-${Date.now().toString(36)}`;
const log = (msg) => console.error(`[idle] ${msg}`);

/** The channel's wake counters, if the core exposes them; null otherwise. */
async function readWakes(server, token) {
  try {
    const res = await fetch(`${server.baseUrl}/api/admin/channels/comments/${itemId}/stats`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (res.status !== 200) return null;
    const body = await res.json();
    return body && typeof body.wakes === 'object' && body.wakes !== null ? body.wakes : null;
  } catch {
    return null;
  }
}

/** end − start for every numeric counter (nested objects included). */
function difference(start, end) {
  const out = {};
  for (const [key, value] of Object.entries(end)) {
    if (typeof value === 'number' && typeof start?.[key] === 'number') {
      out[key] = value - start[key];
    } else if (value && typeof value === 'object') {
      out[key] = difference(start?.[key] ?? {}, value);
    }
  }
  return out;
}

const server = new DevServer({
  name: 'bench-idle',
  vars: {
    JWT_SECRET: BENCH_SECRET,
    ADMIN_EMAILS: BENCH_ADMIN,
    HEARTBEAT_TIMEOUT_SECONDS: String(flags.heartbeatTimeout),
    // All sockets come from one loopback address onto one channel: lift that door limit.
    MAX_CONNECTIONS_PER_ADDRESS_PER_CHANNEL: String(Math.max(500, flags.sockets * 2)),
  },
});
const sockets = [];
const timers = [];
let pongs = 0;
let pings = 0;
const closes = new Map();
try {
  await server.start();
  const admin = await registerUser(server.baseUrl, BENCH_ADMIN);

  const connectStart = performance.now();
  await inBatches(flags.sockets, 50, async () => {
    const ws = await openSocket(`${server.wsBase}/ws/comments/${itemId}`);
    ws.on('message', (data) => {
      if (data.indexOf('"type":"pong"') >= 0) pongs += 1;
    });
    ws.on('close', (code) => closes.set(code, (closes.get(code) ?? 0) + 1));
    ws.on('error', () => {});
    sockets.push(ws);
    // Like the SDK: a heartbeat every `ping` seconds from the socket's own start.
    timers.push(
      setInterval(() => {
        if (ws.readyState === ws.OPEN) {
          ws.send(HEARTBEAT);
          pings += 1;
        }
      }, flags.ping * 1000),
    );
  });
  log(`${sockets.length} sockets open in ${round((performance.now() - connectStart) / 1000)} s`);
  // Let the joins settle (welcomes, the first alarm) before measuring.
  await sleep(flags.settle * 1000);

  const wakesStart = await readWakes(server, admin.token);
  const totalMs = flags.minutes * 60_000;
  const stepMs = Math.min(60_000, totalMs);
  const minutes = [];
  const start = performance.now();
  const cpuStart = serverCpuSeconds(server);
  const groupStart = server.cpuSeconds();
  let cpuBefore = cpuStart;
  let at = start;
  while (at - start < totalMs - 1) {
    const until = Math.min(start + totalMs, at + stepMs);
    await sleep(until - performance.now());
    const cpu = serverCpuSeconds(server);
    const now = performance.now();
    const spanMinutes = (now - at) / 60_000;
    minutes.push({
      fromMinute: round((at - start) / 60_000, 2),
      toMinute: round((now - start) / 60_000, 2),
      cpuSeconds: round(cpu - cpuBefore, 3),
      cpuSecondsPerMinute: round((cpu - cpuBefore) / spanMinutes, 3),
      cpuPercent: round(((cpu - cpuBefore) / ((now - at) / 1000)) * 100, 2),
    });
    cpuBefore = cpu;
    at = now;
  }
  const elapsedMinutes = (performance.now() - start) / 60_000;
  const wakesEnd = wakesStart ? await readWakes(server, admin.token) : null;
  const open = sockets.filter((ws) => ws.readyState === ws.OPEN).length;
  const cpuTotal = serverCpuSeconds(server) - cpuStart;
  const wranglerCpu = server.cpuSeconds() - groupStart - cpuTotal;

  const report = {
    bench: 'idle',
    date: new Date().toISOString(),
    machine: machine(),
    config: {
      sockets: flags.sockets,
      minutes: round(flags.minutes, 2),
      pingSeconds: flags.ping,
      heartbeatTimeoutSeconds: flags.heartbeatTimeout,
    },
    socketsOpenAtEnd: open,
    closes: Object.fromEntries(closes),
    heartbeats: { sent: pings, answered: pongs },
    serverCpuSeconds: round(cpuTotal, 3),
    serverCpuSecondsPerMinute: round(cpuTotal / elapsedMinutes, 3),
    // wrangler's node process and esbuild's watcher: `wrangler dev` only, not the server.
    wranglerCpuSeconds: round(wranglerCpu, 3),
    minutes,
    wakes: wakesStart
      ? { start: wakesStart, end: wakesEnd, during: difference(wakesStart, wakesEnd ?? {}) }
      : null,
  };

  console.log(
    `\nidle: ${flags.sockets} sockets on one comments channel for ${round(flags.minutes, 2)} min, ` +
      `a heartbeat every ${flags.ping} s; ${machine().cores} cores\n`,
  );
  printTable(
    ['minutes', 'workerd CPU s', 'CPU s/min', 'CPU %'],
    minutes.map((m) => [
      `${m.fromMinute}–${m.toMinute}`,
      m.cpuSeconds,
      m.cpuSecondsPerMinute,
      m.cpuPercent,
    ]),
  );
  console.log(
    `\ntotal: ${report.serverCpuSeconds} workerd CPU s (${report.serverCpuSecondsPerMinute} per minute; wrangler's own processes ${report.wranglerCpuSeconds} s); ` +
      `sockets open at the end: ${open}/${flags.sockets}; heartbeats answered ${pongs}/${pings}`,
  );
  if (closes.size > 0) console.log(`closed during the run: ${JSON.stringify(report.closes)}`);
  console.log(
    report.wakes
      ? `wake-ups during the run: ${JSON.stringify(report.wakes.during)}`
      : 'wake-ups: n/a (no stats endpoint)',
  );
  console.log('\nJSON:');
  console.log(JSON.stringify(report, null, 2));
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  for (const t of timers) clearInterval(t);
  for (const ws of sockets) ws.terminate();
  await server.dispose();
}
