// Every channel kind a channel name can name, for the server API (publish to any channel, read
// its presence and history). The broadcast relays and root are not here: announcements and
// market values have their own calls.
import { comments } from '../rooms/comments/kind';
import { event } from '../rooms/event/kind';
import { lobby } from '../rooms/lobby/kind';
import { play } from '../rooms/play/kind';
import { story } from '../rooms/story/kind';
import { station } from '../rooms/stream/kind';
import { userChannel } from '../rooms/user/kind';

const KINDS = [comments, event, lobby, play, story, station, userChannel] as const;
type AnyKind = (typeof KINDS)[number];

const ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** The kind and id a channel name stands for, or null if it names none. */
export function channelKind(name: string): { kind: AnyKind; id: string } | null {
  for (const kind of KINDS) {
    if (kind.singleton) {
      if (name === kind.singleton) return { kind, id: '' };
      continue;
    }
    const prefix = `${kind.prefix}:`;
    if (name.startsWith(prefix) && ID.test(name.slice(prefix.length))) {
      return { kind, id: name.slice(prefix.length) };
    }
  }
  return null;
}
