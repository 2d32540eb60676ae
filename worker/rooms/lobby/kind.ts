// The lobby: one platform-wide, read-only channel with the live directory (docs/stations.md).
import { defineKind } from '../../channel/kind';
import { lobbyFrames } from '../../protocol/lobby';

export const lobby = defineKind({
  kind: 'lobby',
  prefix: 'lobby',
  singleton: 'lobby',
  binding: 'LOBBY',
  frames: lobbyFrames,
  connect: 'anyone',
  write: 'nobody',
  presence: 'counts',
  reservedEvents: ['station.', 'listeners', 'admin.'],
});
