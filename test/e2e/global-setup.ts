// Starts `wrangler dev` (local D1 with every migration applied, a fresh state folder) on a free
// loopback port, waits until it answers, and stops it by PID when the run ends.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

export const E2E_SECRET = 'e2e-secret-0123456789abcdef0123';
export const E2E_ADMIN = 'admin@e2e.test';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    /** Everything `wrangler dev` printed, so tests can check what reaches the logs. */
    serverLog: string;
  }
}

function freePort(): Promise<number> {
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

async function waitUntilHealthy(
  url: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev did not answer on ${url} within ${timeoutMs} ms`);
}

export default async function setup(project: TestProject) {
  const root = resolve(import.meta.dirname, '../..');
  const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js');
  const state = join(root, '.e2e', `state-${process.pid}`);
  rmSync(state, { recursive: true, force: true });
  mkdirSync(state, { recursive: true });
  execFileSync(
    process.execPath,
    [wrangler, 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', state],
    { cwd: root, stdio: 'pipe', env: { ...process.env, CI: 'true' } },
  );
  const port = await freePort();
  const inspector = await freePort();
  const child = spawn(
    process.execPath,
    [
      wrangler,
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
      '--var',
      `JWT_SECRET:${E2E_SECRET}`,
      '--var',
      `ADMIN_EMAILS:${E2E_ADMIN}`,
      '--var',
      'ALLOWED_ORIGINS:http://127.0.0.1:5173',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env } },
  );
  const output: string[] = [];
  const serverLog = join(root, '.e2e', `wrangler-${process.pid}.log`);
  writeFileSync(serverLog, '');
  const record = (d: Buffer) => {
    output.push(d.toString());
    appendFileSync(serverLog, d);
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitUntilHealthy(baseUrl, child, 90_000);
  } catch (err) {
    stop(child);
    console.error(output.join(''));
    throw err;
  }
  project.provide('baseUrl', baseUrl);
  project.provide('serverLog', serverLog);

  return async () => {
    stop(child);
    await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
    if (process.env.E2E_LOG) console.log(output.join(''));
    rmSync(state, { recursive: true, force: true });
    rmSync(serverLog, { force: true });
  };
}

/** Stops the server we started: its process group (wrangler and the workerd it spawned), by PID. */
function stop(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}
