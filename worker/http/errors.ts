import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ChannelError } from '../channel/errors';
import { ErrorCode } from '../protocol/core';

export interface FieldIssue {
  path: string;
  message: string;
}

/** An HTTP error with a stable code; `onError` turns it into `{ error: { code, message } }`. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly fields?: FieldIssue[],
  ) {
    super(status, { message });
  }
}

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: ErrorCode.forbidden,
  404: ErrorCode.notFound,
  405: 'method_not_allowed',
  409: ErrorCode.conflict,
  413: 'payload_too_large',
  426: ErrorCode.upgradeRequired,
  429: ErrorCode.rateLimited,
};

export function errorBody(code: string, message: string, fields?: FieldIssue[]) {
  return { error: { code, message, ...(fields ? { fields } : {}) } };
}

export function onError(err: Error, c: Context): Response {
  // The one error type the rooms (and the channel core) throw, answered as it is.
  if (err instanceof ChannelError) {
    const status = err.status as ContentfulStatusCode;
    const fields = err.issues?.map((i) => ({ path: i.path || '(body)', message: i.message }));
    return c.json(errorBody(err.code, err.message, fields), status);
  }
  if (err instanceof ApiError) {
    return c.json(errorBody(err.code, err.message, err.fields), err.status);
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    return c.json(
      errorBody(CODE_BY_STATUS[status] ?? 'http_error', err.message || 'request failed'),
      status,
    );
  }
  // Log the detail (never the request's token) and answer without a stack.
  console.error(`${c.req.method} ${c.req.path} failed:`, err);
  return c.json(errorBody(ErrorCode.internal, 'internal error'), 500);
}

export function notFound(c: Context): Response {
  return c.json(errorBody(ErrorCode.notFound, `no route for ${c.req.method} ${c.req.path}`), 404);
}
