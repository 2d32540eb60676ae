// Calls to the server API (docs/server-api.md) with the test key (vitest.config.ts).
import { api } from './helpers';

export const SERVER_KEY = 'test-server-key-0123456789abcdef0123456789';

export function server(
  path: string,
  init: {
    method?: string;
    json?: unknown;
    key?: string | null;
    headers?: Record<string, string>;
  } = {},
) {
  const headers: Record<string, string> = { ...init.headers };
  const key = init.key === undefined ? SERVER_KEY : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  return api(`/server/v1${path}`, {
    method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.json === undefined ? {} : { json: init.json }),
  });
}
