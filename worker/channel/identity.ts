// How the worker hands a verified identity to a channel object. Only the worker can reach an
// object, and it strips these headers from every incoming request before setting them itself.
// The object knows its own channel from `ctx.id.name`; only who is asking travels here.
import type { PublicUser } from '../protocol/core';

const IDENTITY_HEADER = 'x-wavecast-identity';
const ADDRESS_HEADER = 'x-wavecast-address';
const ISSUED_AT_HEADER = 'x-wavecast-issued-at';
const INTERNAL_PREFIX = 'x-wavecast-';

/** When the token behind a verified user was issued (epoch ms): the user's quota refuses a socket
 * whose token predates a "log out everywhere" (docs/notifications.md). Kept beside the user
 * object, not in it, so it never shows up where the user is displayed. */
const issuedAt = new WeakMap<PublicUser, number>();

export function rememberIssuedAt(user: PublicUser, at: number): void {
  issuedAt.set(user, at);
}

export function forwardToChannel(request: Request, user: PublicUser | null): Request {
  const url = new URL(request.url);
  // The token has done its job in the worker; it never travels further (or into a DO's logs).
  url.searchParams.delete('token');
  const headers = new Headers(request.headers);
  for (const name of [...headers.keys()]) {
    if (name.startsWith(INTERNAL_PREFIX)) headers.delete(name);
  }
  headers.delete('authorization');
  if (user) {
    headers.set(IDENTITY_HEADER, JSON.stringify(user));
    const at = issuedAt.get(user);
    if (at !== undefined) headers.set(ISSUED_AT_HEADER, String(at));
  }
  // Cloudflare sets the client's address; `wrangler dev` and tests may not.
  headers.set(ADDRESS_HEADER, request.headers.get('cf-connecting-ip') ?? 'local');
  return new Request(url, { method: request.method, headers });
}

export function readForwarded(request: Request): {
  user: PublicUser | null;
  address: string;
  issuedAt: number | null;
} {
  const address = request.headers.get(ADDRESS_HEADER);
  if (!address) throw new Error('request did not come through the worker');
  const raw = request.headers.get(IDENTITY_HEADER);
  const at = request.headers.get(ISSUED_AT_HEADER);
  return {
    user: raw ? (JSON.parse(raw) as PublicUser) : null,
    address,
    issuedAt: at === null ? null : Number(at),
  };
}
