// Play sessions: one channel per multiplayer session of a published story. Players are signed
// in; a seat is taken on joining (up to the session's cap) and kept if the player drops.
import { defineKind } from '../../channel/kind';
import type { PublicUser } from '../../protocol/core';
import type { PlaySessionInfo } from '../../protocol/stories';
import { playFrames } from '../../protocol/stories';

export const play = defineKind({
  kind: 'play',
  prefix: 'play',
  binding: 'PLAY_ROOM',
  frames: playFrames,
  connect: 'signed-in',
  write: 'signed-in',
  presence: 'members',
  reservedEvents: ['play.'],
});

/** The host starts and ends the session. */
export function isHost(session: Pick<PlaySessionInfo, 'host'>, user: PublicUser | null): boolean {
  return !!user && user.id === session.host.id;
}
