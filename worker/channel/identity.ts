// How the worker hands a verified identity to a channel DO. Only the worker can reach a DO,
// and it strips these headers from every incoming request before setting them itself.
import type { PublicUser } from '../protocol/core';

const IDENTITY_HEADER = 'x-wavecast-identity';
const CHANNEL_HEADER = 'x-wavecast-channel';
const INTERNAL_PREFIX = 'x-wavecast-';

export function forwardToChannel(
  request: Request,
  channel: string,
  user: PublicUser | null,
): Request {
  const url = new URL(request.url);
  // The token has done its job in the worker; it never travels further (or into a DO's logs).
  url.searchParams.delete('token');
  const headers = new Headers(request.headers);
  for (const name of [...headers.keys()]) {
    if (name.startsWith(INTERNAL_PREFIX)) headers.delete(name);
  }
  headers.delete('authorization');
  headers.set(CHANNEL_HEADER, channel);
  if (user) headers.set(IDENTITY_HEADER, JSON.stringify(user));
  return new Request(url, { method: request.method, headers });
}

export function readForwarded(request: Request): { channel: string; user: PublicUser | null } {
  const channel = request.headers.get(CHANNEL_HEADER);
  if (!channel) throw new Error('request did not come through the worker');
  const raw = request.headers.get(IDENTITY_HEADER);
  return { channel, user: raw ? (JSON.parse(raw) as PublicUser) : null };
}
