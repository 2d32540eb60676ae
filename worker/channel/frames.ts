// Turns a raw client message into a validated frame of the kind's union, or the error that
// answers it. Size and rate are the room's business; this is only about shape.
import type { z } from 'zod';
import { ErrorCode, MAX_FRAME_BYTES } from '../protocol/core';
import { ChannelError } from './errors';

export type Parsed<Frame> = { frame: Frame; id?: string } | { error: ChannelError; id?: string };

/** UTF-8 size of a message, encoding only when the string could be near the limit. */
export function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== 'string') return message.byteLength;
  return message.length * 3 <= MAX_FRAME_BYTES
    ? message.length
    : new TextEncoder().encode(message).byteLength;
}

export function parseFrame<Frame>(
  message: string | ArrayBuffer,
  frameTypes: ReadonlySet<string>,
  schema: z.ZodType<Frame>,
): Parsed<Frame> {
  if (typeof message !== 'string') {
    return { error: new ChannelError(ErrorCode.binaryNotSupported, 'send JSON text frames') };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return { error: new ChannelError(ErrorCode.malformedJson, 'frame is not valid JSON') };
  }
  const id = requestIdOf(raw);
  const type = isRecord(raw) ? raw.type : undefined;
  if (typeof type !== 'string') {
    return { error: invalid([{ path: 'type', message: 'must be a string' }]), id };
  }
  if (!frameTypes.has(type)) {
    const message = `unknown frame type "${type.slice(0, 64)}"`;
    return { error: new ChannelError(ErrorCode.unknownType, message), id };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.'),
      message: i.message,
    }));
    return { error: invalid(issues), id };
  }
  return { frame: parsed.data, id };
}

/** The literal `type` of every option of a discriminated union, for the unknown-type check. */
export function frameTypesOf(union: {
  options: readonly { shape: { type: { value: unknown } } }[];
}) {
  return union.options.map((o) => String(o.shape.type.value));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requestIdOf(raw: unknown): string | undefined {
  if (!isRecord(raw)) return undefined;
  const id = raw.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 64 ? id : undefined;
}

function invalid(issues: { path: string; message: string }[]): ChannelError {
  const first = issues[0];
  const where = first?.path ? ` at "${first.path}"` : '';
  return new ChannelError(
    ErrorCode.invalidFrame,
    `invalid frame${where}: ${first?.message ?? 'bad shape'}`,
    400,
    issues,
  );
}
