// Turns a raw client message into a validated frame of the kind's map, or the error that
// answers it. The core owns `type`, `id` and `ping`; a kind's schemas see only their fields.
// Size and rate are the room's business; this is only about shape.
import { ErrorCode, type FrameMap, MAX_FRAME_BYTES, MAX_RTT_MS, requestId } from '../protocol/core';
import { ChannelError } from './errors';

export type ParsedFrame = { type: string } & Record<string, unknown>;
/** `rtt`: the client's last heartbeat round trip in ms, which any frame may carry (docs/protocol.md). */
export type Parsed =
  | { frame: ParsedFrame; id?: string; rtt?: number }
  | { error: ChannelError; id?: string; rtt?: number };

/** UTF-8 size of a message, encoding only when the string could be near the limit. */
export function frameBytes(message: string | ArrayBuffer): number {
  if (typeof message !== 'string') return message.byteLength;
  return message.length * 3 <= MAX_FRAME_BYTES
    ? message.length
    : new TextEncoder().encode(message).byteLength;
}

export function parseFrame(message: string | ArrayBuffer, frames: FrameMap): Parsed {
  if (typeof message !== 'string') {
    return { error: new ChannelError(ErrorCode.binaryNotSupported, 'send JSON text frames') };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return { error: new ChannelError(ErrorCode.malformedJson, 'frame is not valid JSON') };
  }
  if (!isRecord(raw)) {
    return { error: invalid([{ path: 'type', message: 'must be a string' }]) };
  }
  const { type, id: rawId, rtt: rawRtt, ...fields } = raw;
  const id = requestId.safeParse(rawId).success ? (rawId as string) : undefined;
  if (typeof type !== 'string') {
    return { error: invalid([{ path: 'type', message: 'must be a string' }]), id };
  }
  if (rawId !== undefined && id === undefined) {
    return { error: invalid([{ path: 'id', message: 'must be a string of 1–64 characters' }]) };
  }
  if (rawRtt !== undefined && !isRtt(rawRtt)) {
    const message = `must be a whole number of milliseconds, 0–${MAX_RTT_MS}`;
    return { error: invalid([{ path: 'rtt', message }]), id };
  }
  const rtt = rawRtt as number | undefined;
  const parsed = parseFields(type, fields, frames, id);
  return rtt === undefined ? parsed : { ...parsed, rtt };
}

function parseFields(
  type: string,
  fields: Record<string, unknown>,
  frames: FrameMap,
  id: string | undefined,
): Parsed {
  if (type === 'ping') {
    if (Object.keys(fields).length > 0) {
      return { error: invalid([{ path: '', message: 'ping takes no fields' }]), id };
    }
    return { frame: { type }, id };
  }
  const schema = Object.hasOwn(frames, type) ? frames[type] : undefined;
  if (!schema) {
    const message = `unknown frame type "${type.slice(0, 64)}"`;
    return { error: new ChannelError(ErrorCode.unknownType, message), id };
  }
  const parsed = schema.safeParse(fields);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.'),
      message: i.message,
    }));
    return { error: invalid(issues), id };
  }
  return { frame: { ...parsed.data, type }, id };
}

/** A heartbeat round trip a client may report (docs/protocol.md, "Heartbeat"). */
export function isRtt(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_RTT_MS;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
