// A baseline server (bench/baselines/*.mjs) in its own Node process, started like DevServer:
// detached in its own process group on a free loopback port, stopped by signalling that group
// only (never by name), with CPU and memory read from /proc for the whole group.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, groupCpuSeconds, groupMembers, repoRoot } from '../../scripts/dev-server.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class NodeServer {
  /**
   * @param {object} options
   * @param {string} options.script path relative to the repository root
   * @param {string} options.name names the state folder and log under `.e2e/`
   * @param {string[]} [options.args] more arguments (`--port` and `--state` are added)
   * @param {Record<string, string>} [options.env] more environment variables
   */
  constructor({ script, name, args = [], env = {} }) {
    this.script = script;
    this.args = args;
    this.env = env;
    this.state = join(repoRoot, '.e2e', `${name}-${process.pid}-${Date.now().toString(36)}`);
    this.logFile = `${this.state}.log`;
    this.port = 0;
    this.pgid = 0;
    this.child = null;
    this.output = '';
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsBase() {
    return `ws://127.0.0.1:${this.port}`;
  }

  async start({ timeoutMs = 30_000 } = {}) {
    rmSync(this.state, { recursive: true, force: true });
    mkdirSync(this.state, { recursive: true });
    writeFileSync(this.logFile, '');
    this.port = await freePort();
    const child = spawn(
      process.execPath,
      [this.script, '--port', String(this.port), '--state', this.state, ...this.args],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: { ...process.env, ...this.env },
      },
    );
    this.child = child;
    this.pgid = child.pid ?? 0;
    const record = (d) => {
      const text = d.toString();
      this.output += text;
      appendFileSync(this.logFile, text);
    };
    child.stdout?.on('data', record);
    child.stderr?.on('data', record);
    child.on('error', (err) => record(`spawn error: ${err.message}\n`));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode) break;
      try {
        const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    await this.dispose({ keepLog: true });
    throw new Error(`${this.script} did not start\n--- output ---\n${this.output.slice(-4000)}`);
  }

  /** CPU seconds (user + system) of the server's process group so far. */
  cpuSeconds() {
    return this.pgid === 0 ? 0 : groupCpuSeconds(this.pgid);
  }

  /** SIGTERM to the group, SIGKILL after a grace period; then removes the state folder. */
  async dispose({ keepLog = false, graceMs = 3_000 } = {}) {
    const pgid = this.pgid;
    if (pgid !== 0) {
      const signal = (name) => {
        try {
          process.kill(-pgid, name);
        } catch {
          // the group is gone
        }
      };
      signal('SIGTERM');
      const deadline = Date.now() + graceMs;
      while (groupMembers(pgid).length > 0 && Date.now() < deadline) await sleep(50);
      if (groupMembers(pgid).length > 0) signal('SIGKILL');
      while (groupMembers(pgid).length > 0 && Date.now() < deadline + 10_000) await sleep(50);
    }
    rmSync(this.state, { recursive: true, force: true });
    if (!keepLog) rmSync(this.logFile, { force: true });
  }
}
