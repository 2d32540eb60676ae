// How a room's answer to a REST request becomes a response: the ack's result with its `seq`,
// byte for byte the same on a replay (marked `Idempotent-Replayed: true`).
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Handled } from '../channel/room';

export function answered(
  c: Context,
  answer: { value: Handled; duplicate: boolean },
  status: ContentfulStatusCode,
): Response {
  const { result, seq } = answer.value;
  const body = JSON.stringify({ ...(result as object), ...(seq === undefined ? {} : { seq }) });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (answer.duplicate) headers['idempotent-replayed'] = 'true';
  return c.body(body, status, headers);
}
