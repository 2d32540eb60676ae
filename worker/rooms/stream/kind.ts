// Stations: one channel per station with its live state, listener counts, chat and reactions
// (docs/stations.md). Anyone may listen; writing needs a signed-in user.
import { defineKind } from '../../channel/kind';
import type { PublicUser } from '../../protocol/core';
import { streamFrames } from '../../protocol/stream';

export const station = defineKind({
  kind: 'stream',
  prefix: 'station',
  binding: 'STREAM_ROOM',
  frames: streamFrames,
  connect: 'anyone',
  write: 'signed-in',
  presence: 'counts',
  reservedEvents: [
    'stream.',
    'chat.',
    'listeners',
    'reactions',
    'moderation',
    'poll.',
    'queue.',
    'analytics',
  ],
});

/** The station's owner and admins run its shows and moderate its chat (route and room alike). */
export function mayManageStation(station: { ownerId: string }, user: PublicUser | null): boolean {
  return user !== null && (user.role === 'admin' || user.id === station.ownerId);
}
