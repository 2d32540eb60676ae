import type { Context } from 'hono';
import type { z } from 'zod';
import { ErrorCode } from '../protocol/core';
import { ApiError, type FieldIssue } from './errors';

function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(body)',
    message: i.message,
  }));
}

function describe(kind: string, fields: FieldIssue[]): string {
  const first = fields[0];
  return first ? `invalid ${kind}: "${first.path}" ${first.message}` : `invalid ${kind}`;
}

/** Parses the JSON body with `schema`; a malformed body is a 400 naming the field. */
export async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new ApiError(400, ErrorCode.invalidJson, 'request body must be JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const fields = issuesOf(parsed.error);
    throw new ApiError(400, ErrorCode.invalidBody, describe('body', fields), fields);
  }
  return parsed.data;
}

export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) {
    const fields = issuesOf(parsed.error);
    throw new ApiError(400, ErrorCode.invalidQuery, describe('query', fields), fields);
  }
  return parsed.data;
}

/** Path parameters are ids: short and plain, or the route does not exist. */
export function pathId(c: Context, name: string): string {
  const value = c.req.param(name);
  if (!value || !/^[A-Za-z0-9_.:-]{1,128}$/.test(value)) {
    throw new ApiError(404, ErrorCode.notFound, `no such ${name}`);
  }
  return value;
}
