// End-to-end helpers: HTTP with fetch and sockets with the `ws` library against `wrangler dev`.
import { inject } from 'vitest';
import WebSocket from 'ws';
import { FrameQueue, type SocketLike } from '../support/frames';

export const baseUrl = (): string => inject('baseUrl');
export const wsUrl = (path: string): string => `${baseUrl().replace(/^http/, 'ws')}${path}`;

export interface E2EUser {
  id: string;
  name: string;
  role: string;
  email: string;
  token: string;
}

let counter = 0;
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export async function api<T = unknown>(
  path: string,
  init: {
    method?: string;
    token?: string;
    json?: unknown;
    headers?: Record<string, string>;
    /** Another server than the suite's (see `server.ts`). */
    base?: string;
  } = {},
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${init.base ?? baseUrl()}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function register(
  role: 'listener' | 'station_owner' | 'organiser' = 'listener',
  name?: string,
  base?: string,
): Promise<E2EUser> {
  const email = `${unique(role)}@e2e.test`;
  const res = await api<{ user: Omit<E2EUser, 'token'>; token: string }>('/api/auth/register', {
    method: 'POST',
    base,
    json: {
      email,
      password: 'correct horse battery',
      displayName: name ?? email.split('@')[0],
      role,
    },
  });
  if (res.status !== 201)
    throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body.user, token: res.body.token };
}

/** Opens a `ws` socket and resolves once it is open (or rejects with the refusal status). */
export function connect(
  path: string,
  opts: { token?: string; query?: Record<string, string | number>; base?: string } = {},
): Promise<FrameQueue & { raw: WebSocket }> {
  const url = new URL(opts.base ? `${opts.base.replace(/^http/, 'ws')}${path}` : wsUrl(path));
  if (opts.token) url.searchParams.set('token', opts.token);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
  const ws = new WebSocket(url);
  const queue = Object.assign(new FrameQueue(ws as unknown as SocketLike), { raw: ws });
  return new Promise((ok, fail) => {
    ws.once('open', () => ok(queue));
    ws.once('unexpected-response', (_req, res) =>
      fail(new Error(`upgrade refused: ${res.statusCode}`)),
    );
    ws.once('error', fail);
  });
}
