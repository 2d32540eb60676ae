// Booking throughput on one event through `wrangler dev`: confirmed bookings per second and
// latency percentiles with a fixed number of requests in flight, while watcher sockets check that
// every `booking.created` reaches them in `seq` order. Self-contained: it starts its own
// `wrangler dev` on a free loopback port with a fresh state folder and stops it (by process
// group) at the end.
//
//   npm run bench:bookings -- [--seconds 10] [--inflight 50,200] [--watchers 20] [--users 2000]
//                               [--keys both|with|without] [--warmup 2] [--json]
//
// (Through npm, so the Node that wrangler needs runs it.)
//
// Before the scenarios every user books once with a key on a warm-up event: the first keyed
// booking that reaches each key claim shard makes it read its users' key history from D1, once
// ever (docs/bookings.md), a one-time cost that this first pass reports on its own. Each scenario
// then runs `--warmup` seconds unmeasured on its own event before its measured window. The
// `/health` line is the ceiling of the whole stack (client, wrangler dev's proxy, the worker) on
// this machine at that moment: no booking can go faster than it.
//
// Users are written straight into the local D1 before the server starts and their tokens are
// signed with the bench's own JWT secret: registering thousands of users through the API would
// take minutes (PBKDF2, and 300 registrations a minute per address). REST writes are limited to
// 120 a minute per user (wrangler.toml `[[ratelimits]]`), so bookings are spread over enough
// users that none comes near it.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '50,200' },
    watchers: { type: 'string', default: '20' },
    users: { type: 'string', default: '2000' },
    keys: { type: 'string', default: 'both' },
    warmup: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const WARMUP_SECONDS = Number(args.warmup);
const IN_FLIGHT = args.inflight.split(',').map(Number);
const WATCHERS = Number(args.watchers);
const USERS = Number(args.users);
const KEY_MODES = args.keys === 'both' ? [true, false] : [args.keys === 'with'];
const SECRET = `bench-secret-${randomUUID()}`;
const ROOT = resolve(import.meta.dirname, '..');
const WRANGLER = join(ROOT, 'node_modules/wrangler/bin/wrangler.js');

const log = (...a) => {
  if (!args.json) console.log(...a);
};

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const b64url = (data) => Buffer.from(data).toString('base64url');

/** An HS256 token the worker accepts (worker/auth/tokens.ts). */
function tokenFor(user) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(
    JSON.stringify({ sub: user.id, name: user.name, role: user.role, iat: now, exp: now + 3600 }),
  );
  const signature = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

function makeUsers(state) {
  const users = [{ id: randomUUID(), name: 'Bench organiser', role: 'organiser' }];
  for (let i = 0; i < USERS; i++) users.push({ id: randomUUID(), name: `b${i}`, role: 'listener' });
  const now = Date.now();
  const rows = users.map(
    (u) => `('${u.id}', '${u.id}@bench.test', 'x', '${u.name}', '${u.role}', ${now})`,
  );
  const sql = [];
  for (let i = 0; i < rows.length; i += 500) {
    sql.push(
      `INSERT INTO users (id, email, password_hash, display_name, role, created_at) VALUES ${rows
        .slice(i, i + 500)
        .join(',\n')};`,
    );
  }
  const file = join(state, 'users.sql');
  writeFileSync(file, sql.join('\n'));
  wrangler(['d1', 'execute', 'DB', '--local', '--persist-to', state, '--file', file, '--yes']);
  return users.map((u) => ({ ...u, token: tokenFor(u) }));
}

function wrangler(argv) {
  execFileSync(process.execPath, [WRANGLER, ...argv], {
    cwd: ROOT,
    stdio: 'pipe',
    env: { ...process.env, CI: 'true' },
  });
}

async function startServer(state) {
  const port = await freePort();
  const inspector = await freePort();
  const child = spawn(
    process.execPath,
    [
      WRANGLER,
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspector),
      '--persist-to',
      state,
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
      '--var',
      `JWT_SECRET:${SECRET}`,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env } },
  );
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${output}`);
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      stop(child);
      throw new Error(`wrangler dev did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { child, base, output: () => output };
}

/**
 * CPU seconds used so far by the server's processes (wrangler and the workerd it runs, found by
 * process group), from /proc: what a booking costs, whatever else the machine is doing. Linux
 * only; elsewhere null.
 */
function serverCpuSeconds(child) {
  if (!existsSync('/proc/self/stat')) return null;
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[2] is the process group; [11] utime and [12] stime, in ticks.
      if (Number(fields[2]) !== child.pid) continue;
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** Stops the server we started: its whole process group (wrangler and its workerd), by PID. */
function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise((r) => child.once('exit', r));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
  return exited;
}

async function createEvent(base, organiser, title) {
  const res = await fetch(`${base}/api/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${organiser.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      title,
      venue: 'Loopback Arena',
      startsAt: Date.now() + 86_400_000,
      capacity: 100_000,
    }),
  });
  if (res.status !== 201) throw new Error(`create event: ${res.status} ${await res.text()}`);
  return (await res.json()).event.id;
}

function watch(base, eventId) {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws/events/${eventId}`);
  const seen = { created: [], outOfOrder: 0, lastSeq: 0, ws };
  const take = (frame) => {
    if (typeof frame.seq === 'number' && frame.type !== 'welcome') {
      if (frame.seq <= seen.lastSeq) seen.outOfOrder += 1;
      seen.lastSeq = frame.seq;
    }
    if (frame.type === 'booking.created') seen.created.push(frame.bookingId);
  };
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    // Under load a channel sends one `batch` per short window (docs/protocol.md, "Batches").
    if (frame.type === 'batch') for (const f of frame.frames) take(f);
    else take(frame);
  });
  return new Promise((ok, fail) => {
    ws.once('message', () => ok(seen));
    ws.once('error', fail);
  });
}

async function bookOnce(base, user, eventId, withKey) {
  const headers = { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' };
  if (withKey) headers['idempotency-key'] = randomUUID();
  const started = performance.now();
  const res = await fetch(`${base}/api/bookings`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ eventId, quantity: 1 }),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  const bookingId = res.status === 201 ? JSON.parse(text).booking.id : null;
  return { status: res.status, ms, bookingId };
}

const percentile = (sorted, p) =>
  sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Keeps `inFlight` bookings running for `seconds`; returns what happened in that window. */
async function drive(base, users, eventId, inFlight, seconds, withKey, cursor) {
  const results = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < until) {
      const user = users[cursor.next++ % users.length];
      results.push(await bookOnce(base, user, eventId, withKey));
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { results, elapsed: (performance.now() - started) / 1000 };
}

async function scenario(server, organiser, users, inFlight, withKey, cursor) {
  const label = `${inFlight} in flight, ${withKey ? 'with' : 'without'} Idempotency-Key`;
  const eventId = await createEvent(server.base, organiser, `Bench ${label}`);
  const watchers = await Promise.all(
    Array.from({ length: WATCHERS }, () => watch(server.base, eventId)),
  );
  if (WARMUP_SECONDS > 0)
    await drive(server.base, users, eventId, inFlight, WARMUP_SECONDS, withKey, cursor);
  const warmedUp = watchers.map((w) => w.created.length);
  const cpuBefore = serverCpuSeconds(server.child);
  const { results, elapsed } = await drive(
    server.base,
    users,
    eventId,
    inFlight,
    SECONDS,
    withKey,
    cursor,
  );
  const cpuAfter = serverCpuSeconds(server.child);
  const confirmed = results.filter((r) => r.status === 201);
  const statuses = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
  // Every watcher must see every booking made in the measured window, in seq order.
  const expected = new Set(confirmed.map((r) => r.bookingId));
  const deadline = Date.now() + 30_000;
  while (
    Date.now() < deadline &&
    watchers.some((w, i) => w.created.length - warmedUp[i] < expected.size)
  ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const watcherCheck = watchers.map((w, i) => {
    const got = new Set(w.created.slice(warmedUp[i]));
    const missing = [...expected].filter((id) => !got.has(id)).length;
    return { received: got.size, missing, outOfOrder: w.outOfOrder };
  });
  for (const w of watchers) w.ws.close();
  const summary = {
    scenario: label,
    inFlight,
    withKey,
    seconds: Number(elapsed.toFixed(2)),
    requests: results.length,
    statuses,
    confirmedPerSecond: Number((confirmed.length / elapsed).toFixed(1)),
    serverCpuMsPerRequest:
      cpuBefore === null || results.length === 0
        ? null
        : Number((((cpuAfter - cpuBefore) * 1000) / results.length).toFixed(2)),
    latencyMs: {
      p50: Number(percentile(latencies, 50).toFixed(1)),
      p95: Number(percentile(latencies, 95).toFixed(1)),
      p99: Number(percentile(latencies, 99).toFixed(1)),
      max: Number((latencies.at(-1) ?? 0).toFixed(1)),
    },
    watchers: {
      count: WATCHERS,
      sawEveryBookingInOrder: watcherCheck.every((w) => w.missing === 0 && w.outOfOrder === 0),
      missing: watcherCheck.reduce((n, w) => n + w.missing, 0),
      outOfOrder: watcherCheck.reduce((n, w) => n + w.outOfOrder, 0),
    },
  };
  log(
    `${label.padEnd(42)} ${String(summary.confirmedPerSecond).padStart(8)} confirmed/s  ` +
      `p50 ${summary.latencyMs.p50} ms  p95 ${summary.latencyMs.p95} ms  p99 ${summary.latencyMs.p99} ms  ` +
      `server CPU ${summary.serverCpuMsPerRequest} ms/request  ` +
      `statuses ${JSON.stringify(statuses)}  watchers in order: ${summary.watchers.sawEveryBookingInOrder}`,
  );
  return summary;
}

/** Requests per second the stack answers for a route that does nothing. */
async function ceiling(server, inFlight) {
  const { base } = server;
  const cpuBefore = serverCpuSeconds(server.child);
  const latencies = [];
  const until = performance.now() + 5000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        await (await fetch(`${base}/health`)).text();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = serverCpuSeconds(server.child);
  latencies.sort((a, b) => a - b);
  return {
    perSecond: Number((latencies.length / elapsed).toFixed(1)),
    serverCpuMsPerRequest:
      cpuBefore === null
        ? null
        : Number((((cpuAfter - cpuBefore) * 1000) / latencies.length).toFixed(2)),
    p50: Number(percentile(latencies, 50).toFixed(1)),
  };
}

/** Every user books once with a key (key claim shards read their history from D1 once). */
async function firstPass(server, organiser, users) {
  const eventId = await createEvent(server.base, organiser, 'Bench first pass');
  const latencies = [];
  const statuses = {};
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < users.length) {
        const r = await bookOnce(server.base, users[next++], eventId, true);
        latencies.push(r.ms);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const summary = {
    scenario: 'first keyed booking of each user, 50 in flight (claim shards read D1 once)',
    requests: latencies.length,
    statuses,
    perSecond: Number((latencies.length / elapsed).toFixed(1)),
    latencyMs: {
      p50: Number(percentile(latencies, 50).toFixed(1)),
      p99: Number(percentile(latencies, 99).toFixed(1)),
    },
  };
  log(
    `first keyed booking per user: ${summary.perSecond}/s p50 ${summary.latencyMs.p50} ms ` +
      `p99 ${summary.latencyMs.p99} ms statuses ${JSON.stringify(statuses)}`,
  );
  return summary;
}

async function main() {
  const state = mkdtempSync(join(tmpdir(), 'wavecast-bench-'));
  let server;
  try {
    log(`preparing ${USERS} users and a local D1 in ${state}`);
    wrangler(['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', state]);
    const [organiser, ...users] = makeUsers(state);
    server = await startServer(state);
    log(
      `wrangler dev on ${server.base}; ${SECONDS} s per scenario after ${WARMUP_SECONDS} s warm-up`,
    );
    const cursor = { next: 0 };
    const summaries = [];
    const health = await ceiling(server, Math.max(...IN_FLIGHT));
    log(
      `/health with ${Math.max(...IN_FLIGHT)} in flight: ${health.perSecond} req/s, ` +
        `p50 ${health.p50} ms, server CPU ${health.serverCpuMsPerRequest} ms/request`,
    );
    summaries.push({ scenario: '/health (stack ceiling)', ...health });
    summaries.push(await firstPass(server, organiser, users));
    for (const inFlight of IN_FLIGHT) {
      for (const withKey of KEY_MODES) {
        summaries.push(await scenario(server, organiser, users, inFlight, withKey, cursor));
      }
    }
    if (args.json) console.log(JSON.stringify(summaries, null, 2));
  } finally {
    if (server) await stop(server.child);
    rmSync(state, { recursive: true, force: true });
  }
}

await main();
