import type { Context } from 'hono';
import type { AppEnv } from '../http/app-env';
import { originAllowed } from '../http/auth';
import { ApiError } from '../http/errors';
import { ErrorCode } from '../protocol/core';
import { forwardToChannel } from './identity';
import type { RpcResult } from './room';

export interface ConnectPolicy {
  /** May a client without a token connect (read-only)? */
  anonymous: boolean;
}

/**
 * Forwards a WebSocket upgrade to the channel's DO after the worker has checked everything
 * it can: upgrade header, Origin, token (already verified by `authenticate`), resume query.
 */
export function connectChannel(
  c: Context<AppEnv>,
  namespace: DurableObjectNamespace,
  channel: string,
  policy: ConnectPolicy,
): Promise<Response> {
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
    throw new ApiError(
      426,
      ErrorCode.upgradeRequired,
      'this route only accepts WebSocket upgrades',
    );
  }
  if (!originAllowed(c.req.header('origin'), c.env)) {
    throw new ApiError(403, ErrorCode.originNotAllowed, 'this Origin may not open sockets here');
  }
  const since = c.req.query('since');
  const epoch = c.req.query('epoch');
  if (
    (since !== undefined && !/^\d{1,15}$/.test(since)) ||
    (epoch !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(epoch)) ||
    (since === undefined) !== (epoch === undefined)
  ) {
    throw new ApiError(
      400,
      ErrorCode.invalidQuery,
      'resume needs both "since" (a non-negative integer) and "epoch"',
    );
  }
  const user = c.get('user');
  if (!user && !policy.anonymous) {
    throw new ApiError(401, ErrorCode.authRequired, 'this channel needs a token');
  }
  const stub = namespace.get(namespace.idFromName(channel));
  return stub.fetch(forwardToChannel(c.req.raw, channel, user));
}

/** Unwraps a room's RPC answer, turning a refusal into the matching HTTP error. */
export function unwrap<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  const { status, code, message } = result.error;
  throw new ApiError(status as 400, code, message);
}
