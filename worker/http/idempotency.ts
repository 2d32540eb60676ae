import type { Context } from 'hono';
import { ErrorCode } from '../protocol/core';
import type { AppEnv } from './app-env';
import { ApiError } from './errors';

// Visible ASCII, like Stripe's keys; UUIDs are the obvious choice.
const pattern = /^[\x21-\x7e]{1,255}$/;

/** The request's `Idempotency-Key` header, if any; one rule for every route that takes it. */
export function idempotencyKeyOf(c: Context<AppEnv>): string | undefined {
  const header = c.req.header('idempotency-key');
  if (header === undefined) return undefined;
  if (!pattern.test(header)) {
    throw new ApiError(
      400,
      ErrorCode.invalidIdempotencyKey,
      'Idempotency-Key must be 1–255 visible ASCII characters',
    );
  }
  return header;
}
