// Shared by the benchmarks: flags, users, sockets, percentiles and the printed report.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import WebSocket from 'ws';

import { groupMembers } from '../../scripts/dev-server.mjs';

export { DevServer, repoRoot } from '../../scripts/dev-server.mjs';

export const BENCH_SECRET = 'bench-secret-0123456789abcdef0123';
export const BENCH_ADMIN = 'admin@bench.test';
/** The heartbeat the runtime answers itself (docs/protocol.md), as the SDK sends it. */
export const HEARTBEAT = '{"type":"ping"}';

/**
 * `--name value`, `--name=value` and bare `--flag` (true) into an object; `defaults` fixes the
 * accepted names and their types (number, boolean or string). A boolean flag named in `presets`
 * (e.g. `--tiny`) changes the defaults of the flags that were not given.
 */
export function parseFlags(argv, defaults, presets = {}) {
  const flags = { ...defaults };
  const given = new Set();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const [rawName, inline] = arg.slice(2).split('=', 2);
    const name = rawName.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(name in defaults)) throw new Error(`unknown flag --${rawName}`);
    given.add(name);
    const kind = typeof defaults[name];
    if (kind === 'boolean') {
      flags[name] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${rawName} needs a value`);
    flags[name] = kind === 'number' ? Number(value) : value;
    if (kind === 'number' && !Number.isFinite(flags[name])) {
      throw new Error(`--${rawName} must be a number`);
    }
  }
  for (const [preset, values] of Object.entries(presets)) {
    if (!flags[preset]) continue;
    for (const [name, value] of Object.entries(values)) if (!given.has(name)) flags[name] = value;
  }
  return flags;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Registers `count` users, a few at a time (PBKDF2 makes each one cost tens of ms). */
export async function registerUsers(baseUrl, count, { prefix = 'bench', role = 'listener' } = {}) {
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const users = [];
  for (let start = 0; start < count; start += 10) {
    const batch = Array.from({ length: Math.min(10, count - start) }, (_, j) =>
      registerUser(baseUrl, `${prefix}-${run}-${start + j}@bench.test`, role),
    );
    users.push(...(await Promise.all(batch)));
  }
  return users;
}

export async function registerUser(baseUrl, email, role = 'listener') {
  const res = await fetch(`${baseUrl}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email,
      password: 'correct horse battery',
      displayName: email.split('@')[0].slice(0, 40),
      role,
    }),
  });
  const body = await res.json();
  if (res.status !== 201)
    throw new Error(`register ${email}: ${res.status} ${JSON.stringify(body)}`);
  return { id: body.user.id, token: body.token };
}

/**
 * Opens a socket (no compression: the server does not offer it) and resolves once it is open.
 * `onMessage` is attached before the handshake: a first frame that arrives with the upgrade
 * response is emitted before a listener added after `await` would be.
 */
export function openSocket(url, { timeoutMs = 30_000, onMessage } = {}) {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    if (onMessage) ws.on('message', onMessage);
    const timer = setTimeout(() => {
      ws.terminate();
      fail(new Error(`socket to ${url} did not open within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      ok(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      fail(new Error(`upgrade refused: ${res.statusCode}`));
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
  });
}

/** Runs `make(i)` for i in [0, count) with at most `parallel` in flight; results in order. */
export async function inBatches(count, parallel, make) {
  const results = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      results[i] = await make(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return results;
}

/** Percentile of a sorted numeric array (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(values) {
  const sorted = values.filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The server's CPU seconds so far: workerd's, the runtime that runs the worker and its objects.
 * wrangler's own processes (its node process, esbuild watching the sources) are left out: they
 * cost CPU in `wrangler dev` only, not in production.
 */
export function serverCpuSeconds(server) {
  return server.cpuByCommand().workerd ?? 0;
}

/** This process's CPU seconds (user + system) so far. */
export function clientCpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

export function machine() {
  return {
    cores: availableParallelism(),
    node: process.version,
    platform: process.platform,
    // The machine is shared: what else ran when the report was made (1, 5 and 15 min).
    loadAverage: loadavg().map((v) => round(v, 2)),
  };
}

/** The machine's CPU so far: busy and total core-seconds over all cores (from /proc/stat). */
export function machineCpuSeconds() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: (total - idle) / 100, total: total / 100 };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Resident memory (bytes) of a process group's live processes, by command name. */
export function groupRssByCommand(pgid) {
  const byCommand = {};
  if (!pgid) return byCommand;
  for (const pid of groupMembers(pgid)) {
    let status;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    const command = /^Name:\s+(.+)$/m.exec(status)?.[1] ?? '?';
    byCommand[command] = (byCommand[command] ?? 0) + kib * 1024;
  }
  return byCommand;
}

/** A ratio rounded to two places, or null when either side is missing. */
export function ratio(a, b) {
  return a === null || a === undefined || b === null || b === undefined || b === 0
    ? null
    : round(a / b, 2);
}

/** Prints rows (arrays of cells) as an aligned text table. */
export function printTable(header, rows) {
  const cells = [header, ...rows].map((r) => r.map((c) => (c === null ? 'n/a' : String(c))));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])));
  console.log(line(cells[0]).join('  '));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r).join('  '));
}

export function round(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
