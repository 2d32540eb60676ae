// App events: what a trusted backend publishes to a channel through the server API
// (docs/server-api.md). They are sequenced, stored and resumable like every event of the channel,
// and they cannot impersonate the channel's own events: the core's frame names and each kind's
// `reservedEvents` are refused.
import { ErrorCode } from '../protocol/core';
import { ChannelError } from './errors';

/** Largest `data` of one app event, serialised (the socket frame limit is 64 KiB). */
export const MAX_APP_EVENT_BYTES = 16 * 1024;

/** `booking.created`, `order-shipped`, `match.goal`: lower case, dot-separated words. */
export const APP_EVENT_TYPE = /^[a-z][a-z0-9_-]{0,31}(\.[a-z0-9_-]{1,32}){0,3}$/;

/** Names every channel owns (core frames); a name ending in `.` reserves the whole family. */
const CORE_RESERVED = [
  'welcome',
  'ack',
  'error',
  'batch',
  'ping',
  'pong',
  'presence.',
  'typing',
] as const;

export function isReserved(type: string, reserved: readonly string[]): boolean {
  for (const name of [...CORE_RESERVED, ...reserved]) {
    if (name.endsWith('.') ? type.startsWith(name) || type === name.slice(0, -1) : type === name) {
      return true;
    }
  }
  return false;
}

/** Checks an app event's type and size; returns the frame that will be sequenced. */
export function appEvent(
  type: string,
  data: unknown,
  reserved: readonly string[],
): { type: string; data: unknown } {
  if (!APP_EVENT_TYPE.test(type)) {
    throw new ChannelError(
      ErrorCode.invalidEventType,
      'type must be lower-case words joined by dots (e.g. "order.shipped"), at most 4 parts',
      400,
    );
  }
  if (isReserved(type, reserved)) {
    throw new ChannelError(
      ErrorCode.eventTypeReserved,
      `"${type}" is an event this channel publishes itself; pick another name`,
      422,
    );
  }
  const bytes = new TextEncoder().encode(JSON.stringify(data ?? null)).length;
  if (bytes > MAX_APP_EVENT_BYTES) {
    throw new ChannelError(
      ErrorCode.payloadTooLarge,
      `data is ${bytes} bytes; at most ${MAX_APP_EVENT_BYTES}`,
      413,
    );
  }
  return { type, data: data ?? null };
}
