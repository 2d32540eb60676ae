// The channel benchmarks' engine (fanout.mjs, rooms.mjs, burst.mjs): R rooms × W watcher sockets,
// posts sent by publisher sockets at a steady rate or as one burst, against each target in turn
// (each server runs only while it is measured). Counts logical deliveries (a post received by a
// watcher, inside a `batch` frame or alone), publish→delivery latency on one clock, losses,
// the server's CPU per delivery and the load client's own CPU. See bench/README.md.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  clientCpuSeconds,
  inBatches,
  machine,
  machineCpuSeconds,
  median,
  parseFlags,
  percentile,
  printTable,
  ratio,
  round,
  sleep,
} from './common.mjs';
import { KINDS, makeTarget, TARGET_LABELS, targetList } from './targets.mjs';

/** A client this busy (percent of one core) is the limit, not the server. */
export const CLIENT_LIMIT_PERCENT = 90;
/** The drain ends early once nothing has arrived for this long. */
const QUIET_MS = 10_000;

export const CHANNEL_FLAGS = {
  rooms: 1,
  watchers: 1000,
  // Posts per second per room (rate mode).
  rate: 50,
  seconds: 20,
  // Posts per room sent at once (burst mode).
  burst: 500,
  // Publisher sockets per room; 0 = as many as the kind's limits need (see publishersFor).
  publishers: 0,
  // Signed-in users behind the publishers; 0 = as many as the kind's limits need.
  users: 0,
  // Longest wait after the last post for deliveries still in flight.
  drain: 30,
  runs: 1,
  target: 'all',
  // Wavecast's channel: `stream` (a station's chat, seed 001) or `comments`.
  kind: 'stream',
  json: '',
  tiny: false,
};

export function publishersFor(flags, mode) {
  if (flags.publishers) return flags.publishers;
  const kind = KINDS[flags.kind];
  if (!kind) throw new Error(`--kind must be ${Object.keys(KINDS).join(' or ')}`);
  return mode === 'burst'
    ? Math.max(1, Math.ceil(flags.burst / kind.burst))
    : Math.max(1, Math.ceil(flags.rate / kind.perSecond));
}

/**
 * Users behind the publishers. A station paces chat per user, so each of a room's publishers is
 * its own user; no user holds more than 40 sockets (the platform-wide cap is 50).
 */
export function usersFor(flags, publishersPerRoom) {
  if (flags.users) return flags.users;
  const sockets = flags.rooms * publishersPerRoom;
  if (flags.kind === 'stream') return Math.max(publishersPerRoom, Math.ceil(sockets / 40));
  return Math.min(50, sockets);
}

async function measure(name, run, flags, mode, publishersPerRoom, users) {
  const target = makeTarget(name, { kind: flags.kind });
  const log = (msg) => console.error(`[${name} run ${run}] ${msg}`);
  const handles = [];
  await target.start();
  try {
    const { channelIds, publisherOf } = await target.setup({
      channels: flags.rooms,
      publishersPerChannel: publishersPerRoom,
      users,
      run,
    });
    const postsPerRoom = mode === 'burst' ? flags.burst : Math.round(flags.rate * flags.seconds);
    const totalPosts = postsPerRoom * flags.rooms;
    const received = new Uint16Array(totalPosts);
    const refused = new Uint8Array(totalPosts);
    const sentAt = new Float64Array(totalPosts);
    let latencies = new Float64Array(
      Math.max(1024, Math.min(totalPosts * flags.watchers, 1 << 22)),
    );
    let delivered = 0;
    let duplicates = 0;
    let frames = 0;
    let lastDeliveryAt = 0;
    let acked = 0;
    let rejected = 0;
    const errors = {};

    const onPost = (post) => {
      if (post >= totalPosts) return;
      if (received[post] >= flags.watchers) {
        duplicates += 1;
        return;
      }
      const now = performance.now();
      received[post] += 1;
      if (delivered === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[delivered++] = now - sentAt[post];
      lastDeliveryAt = now;
    };
    const onFrame = () => {
      frames += 1;
    };
    const answers = {
      onAck: () => {
        acked += 1;
      },
      onRefused: (code, post) => {
        errors[code] = (errors[code] ?? 0) + 1;
        if (post >= 0 && post < totalPosts && !refused[post]) {
          refused[post] = 1;
          rejected += 1;
        } else if (post < 0) rejected += 1;
      },
    };

    // Watchers first (anonymous, read only), then the publishers of each room.
    const connectStart = performance.now();
    await inBatches(flags.rooms * flags.watchers, 50, async (i) => {
      const channel = channelIds[Math.floor(i / flags.watchers)];
      handles.push(await target.openWatcher(channel, onPost, onFrame));
    });
    const publishers = await inBatches(flags.rooms * publishersPerRoom, 25, async (i) => {
      const c = Math.floor(i / publishersPerRoom);
      const pub = await target.openPublisher(
        channelIds[c],
        publisherOf(c, i % publishersPerRoom),
        answers,
      );
      handles.push(pub);
      return pub;
    });
    const connectSeconds = (performance.now() - connectStart) / 1000;
    log(`${handles.length} sockets joined in ${round(connectSeconds)} s; ${mode} load`);
    // Let the joins settle (count frames, first alarms) before measuring.
    await sleep(2000);

    const loadAverage = machine().loadAverage;
    let sentTotal = 0;
    const cpuServer0 = target.serverCpuSeconds();
    const cpuTool0 = target.toolCpuSeconds();
    const cpuClient0 = clientCpuSeconds();
    const cpuMachine0 = machineCpuSeconds();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const start = performance.now();
    if (mode === 'burst') {
      for (let r = 0; r < flags.rooms; r++) {
        for (let n = 0; n < postsPerRoom; n++) {
          const post = r * postsPerRoom + n;
          sentAt[post] = performance.now();
          publishers[r * publishersPerRoom + (n % publishersPerRoom)].send(post);
          sentTotal += 1;
        }
      }
    } else {
      // Each room sends on its own phase so the rooms do not all fire at once.
      const sent = new Uint32Array(flags.rooms);
      const interval = 1000 / flags.rate;
      while (sentTotal < totalPosts) {
        const elapsed = performance.now() - start;
        for (let r = 0; r < flags.rooms; r++) {
          const phase = (r / flags.rooms) * interval;
          const due = Math.min(postsPerRoom, Math.floor((elapsed - phase) / interval) + 1);
          while (sent[r] < due) {
            const n = sent[r]++;
            const post = r * postsPerRoom + n;
            sentAt[post] = performance.now();
            publishers[r * publishersPerRoom + (n % publishersPerRoom)].send(post);
            sentTotal += 1;
          }
        }
        await sleep(5);
      }
    }
    const sendEnd = performance.now();

    const expected = () => (sentTotal - rejected) * flags.watchers;
    const drainDeadline = sendEnd + flags.drain * 1000;
    for (;;) {
      const now = performance.now();
      if (delivered >= expected() || now > drainDeadline) break;
      if (now - Math.max(lastDeliveryAt, sendEnd) > QUIET_MS) break;
      await sleep(20);
    }
    const end = performance.now();
    const cpuServer = target.serverCpuSeconds() - cpuServer0;
    const cpuTool = target.toolCpuSeconds() - cpuTool0;
    const cpuClient = clientCpuSeconds() - cpuClient0;
    const cpuMachine1 = machineCpuSeconds();
    loopDelay.disable();
    const memory = target.rss();

    const window = (Math.max(lastDeliveryAt, sendEnd) - start) / 1000;
    const wall = (end - start) / 1000;
    const sorted = latencies.subarray(0, delivered).sort();
    const clientPercent = (cpuClient / wall) * 100;
    const offered = mode === 'burst' ? null : flags.rooms * flags.rate * flags.watchers;
    const result = {
      target: name,
      run,
      loadAverage,
      connectSeconds: round(connectSeconds, 2),
      posts: sentTotal,
      acked: name === 'wavecast' ? acked : null,
      rejected,
      errors,
      expectedDeliveries: expected(),
      delivered,
      lost: Math.max(0, expected() - delivered),
      duplicates,
      framesWithPosts: frames,
      deliveriesPerFrame: frames ? round(delivered / frames, 2) : null,
      offeredDeliveriesPerSecond: offered,
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
      toolCpuSeconds: round(cpuTool, 2),
      serverCpuMicrosPerDelivery: delivered ? round((cpuServer * 1e6) / delivered) : null,
      serverRssMiB: round(memory.server / 2 ** 20),
      clientCpuPercent: round(clientPercent),
      // How late the client's event loop ran (p99): a client starved of CPU reads late too.
      clientLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6),
      // Everything else on the machine (other engineers' tests) over the same wall time; with
      // the server and the client, 200 % is both cores.
      otherCpuPercent: round(
        ((cpuMachine1.busy - cpuMachine0.busy - cpuServer - cpuTool - cpuClient) / wall) * 100,
      ),
      machineBusyPercent: round(
        ((cpuMachine1.busy - cpuMachine0.busy) / (cpuMachine1.total - cpuMachine0.total)) * 100,
      ),
      clientLimited: clientPercent >= CLIENT_LIMIT_PERCENT,
      limitedBy: '',
      closes: { ...target.closes },
    };
    const keptUp = offered !== null && delivered / window >= 0.95 * offered && result.lost === 0;
    // A saturated client delays what it reads, so its latencies are partly its own.
    result.keptUp = offered === null ? null : keptUp;
    // Both cores busy (server, client and whatever else runs here): the server was short of CPU.
    const machineFull = result.machineBusyPercent >= 95;
    result.limitedBy = result.clientLimited
      ? 'load client'
      : keptUp
        ? 'none (kept up)'
        : machineFull
          ? 'server (machine full)'
          : 'server';
    log(
      `${delivered}/${expected()} delivered, ${result.deliveriesPerSecond}/s, p99 ${result.latencyMs.p99} ms, ` +
        `server CPU ${result.serverCpuPercent} %, client CPU ${result.clientCpuPercent} %`,
    );
    return result;
  } finally {
    for (const h of handles) h.close();
    await target.dispose();
  }
}

function summarise(results, name) {
  const of = results.filter((r) => r.target === name);
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
    deliverySeconds: pick((r) => r.seconds.delivery),
    lost: pick((r) => r.lost),
    rejected: pick((r) => r.rejected),
    deliveriesPerFrame: pick((r) => r.deliveriesPerFrame),
    serverCpuMicrosPerDelivery: pick((r) => r.serverCpuMicrosPerDelivery),
    serverCpuPercent: pick((r) => r.serverCpuPercent),
    serverRssMiB: pick((r) => r.serverRssMiB),
    clientCpuPercent: pick((r) => r.clientCpuPercent),
    clientLoopDelayP99Ms: pick((r) => r.clientLoopDelayP99Ms),
    otherCpuPercent: pick((r) => r.otherCpuPercent),
    machineBusyPercent: pick((r) => r.machineBusyPercent),
    keptUp: of.every((r) => r.keptUp),
    limitedBy: [...new Set(of.map((r) => r.limitedBy))].join(' / '),
  };
}

/**
 * Runs a channel scenario: parses its flags (with the scenario's own defaults and `--tiny`
 * preset), measures every target `--runs` times, prints the table, the targets and the
 * JSON report. `checks(summary)` lists the targets the issue sets for this scenario.
 */
export async function runChannelScenario({ scenario, mode, describe, defaults, tiny, checks }) {
  const flags = parseFlags(process.argv.slice(2), { ...CHANNEL_FLAGS, ...defaults }, { tiny });
  const names = targetList(flags.target);
  const publishersPerRoom = publishersFor(flags, mode);
  const users = usersFor(flags, publishersPerRoom);
  const results = [];
  for (let run = 1; run <= flags.runs; run++) {
    for (const name of names) {
      results.push(await measure(name, run, flags, mode, publishersPerRoom, users));
    }
  }
  const summary = Object.fromEntries(names.map((n) => [n, summarise(results, n)]));
  const w = summary.wavecast;
  const ratios = {};
  for (const base of ['bare', 'socketio']) {
    const b = summary[base];
    if (!w || !b) continue;
    ratios[base] = {
      deliveriesPerSecond: ratio(w.deliveriesPerSecond, b.deliveriesPerSecond),
      p99: ratio(w.latencyMs.p99, b.latencyMs.p99),
      serverCpuPerDelivery: ratio(w.serverCpuMicrosPerDelivery, b.serverCpuMicrosPerDelivery),
    };
  }
  const config = {
    scenario,
    mode,
    kind: flags.kind,
    rooms: flags.rooms,
    watchers: flags.watchers,
    ...(mode === 'burst'
      ? { postsPerRoom: flags.burst }
      : { rate: flags.rate, seconds: flags.seconds }),
    publishersPerRoom,
    users,
    runs: flags.runs,
    offeredDeliveriesPerSecond: mode === 'burst' ? null : flags.rooms * flags.rate * flags.watchers,
  };

  console.log(
    `\n${scenario}: ${describe(config)}; median of ${flags.runs} run(s); ${machine().cores} cores\n`,
  );
  const header = ['metric', ...names.map((n) => TARGET_LABELS[n])];
  const ratioColumns = ['bare', 'socketio'].filter((b) => ratios[b]);
  header.push(...ratioColumns.map((b) => `Wavecast/${TARGET_LABELS[b]}`));
  const row = (label, f, ratioKey) => [
    label,
    ...names.map((n) => (summary[n] ? f(summary[n]) : null)),
    ...ratioColumns.map((b) => (ratioKey ? ratios[b][ratioKey] : null)),
  ];
  printTable(header, [
    row('deliveries/s', (s) => s.deliveriesPerSecond, 'deliveriesPerSecond'),
    row('latency p50 ms', (s) => s.latencyMs.p50),
    row('latency p95 ms', (s) => s.latencyMs.p95),
    row('latency p99 ms', (s) => s.latencyMs.p99, 'p99'),
    row('last delivery after s', (s) => s.deliverySeconds),
    row('undelivered at end', (s) => s.lost),
    row('rejected posts', (s) => s.rejected),
    row('deliveries per frame', (s) => s.deliveriesPerFrame),
    row('server CPU µs/delivery', (s) => s.serverCpuMicrosPerDelivery, 'serverCpuPerDelivery'),
    row('server CPU %', (s) => s.serverCpuPercent),
    row('server RSS MiB', (s) => s.serverRssMiB),
    row('client CPU %', (s) => s.clientCpuPercent),
    row('client loop delay p99 ms', (s) => s.clientLoopDelayP99Ms),
    row('other processes CPU %', (s) => s.otherCpuPercent),
    row('machine busy %', (s) => s.machineBusyPercent),
    row('limited by', (s) => s.limitedBy),
  ]);
  const verdicts = checks ? checks(summary, ratios) : [];
  if (verdicts.length > 0) {
    console.log("\nthe issue's targets:");
    for (const v of verdicts) {
      const state = v.met === null ? 'n/a' : v.met ? 'met' : 'NOT met';
      console.log(`  ${state.padEnd(7)} ${v.target} (${v.detail})`);
    }
  }
  const report = {
    bench: scenario,
    date: new Date().toISOString(),
    machine: machine(),
    config,
    summary,
    ratios,
    targets: verdicts,
    runs: results,
  };
  console.log('\nJSON:');
  console.log(JSON.stringify(report, null, 2));
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
