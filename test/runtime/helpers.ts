// In-runtime test helpers: real requests through the worker, real sockets to real DOs.
import { env, exports } from 'cloudflare:workers';
import { FrameQueue } from '../support/frames';

export const BASE = 'https://wavecast.test';

export interface TestUser {
  id: string;
  name: string;
  role: string;
  email: string;
  token: string;
}

let counter = 0;
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

export function api(path: string, init: RequestInit & { token?: string; json?: unknown } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  return exports.default.fetch(`${BASE}${path}`, { ...init, headers, body });
}

export async function register(
  role: 'listener' | 'station_owner' | 'organiser' | 'admin' = 'listener',
  name?: string,
): Promise<TestUser> {
  const email = role === 'admin' ? adminEmail() : `${unique(role)}@example.test`;
  const res = await api('/api/auth/register', {
    method: 'POST',
    json: {
      email,
      password: 'correct horse battery',
      displayName: name ?? email.split('@')[0],
      ...(role === 'admin' ? {} : { role }),
    },
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { user: Omit<TestUser, 'token'>; token: string };
  return { ...body.user, token: body.token };
}

// ADMIN_EMAILS (vitest.config.ts) names one address; each test file has its own D1, so one admin a file.
let adminCreated = false;
function adminEmail(): string {
  if (adminCreated) throw new Error('one admin per test file: reuse it');
  adminCreated = true;
  return 'admin@example.test';
}

export interface SocketOptions {
  token?: string;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
}

/** Opens a WebSocket through the worker (the same path a browser takes). */
export async function connect(path: string, opts: SocketOptions = {}): Promise<FrameQueue> {
  const res = await upgrade(path, opts);
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) {
    throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
  }
  ws.accept();
  return new FrameQueue(ws);
}

export function upgrade(path: string, opts: SocketOptions = {}): Promise<Response> {
  const url = new URL(`${BASE}${path}`);
  if (opts.token) url.searchParams.set('token', opts.token);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
  return exports.default.fetch(url, { headers: { upgrade: 'websocket', ...opts.headers } });
}

export { env };

/**
 * Waits until a channel object has written everything it committed to D1 (its outbox is empty):
 * D1 mirrors a channel off the request path (docs/architecture.md, "One commit point"), so a
 * test that reads D1 right after an ack first waits for that documented point.
 */
export async function drained(
  stub: { stats(): Promise<{ outboxPending: number }> },
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await stub.stats()).outboxPending === 0) return;
    if (Date.now() > deadline) throw new Error('the outbox did not drain');
    await new Promise((r) => setTimeout(r, 20));
  }
}
