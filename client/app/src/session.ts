// The signed-in session: kept in localStorage so every tab shares it (a sign-in or sign-out in
// one tab reaches the others through the `storage` event), and read by the client's token
// function before every request and every reconnect.
import { type SessionUser, WavecastClient } from '@wavecast/sdk';
import { useSyncExternalStore } from 'react';

export interface Session {
  token: string;
  user: SessionUser;
  expiresAt: number;
}

const KEY = 'wavecast.session';
const listeners = new Set<() => void>();

function read(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    // expiresAt is in seconds (JWT exp) or ms; either way an expired session is dropped.
    const expiresMs = session.expiresAt < 1e12 ? session.expiresAt * 1000 : session.expiresAt;
    return expiresMs > Date.now() ? session : null;
  } catch {
    return null;
  }
}

let current = read();

export const client = new WavecastClient({
  baseUrl: location.origin,
  token: () => current?.token ?? null,
});

function changed(): void {
  current = read();
  client.token = current?.token ?? null;
  for (const listener of listeners) listener();
}

window.addEventListener('storage', (event) => {
  if (event.key === KEY || event.key === null) changed();
});

export function setSession(session: Session | null): void {
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  changed();
}

export function getSession(): Session | null {
  return current;
}

export function useSession(): Session | null {
  return useSyncExternalStore(
    (notify) => {
      listeners.add(notify);
      return () => listeners.delete(notify);
    },
    () => current,
  );
}

/** A fresh key for one intent (a booking, a cancel): the same key on every retry of it. */
export function newKey(): string {
  return crypto.randomUUID();
}
