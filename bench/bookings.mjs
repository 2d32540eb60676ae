// Bookings on one event through `wrangler dev`: confirmed bookings per second and latency
// percentiles with a fixed number of requests in flight, while watcher sockets check that every
// `booking.created` reaches them in `seq` order (docs/bookings.md, "Measured"). It starts its own
// server (scripts/dev-server.mjs) and stops it by process group. In the same run, the same
// scenarios go to seed 002's booking server in plain Node (bench/baselines/bookings-server.mjs:
// `node:sqlite`, a guarded update in a transaction, `ws` broadcast of `booking_created`), whose
// watchers check that `availableSeats` only goes down; `--target wavecast|node` runs one.
//
//   npm run bench:bookings -- [--seconds 10] [--in-flight 50,200] [--watchers 20] [--users 1500]
//                             [--keys both|with|without] [--warmup 2] [--target all|wavecast|node]
//                             [--json FILE] [--tiny]
//
// Users are written straight into the local D1 before the server starts and their tokens are
// signed with the bench's own secret: registering thousands through the API would take minutes
// (PBKDF2, and 300 registrations a minute per address). REST writes are limited to 120 a minute
// per user (`[[ratelimits]]` in wrangler.toml), so bookings are spread over enough users that
// none comes near it.
//
// Before the scenarios every user books once with a key on a warm-up event: the first claim that
// reaches a key claim shard makes it read its users' keys from D1, once ever (docs/bookings.md);
// that one-time cost is reported on its own. Each scenario runs `--warmup` seconds unmeasured on
// its own event first. The `/health` row is the ceiling of the stack (wrangler dev's proxy, the
// worker) at that moment: no booking can go faster. Server CPU is workerd's (bench/README.md).
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BENCH_SECRET,
  DevServer,
  machine,
  machineCpuSeconds,
  openSocket,
  parseFlags,
  percentile,
  printTable,
  ratio,
  repoRoot,
  round,
  serverCpuSeconds,
} from './lib/common.mjs';
import { NodeServer } from './lib/node-server.mjs';

const flags = parseFlags(
  process.argv.slice(2),
  {
    seconds: 10,
    inFlight: '50,200',
    watchers: 20,
    users: 1500,
    keys: 'both',
    warmup: 2,
    target: 'all',
    json: '',
    tiny: false,
  },
  { tiny: { seconds: 2, inFlight: '10', watchers: 3, users: 60, keys: 'with', warmup: 0 } },
);
const IN_FLIGHT = flags.inFlight.split(',').map(Number);
const KEY_MODES = flags.keys === 'both' ? [true, false] : [flags.keys === 'with'];
const HEALTH_SECONDS = flags.tiny ? 1 : 5;
const TARGETS = ['wavecast', 'node'];
const LABELS = { wavecast: 'Wavecast', node: 'Node + sqlite' };
const targets =
  flags.target === 'all' ? TARGETS : TARGETS.filter((t) => flags.target.split(',').includes(t));
if (targets.length === 0) throw new Error('--target must be all, wavecast or node');

const b64url = (data) => Buffer.from(data).toString('base64url');

/** An HS256 token the worker accepts (worker/auth/tokens.ts). */
function tokenFor(user) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(
    JSON.stringify({ sub: user.id, name: user.name, role: user.role, iat: now, exp: now + 7200 }),
  );
  const signature = createHmac('sha256', BENCH_SECRET)
    .update(`${header}.${payload}`)
    .digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** Writes the organiser and the users into the server's local D1 (before it starts). */
function seedUsers(server) {
  const users = [{ id: randomUUID(), name: 'Bench organiser', role: 'organiser' }];
  for (let i = 0; i < flags.users; i++) {
    users.push({ id: randomUUID(), name: `b${i}`, role: 'listener' });
  }
  const now = Date.now();
  const rows = users.map(
    (u) => `('${u.id}', '${u.id}@bench.test', 'x', '${u.name}', '${u.role}', ${now})`,
  );
  const statements = [];
  for (let i = 0; i < rows.length; i += 500) {
    statements.push(
      `INSERT INTO users (id, email, password_hash, display_name, role, created_at) VALUES ${rows
        .slice(i, i + 500)
        .join(',\n')};`,
    );
  }
  const file = join(server.state, 'bench-users.sql');
  writeFileSync(file, statements.join('\n'));
  execFileSync(
    process.execPath,
    [
      join(repoRoot, 'node_modules/wrangler/bin/wrangler.js'),
      'd1',
      'execute',
      'DB',
      '--local',
      '--persist-to',
      server.state,
      '--file',
      file,
      '--yes',
    ],
    { cwd: repoRoot, stdio: 'pipe', env: { ...process.env, CI: 'true' } },
  );
  return users.map((u) => ({ ...u, token: tokenFor(u) }));
}

/** The Node baseline has no accounts: the same kind of users, with tokens it verifies. */
function signedUsers() {
  const users = [{ id: randomUUID(), name: 'Bench organiser', role: 'organiser' }];
  for (let i = 0; i < flags.users; i++) {
    users.push({ id: randomUUID(), name: `b${i}`, role: 'listener' });
  }
  return users.map((u) => ({ ...u, token: tokenFor(u) }));
}

/**
 * What differs between the two servers: how watchers connect, which frame is a booking and how
 * it is matched with its answer (Wavecast's frame names the booking; seed 002's carries only
 * `availableSeats`, unique per one-seat booking), and how order is checked (`seq` going up;
 * `availableSeats` going down).
 */
const KINDS = {
  wavecast: {
    watchUrl: (server, eventId) => `${server.wsBase}/ws/events/${eventId}`,
    booked: 'booking.created',
    markOfFrame: (frame) => frame.bookingId,
    markOfAnswer: (body) => body.booking.id,
  },
  node: {
    watchUrl: (server, eventId, organiser) =>
      `${server.wsBase}/ws/events/${eventId}?token=${organiser.token}`,
    booked: 'booking_created',
    markOfFrame: (frame) => frame.availableSeats,
    markOfAnswer: (body) => body.availableSeats,
  },
};

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

/** A watcher: every booking frame it sees, and how often they came out of order. */
async function watch(kind, server, eventId, organiser) {
  const seen = { created: [], outOfOrder: 0, lastSeq: 0, lastSeats: Infinity, ws: null };
  const take = (frame) => {
    if (typeof frame.seq === 'number' && frame.type !== 'welcome') {
      if (frame.seq <= seen.lastSeq) seen.outOfOrder += 1;
      seen.lastSeq = frame.seq;
    }
    if (frame.type !== kind.booked) return;
    if (frame.seq === undefined) {
      if (frame.availableSeats >= seen.lastSeats) seen.outOfOrder += 1;
      seen.lastSeats = frame.availableSeats;
    }
    seen.created.push(kind.markOfFrame(frame));
  };
  seen.ws = await openSocket(kind.watchUrl(server, eventId, organiser), {
    onMessage: (data) => {
      const frame = JSON.parse(String(data));
      // Under load a channel sends one `batch` per short window (docs/protocol.md, "Batches").
      if (frame.type === 'batch') for (const f of frame.frames) take(f);
      else take(frame);
    },
  });
  return seen;
}

async function bookOnce(kind, base, user, eventId, withKey) {
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
  return {
    status: res.status,
    ms,
    bookingId: res.status === 201 ? kind.markOfAnswer(JSON.parse(text)) : null,
  };
}

/** Keeps `inFlight` requests running for `seconds` (or until `count` were sent). */
async function drive({ inFlight, seconds = Infinity, count = Infinity }, send) {
  const results = [];
  let sent = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until && sent < count) {
        sent += 1;
        results.push(await send(sent - 1));
      }
    }),
  );
  return { results, elapsed: (performance.now() - started) / 1000 };
}

function summarise(label, { results, elapsed }, cpuSeconds) {
  const statuses = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
  return {
    scenario: label,
    seconds: round(elapsed, 2),
    requests: results.length,
    statuses,
    perSecond: round(results.length / elapsed),
    confirmedPerSecond: round(results.filter((r) => r.status === 201).length / elapsed),
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p95: round(percentile(latencies, 95)),
      p99: round(percentile(latencies, 99)),
      max: round(latencies.at(-1) ?? null),
    },
    serverCpuMsPerRequest: results.length ? round((cpuSeconds * 1000) / results.length, 2) : null,
  };
}

async function measured(target, label, run) {
  const before = target.cpu();
  const machineBefore = machineCpuSeconds();
  const outcome = await run();
  const summary = summarise(label, outcome, target.cpu() - before);
  const machineAfter = machineCpuSeconds();
  // Both cores over the window (other engineers' work shares them): 100 % is all of it.
  summary.machineBusyPercent = round(
    ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * 100,
  );
  return summary;
}

async function scenario(target, organiser, users, cursor, inFlight, withKey) {
  const { server, kind } = target;
  const label = `${inFlight} in flight, ${withKey ? 'with a key' : 'no key'}`;
  const eventId = await createEvent(server.baseUrl, organiser, `Bench ${label}`);
  const watchers = await Promise.all(
    Array.from({ length: flags.watchers }, () => watch(kind, server, eventId, organiser)),
  );
  const book = () =>
    bookOnce(kind, server.baseUrl, users[cursor.next++ % users.length], eventId, withKey);
  if (flags.warmup > 0) await drive({ inFlight, seconds: flags.warmup }, book);
  let outcome;
  const summary = await measured(target, label, async () => {
    outcome = await drive({ inFlight, seconds: flags.seconds }, book);
    return outcome;
  });
  // Every watcher must see every booking of the measured window, in order. Matched by what each
  // booking is, not by counting from the end of the warm-up: a server that answers before it
  // broadcasts (seed 002's) may deliver the warm-up's last frame after its answer.
  const expected = [
    ...new Set(outcome.results.filter((r) => r.status === 201).map((r) => r.bookingId)),
  ];
  const missingFor = (w) => {
    const got = new Set(w.created);
    return expected.filter((id) => !got.has(id)).length;
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && watchers.some((w) => missingFor(w) > 0)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const checks = watchers.map((w) => ({ missing: missingFor(w), outOfOrder: w.outOfOrder }));
  for (const w of watchers) w.ws.close();
  return {
    ...summary,
    watchers: {
      count: flags.watchers,
      sawEveryBookingInOrder: checks.every((c) => c.missing === 0 && c.outOfOrder === 0),
      missing: checks.reduce((n, c) => n + c.missing, 0),
      outOfOrder: checks.reduce((n, c) => n + c.outOfOrder, 0),
    },
  };
}

/** One server's whole run: the stack's ceiling, (Wavecast) the first keys, every scenario. */
async function measureTarget(name) {
  const wavecast = name === 'wavecast';
  const server = wavecast
    ? new DevServer({ name: 'bench-bookings', vars: { JWT_SECRET: BENCH_SECRET } })
    : new NodeServer({
        script: 'bench/baselines/bookings-server.mjs',
        name: 'bench-bookings-node',
      });
  const target = {
    server,
    kind: KINDS[name],
    cpu: () => (wavecast ? serverCpuSeconds(server) : server.cpuSeconds()),
  };
  try {
    let people;
    if (wavecast) {
      server.prepare();
      people = seedUsers(server);
    } else people = signedUsers();
    const [organiser, ...users] = people;
    await server.start();
    const health = await measured(target, "/health (the stack's ceiling)", () =>
      drive({ inFlight: Math.max(...IN_FLIGHT), seconds: HEALTH_SECONDS }, async () => {
        const started = performance.now();
        const res = await fetch(`${server.baseUrl}/health`);
        await res.text();
        return { status: res.status, ms: performance.now() - started };
      }),
    );
    // The key claim shards' one-time read of D1 is Wavecast's alone.
    let firstKeys = null;
    if (wavecast) {
      const warmEvent = await createEvent(server.baseUrl, organiser, 'Bench first keys');
      firstKeys = await measured(target, 'first keyed booking of each user, 50 in flight', () =>
        drive({ inFlight: 50, count: users.length }, (i) =>
          bookOnce(target.kind, server.baseUrl, users[i], warmEvent, true),
        ),
      );
    }
    const cursor = { next: 0 };
    const scenarios = [];
    for (const inFlight of IN_FLIGHT) {
      for (const withKey of KEY_MODES) {
        scenarios.push(await scenario(target, organiser, users, cursor, inFlight, withKey));
      }
    }
    return { health, firstKeys, scenarios };
  } finally {
    await server.dispose();
  }
}

async function main() {
  const results = {};
  for (const name of targets) results[name] = await measureTarget(name);
  const rows = [];
  for (const name of targets) {
    const { health, firstKeys, scenarios } = results[name];
    for (const r of [health, firstKeys, ...scenarios]) if (r) rows.push([name, r, r === health]);
  }
  printTable(
    [
      'server',
      'scenario',
      'req/s',
      'confirmed/s',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'server CPU ms/req',
      'machine busy %',
      'watchers in order',
    ],
    rows.map(([name, r, isHealth]) => [
      LABELS[name],
      r.scenario,
      r.perSecond,
      isHealth ? null : r.confirmedPerSecond,
      r.latencyMs.p50,
      r.latencyMs.p95,
      r.latencyMs.p99,
      r.serverCpuMsPerRequest,
      r.machineBusyPercent,
      r.watchers ? r.watchers.sawEveryBookingInOrder : null,
    ]),
  );
  // Wavecast ÷ Node, scenario by scenario: above 1 is faster for confirmed/s, below 1 better
  // for p99 and CPU.
  const ratios = [];
  if (results.wavecast && results.node) {
    for (const [i, w] of results.wavecast.scenarios.entries()) {
      const n = results.node.scenarios[i];
      ratios.push({
        scenario: w.scenario,
        confirmedPerSecond: ratio(w.confirmedPerSecond, n.confirmedPerSecond),
        p99: ratio(w.latencyMs.p99, n.latencyMs.p99),
        serverCpuPerRequest: ratio(w.serverCpuMsPerRequest, n.serverCpuMsPerRequest),
      });
    }
    console.log('\nWavecast ÷ Node + sqlite:\n');
    printTable(
      ['scenario', 'confirmed/s', 'p99', 'server CPU per request'],
      ratios.map((r) => [r.scenario, r.confirmedPerSecond, r.p99, r.serverCpuPerRequest]),
    );
  }
  const report = { machine: machine(), flags, ...results, ratios };
  console.log('\nJSON:');
  console.log(JSON.stringify(report, null, 2));
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
}

await main();
