// A `wrangler dev` that tests and benchmarks can start, crash and start again on the same state.
// Plain ESM so the benchmarks run it without a build; `dev-server.d.mts` types it for the tests.
//
// The server runs in its own process group (spawned detached), so `kill()` can SIGKILL wrangler
// and the workerd it spawned at once, by group id: a real crash, no graceful shutdown. Only the
// group this module started is ever signalled.
import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const wranglerBin = join(repoRoot, 'node_modules/wrangler/bin/wrangler.js');

/** wrangler.toml serves the built web app (`[assets]`); wrangler refuses to start without it. */
export function ensureAppBuilt() {
  if (existsSync(join(repoRoot, 'client/app/dist/index.html'))) return;
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'pipe' });
}
const wranglerTmp = join(repoRoot, '.wrangler', 'tmp');

function listTmp() {
  try {
    return readdirSync(wranglerTmp);
  } catch {
    return [];
  }
}

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ); 100 on every Linux we run on. */
const TICKS_PER_SECOND = 100;

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => ok(port));
    });
  });
}

function portIsFree(port) {
  return new Promise((ok) => {
    const server = createServer();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `/proc/<pid>/stat` split into fields after the command name (which may hold spaces). */
function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after ") ": [0]=state, [1]=ppid, [2]=pgrp, ..., [11]=utime, [12]=stime.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function readComm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * The live (non-zombie) processes of a process group, read from /proc. A zombie is not
 * counted: once wrangler dies, the workerd it spawned is reparented, and whether it is reaped
 * promptly depends on the container's init.
 */
export function groupMembers(pgid) {
  let pids;
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    // No /proc: fall back to asking the kernel whether the group still exists.
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const members = [];
  for (const name of pids) {
    const fields = statFields(name);
    if (fields && Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(name));
  }
  return members;
}

/** CPU seconds (user + system) used so far by every live process of a group. */
export function groupCpuSeconds(pgid) {
  return Object.values(groupCpuByCommand(pgid)).reduce((a, b) => a + b, 0);
}

/** CPU seconds so far of a group's live processes, summed by command name (e.g. `workerd`). */
export function groupCpuByCommand(pgid) {
  const byCommand = {};
  for (const pid of groupMembers(pgid)) {
    const fields = statFields(pid);
    if (!fields) continue;
    const command = readComm(pid);
    const seconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    byCommand[command] = (byCommand[command] ?? 0) + seconds;
  }
  return byCommand;
}

export class DevServer {
  /**
   * @param {object} [options]
   * @param {string} [options.config] wrangler config, relative to the repository root
   * @param {Record<string, string>} [options.vars] `--var NAME:VALUE` pairs
   * @param {boolean} [options.migrate] apply the D1 migrations to the state first (default true)
   * @param {string} [options.name] names the state folder and log under `.e2e/`
   * @param {string} [options.logFile] where to append everything the server prints
   */
  constructor(options = {}) {
    this.config = options.config ?? 'wrangler.toml';
    this.vars = options.vars ?? {};
    this.migrate = options.migrate ?? true;
    const name = options.name ?? 'server';
    this.state = join(repoRoot, '.e2e', `${name}-${process.pid}-${Date.now().toString(36)}`);
    this.logFile = options.logFile ?? `${this.state}.log`;
    this.port = 0;
    this.child = null;
    this.pgid = 0;
    this.output = '';
    this.prepared = false;
    /** wrangler's bundle folders of the current run, removed after a kill. */
    this.tmpDirs = [];
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsBase() {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** True while our process group has a live process. */
  get running() {
    return this.pgid !== 0 && groupMembers(this.pgid).length > 0;
  }

  /** CPU seconds used so far by wrangler and workerd (the whole group); 0 when stopped. */
  cpuSeconds() {
    return this.pgid === 0 ? 0 : groupCpuSeconds(this.pgid);
  }

  /** The same, by command name: `workerd` is the runtime, `node` and `MainThread` wrangler. */
  cpuByCommand() {
    return this.pgid === 0 ? {} : groupCpuByCommand(this.pgid);
  }

  /** A fresh state folder with every D1 migration applied (once, before the first start). */
  prepare() {
    ensureAppBuilt();
    rmSync(this.state, { recursive: true, force: true });
    mkdirSync(this.state, { recursive: true });
    writeFileSync(this.logFile, '');
    if (this.migrate) {
      execFileSync(
        process.execPath,
        [
          wranglerBin,
          'd1',
          'migrations',
          'apply',
          'DB',
          '--local',
          '--persist-to',
          this.state,
          '-c',
          this.config,
        ],
        // CI=true: wrangler applies without asking "continue?".
        { cwd: repoRoot, stdio: 'pipe', env: { ...process.env, CI: 'true' } },
      );
    }
    this.prepared = true;
  }

  /** Starts `wrangler dev` on the persisted state and waits until `/health` answers. */
  async start({ timeoutMs = 90_000 } = {}) {
    // A restart right after kill(): the old group must be gone (its port, its state files).
    const previous = this.pgid;
    const deadline = Date.now() + 15_000;
    while (previous !== 0 && groupMembers(previous).length > 0) {
      if (Date.now() > deadline) throw new Error('server still running: kill() or stop() it first');
      await sleep(50);
    }
    if (!this.prepared) this.prepare();
    // Keep the address across restarts when we can, so sockets and URLs stay valid.
    if (this.port === 0 || !(await this.#waitForPort(this.port, 5_000))) {
      this.port = await freePort();
    }
    const inspector = await freePort();
    const args = [
      wranglerBin,
      'dev',
      '-c',
      this.config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--inspector-port',
      String(inspector),
      '--persist-to',
      this.state,
      '--show-interactive-dev-session=false',
    ];
    for (const [key, value] of Object.entries(this.vars)) args.push('--var', `${key}:${value}`);
    const tmpBefore = listTmp();
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env },
    });
    this.child = child;
    this.pgid = child.pid ?? 0;
    const record = (d) => {
      const text = d.toString();
      this.output += text;
      appendFileSync(this.logFile, text);
    };
    child.stdout?.on('data', record);
    child.stderr?.on('data', record);
    // The child is reaped when it exits; until then a dead wrangler shows up as a zombie.
    child.on('error', (err) => record(`spawn error: ${err.message}\n`));
    try {
      await this.#waitUntilHealthy(timeoutMs);
    } catch (err) {
      await this.kill();
      throw new Error(`${err.message}\n--- server output ---\n${this.output.slice(-4000)}`);
    }
    // wrangler removes its bundle folders on exit, but a SIGKILL leaves them (about 2 MB a
    // start, swept by wrangler only after a day). Ours are the two that appeared while this
    // one started; if another wrangler started at the same time we cannot tell, and keep all.
    const appeared = listTmp().filter((name) => !tmpBefore.includes(name));
    this.tmpDirs = appeared.length === 2 ? appeared.map((name) => join(wranglerTmp, name)) : [];
  }

  /** SIGKILL to the whole process group (a crash), then waits until every process is gone. */
  async kill({ timeoutMs = 15_000 } = {}) {
    await this.#signalAndWait('SIGKILL', timeoutMs);
    for (const dir of this.tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }

  /** Asks the group to stop (SIGTERM), then kills whatever is left after a few seconds. */
  async stop({ graceMs = 5_000 } = {}) {
    if (!this.running) return;
    try {
      await this.#signalAndWait('SIGTERM', graceMs);
    } catch {
      await this.kill();
    }
  }

  /** Stops the server and removes its state folder and log. */
  async dispose({ keepLog = false } = {}) {
    await this.stop();
    rmSync(this.state, { recursive: true, force: true });
    if (!keepLog) rmSync(this.logFile, { force: true });
  }

  async #signalAndWait(signal, timeoutMs) {
    // This run's group: a restart may assign a new one while we wait.
    const pgid = this.pgid;
    if (pgid === 0) return;
    const deadline = Date.now() + timeoutMs;
    try {
      process.kill(-pgid, signal);
    } catch {
      // the group is already gone
    }
    while (groupMembers(pgid).length > 0) {
      if (Date.now() > deadline) {
        const left = groupMembers(pgid).map((pid) => {
          const fields = statFields(pid);
          return `${pid} ${readComm(pid)} state ${fields?.[0] ?? '?'}`;
        });
        throw new Error(
          `process group ${pgid} still alive ${timeoutMs} ms after ${signal}: ${left.join(', ')}`,
        );
      }
      await sleep(50);
    }
  }

  async #waitForPort(port, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await portIsFree(port)) return true;
      await sleep(100);
    }
    return false;
  }

  async #waitUntilHealthy(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null || this.child?.signalCode) {
        throw new Error(`wrangler dev exited (${this.child?.exitCode ?? this.child?.signalCode})`);
      }
      try {
        const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`wrangler dev did not answer on ${this.baseUrl} within ${timeoutMs} ms`);
  }
}
