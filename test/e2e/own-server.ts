// A `wrangler dev` of one test file's own (fresh state, its own vars), for tests whose numbers
// must not mix with the shared server's traffic. Stopped by its process group, by PID.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js');

export class OwnServer {
  child: ChildProcess | null = null;
  port = 0;
  output = '';
  readonly #state: string;

  constructor(
    name: string,
    private readonly vars: Record<string, string>,
  ) {
    this.#state = join(root, '.e2e', `${name}-${process.pid}`);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    rmSync(this.#state, { recursive: true, force: true });
    mkdirSync(this.#state, { recursive: true });
    execFileSync(
      process.execPath,
      [wrangler, 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', this.#state],
      { cwd: root, stdio: 'pipe', env: { ...process.env, CI: 'true' } },
    );
    this.port = await freePort();
    const inspector = await freePort();
    const vars = Object.entries(this.vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
    const child = spawn(
      process.execPath,
      [
        wrangler,
        'dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(this.port),
        '--inspector-port',
        String(inspector),
        '--persist-to',
        this.#state,
        '--show-interactive-dev-session=false',
        ...vars,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env } },
    );
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${this.output}`);
      try {
        if ((await fetch(`${this.baseUrl}/health`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child?.pid && child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      await exited;
    }
    this.child = null;
    rmSync(this.#state, { recursive: true, force: true });
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
