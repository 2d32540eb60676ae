import type { ErrorFrame } from '../protocol/core';

/** A request refused with a stable code; the socket stays open. Thrown by room handlers
 * and RPC methods alike (the worker maps `status` onto the HTTP response). */
export class ChannelError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly issues?: ErrorFrame['issues'],
  ) {
    super(message);
    this.name = 'ChannelError';
  }

  toFrame(id?: string): ErrorFrame {
    return {
      type: 'error',
      code: this.code,
      message: this.message,
      ...(id === undefined ? {} : { id }),
      ...(this.issues ? { issues: this.issues } : {}),
    };
  }
}

/** The connection's user, or an `auth_required` refusal for anonymous sockets. */
export function signedIn<U>(user: U | null): U {
  if (!user) throw new ChannelError('auth_required', 'sign in to do that', 401);
  return user;
}

/** Ends an exhaustive `switch` over a frame union. */
export function assertNever(value: never): never {
  throw new Error(`unhandled frame ${JSON.stringify(value)}`);
}
