// Co-authors editing live against `wrangler dev`: three SDK providers make 300 random concurrent
// edits (one of them offline for part of the time); every copy, the object's stored state after
// a server restart, and the body in D1 end identical. This file runs its own server, because it
// restarts it (the suite's server stays up for the other files).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WavecastClient } from '../../client/sdk';
import { StoriesApi, StoryDocument } from '../../client/sdk/stories';
import { fromBase64 } from '../../worker/protocol/stories';
import { E2E_SECRET } from './global-setup';

const root = resolve(import.meta.dirname, '../..');
const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js');
const state = join(root, '.e2e', `stories-${process.pid}`);

/** A `wrangler dev` of this file's own: stopped by its process group, restarted on the same state. */
class RestartableServer {
  child: ChildProcess | null = null;
  port = 0;
  output = '';

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) {
      rmSync(state, { recursive: true, force: true });
      mkdirSync(state, { recursive: true });
      execFileSync(
        process.execPath,
        [wrangler, 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', state],
        { cwd: root, stdio: 'pipe', env: { ...process.env, CI: 'true' } },
      );
      this.port = await freePort();
    }
    const inspector = await freePort();
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
        state,
        '--show-interactive-dev-session=false',
        '--var',
        `JWT_SECRET:${E2E_SECRET}`,
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

  /** Kills wrangler and the workerd it spawned (its process group), by PID, and waits. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
    await exited;
    this.child = null;
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

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic generator, so a failing run can be replayed with its seed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const server = new RestartableServer();

async function register(name: string) {
  const client = new WavecastClient({ baseUrl: server.baseUrl, WebSocket });
  const { user } = await client.register({
    email: `${name}-${process.pid}-${Date.now()}@e2e.test`,
    password: 'correct horse battery',
    displayName: name,
  });
  return { client, user };
}

describe('co-authors editing live against wrangler dev', () => {
  beforeAll(() => server.start(), 120_000);
  afterAll(async () => {
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it('three co-authors make 300 random concurrent edits, one offline for a while, and everything ends identical', async () => {
    const seed = Number(process.env.STORY_SEED ?? Date.now() % 100_000);
    const rand = random(seed);
    const [ann, ben, cat] = await Promise.all([register('Ann'), register('Ben'), register('Cat')]);
    const api = new StoriesApi(ann.client);
    const { story } = await api.create({ title: 'Together', body: 'It began here. ' });
    await api.addCoauthor(story.id, ben.user.id);
    await api.addCoauthor(story.id, cat.user.id);

    const authors = [ann, ben, cat].map(({ client }) => new StoryDocument(client, story.id));
    await Promise.all(authors.map((a) => a.whenSynced()));
    expect(authors.map((a) => a.text.toString())).toEqual(Array(3).fill('It began here. '));
    const catWelcomes: { recovered: boolean; missed: number }[] = [];
    authors[2]?.channel.on('welcome', (w) => {
      catWelcomes.push(
        (w as unknown as { recovery: { recovered: boolean; missed: number } }).recovery,
      );
    });
    const errors: Error[] = [];
    for (const a of authors) a.on('error', (err) => errors.push(err));

    const EDITS_EACH = 100;
    const started = Date.now();
    const offline = { from: 25, to: 70 };
    let offlineEdits = 0;
    const edit = async (doc: StoryDocument, who: number) => {
      for (let i = 0; i < EDITS_EACH; i++) {
        if (who === 2 && i === offline.from) doc.disconnect();
        if (who === 2 && i === offline.to) doc.connect();
        if (who === 2 && i >= offline.from && i < offline.to) offlineEdits += 1;
        const text = doc.text;
        const len = text.length;
        // Mostly typing, some deleting; positions cluster in the same sentence on purpose.
        if (len > 20 && rand() < 0.3) {
          const at = Math.floor(rand() * (len - 3));
          text.delete(at, 1 + Math.floor(rand() * 3));
        } else {
          const at = rand() < 0.5 ? Math.min(len, 8) : Math.floor(rand() * (len + 1));
          text.insert(at, `${'abc'[who]}${i} `);
        }
        await sleep(10 + rand() * 50);
      }
    };
    await Promise.all(authors.map((a, who) => edit(a, who)));
    const typedMs = Date.now() - started;

    // Everyone converges: the three copies and the object's document.
    let live = await api.live(story.id);
    await until(async () => {
      if (authors.some((a) => a.unsent > 0 || !a.synced)) return false;
      const texts = authors.map((a) => a.text.toString());
      live = await api.live(story.id);
      return texts.every((t) => t === live.body);
    }, 'the three copies and the object to agree');
    const convergedMs = Date.now() - started - typedMs;
    expect(errors).toEqual([]);
    // The offline author came back by resuming from its position (since/epoch), missing nothing.
    expect(catWelcomes).toHaveLength(1);
    expect(catWelcomes[0]?.recovered).toBe(true);
    const final = live.body;
    const copies = authors.map((a) => a.text.toString());
    expect(copies).toEqual([final, final, final]);
    // Every author's marks are in it (nothing lost), including those typed offline.
    for (const mark of ['a', 'b', 'c']) expect(final).toContain(mark);

    // D1 gets the body once edits settle (debounced on the object's alarm).
    await until(async () => (await api.get(story.id)).story.body === final, 'D1 body', 15_000);
    const savedMs = Date.now() - started - typedMs - convergedMs;
    for (const a of authors) a.destroy();

    // A restart: the object rebuilds the document from its own storage.
    await server.stop('SIGKILL');
    await server.start();
    const after = await api.live(story.id);
    expect(after.body).toBe(final);
    const restored = new Y.Doc();
    Y.applyUpdate(restored, fromBase64(after.state));
    expect(restored.getText('body').toString()).toBe(final);
    expect((await api.get(story.id)).story.body).toBe(final);

    // A reader who joins now gets the same document.
    const reader = new StoryDocument(ben.client, story.id);
    await reader.whenSynced();
    expect(reader.text.toString()).toBe(final);
    reader.destroy();

    console.log(
      `stories e2e (seed ${seed}): 300 edits (${offlineEdits} offline) typed in ${typedMs} ms, ` +
        `converged ${convergedMs} ms later, D1 body ${savedMs} ms after that; ` +
        `offline author resumed with ${catWelcomes[0]?.missed} missed updates; ` +
        `final text ${final.length} chars, channel seq ${after.seq}`,
    );
  }, 180_000);
});
