// Request input is checked by Hono's validator middleware with the zod schemas, so each
// route's input type is part of the app's type (a typed `hc` client can call it). One hook
// gives every route the same 400 naming the bad field.
import { zValidator } from '@hono/zod-validator';
import type { Context } from 'hono';
import type { z } from 'zod';
import { ErrorCode } from '../protocol/core';
import { ApiError, type FieldIssue } from './errors';

type Target = 'json' | 'query';

function issuesOf(error: z.core.$ZodError): FieldIssue[] {
  return error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(body)',
    message: i.message,
  }));
}

function describe(kind: string, fields: FieldIssue[]): string {
  const first = fields[0];
  return first ? `invalid ${kind}: "${first.path}" ${first.message}` : `invalid ${kind}`;
}

/** The hook every validator shares: a failed parse becomes `invalid_body` / `invalid_query`. */
function refuse(target: Target) {
  const [code, kind] =
    target === 'json' ? [ErrorCode.invalidBody, 'body'] : [ErrorCode.invalidQuery, 'query'];
  return (result: { success: true } | { success: false; error: z.core.$ZodError }) => {
    if (result.success) return;
    const fields = issuesOf(result.error);
    throw new ApiError(400, code, describe(kind, fields), fields);
  };
}

// `application/json`, with or without parameters, and the `application/<vendor>+json` family.
const jsonMediaType = /^application\/([\w.-]+\+)?json$/i;

export function isJsonContentType(header: string | undefined): boolean {
  const mediaType = header?.split(';')[0]?.trim() ?? '';
  return jsonMediaType.test(mediaType);
}

/**
 * Validates the JSON body with `schema`. Refuses a body that is not declared JSON (415: a
 * cross-site form can send `text/plain` without a preflight), then one that does not parse
 * (400 `invalid_json`), then one whose fields are wrong (400 `invalid_body` naming them).
 */
export function jsonBody<S extends z.ZodType>(schema: S) {
  const validate = zValidator('json', schema, refuse('json'));
  const guarded: typeof validate = async (c, next) => {
    if (!isJsonContentType(c.req.header('content-type'))) {
      throw new ApiError(
        415,
        ErrorCode.unsupportedMediaType,
        'send the body as JSON with "Content-Type: application/json"',
      );
    }
    try {
      // Hono keeps the body, so the validator below reads it again without a second stream.
      await c.req.json();
    } catch {
      throw new ApiError(400, ErrorCode.invalidJson, 'request body must be JSON');
    }
    return validate(c, next);
  };
  return guarded;
}

/** Validates the query string with `schema`; a bad parameter is a 400 naming it. */
export function query<S extends z.ZodType>(schema: S) {
  return zValidator('query', schema, refuse('query'));
}

/** Path parameters are ids: short and plain, or the route does not exist. */
export function pathId(c: Context, name: string): string {
  const value = c.req.param(name);
  if (!value || !/^[A-Za-z0-9_.:-]{1,128}$/.test(value)) {
    throw new ApiError(404, ErrorCode.notFound, `no such ${name}`);
  }
  return value;
}
