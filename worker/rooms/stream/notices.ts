// What a station's changes tell the users they concern (docs/notifications.md, "Sources"): a
// go-live reaches everyone who favourited the station through the notification queue; a mute
// or ban reaches the user it restricts. Added inside the change's own commit.
import type { Tx } from '../../channel/room';
import type { ModerationAction } from '../../protocol/stream';
import { fanOut, notifyInCommit } from '../user/kind';

export function wentLive(
  tx: Tx,
  session: { id: string; stationId: string; showTitle: string; hostName: string | null },
) {
  fanOut(
    tx,
    { kind: 'favourites', stationId: session.stationId },
    {
      kind: 'station.live',
      title: `Live now: ${session.showTitle}`,
      body: session.hostName ? `${session.hostName} is on air.` : 'A station you follow is on air.',
      link: `/stations/${session.stationId}`,
      data: { stationId: session.stationId, sessionId: session.id },
      key: `station.live:${session.id}`,
    },
  );
}

export function restricted(
  tx: Tx,
  station: { id: string; name: string },
  userId: string,
  action: ModerationAction,
  until: number | null,
  reason: string | null,
  at: number,
) {
  if (action !== 'mute' && action !== 'ban') return;
  const what = action === 'mute' ? 'muted' : 'banned';
  const span =
    until === null ? 'until a moderator lifts it' : `until ${new Date(until).toISOString()}`;
  notifyInCommit(tx, userId, {
    kind: action === 'mute' ? 'chat.muted' : 'chat.banned',
    title: `You were ${what} in ${station.name}'s chat`,
    body: reason ? `${span}. Reason: ${reason}` : `${span}.`,
    link: `/stations/${station.id}`,
    data: { stationId: station.id, until, reason },
    // One per restriction (a retried request is answered from the ledger, not committed again).
    key: `chat.${what}:${station.id}:${at}`,
  });
}
