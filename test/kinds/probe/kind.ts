// A test-only channel kind: the smallest kind that uses every part of the core (a message lane
// with its D1 mirror, a coalesced value, member presence with a tiny member limit, a refusal, a
// crash that is not a refusal),
// so core tests do not depend on any product kind. Bound only in the in-runtime tests.
import { z } from 'zod';
import { defineKind } from '../../../worker/channel/kind';
import type { ClientFrame, FrameMap } from '../../../worker/protocol/core';

export const probeFrames = {
  'note.post': z.object({ body: z.string().min(1).max(200) }).strict(),
  'note.delete': z.object({ noteId: z.string().min(1).max(64) }).strict(),
  'value.set': z.object({ value: z.number().int() }).strict(),
  refuse: z.object({}).strict(),
  crash: z.object({}).strict(),
} satisfies FrameMap;
export type ProbeClientFrame = ClientFrame<typeof probeFrames>;

export const probe = defineKind({
  kind: 'probe',
  prefix: 'probe',
  binding: 'PROBE_ROOM',
  frames: probeFrames,
  connect: 'anyone',
  write: 'signed-in',
  presence: 'members',
});

/** The probe's member limit: past three people, members get counts instead of each join. */
export const PROBE_MEMBER_LIMIT = 3;
export const PROBE_VALUE_WINDOW_MS = 200;
