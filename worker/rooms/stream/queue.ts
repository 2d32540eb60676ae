// A station's track queue (issue 11): the upcoming tracks, next first, kept in the DO's SQLite
// (so it survives eviction and restarts) and bounded at QUEUE_MAX_TRACKS. Every change is a
// sequenced event committed with it; advancing takes the head inside the same commit as the
// now-playing change (the StreamRoom's `queue.next`), so the two never disagree.
import { ChannelError } from '../../channel/errors';
import type { ChannelKit, Tx } from '../../channel/room';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import { QUEUE_MAX_TRACKS, type QueueAdd, type QueueItem } from '../../protocol/stream-extras';

export class TrackQueue {
  // Read once per wake, written through.
  #items: QueueItem[] | null = null;

  constructor(private readonly kit: ChannelKit) {
    kit.sql.exec(
      'CREATE TABLE IF NOT EXISTS stream_queue (id TEXT PRIMARY KEY, pos INTEGER NOT NULL, item TEXT NOT NULL)',
    );
  }

  get items(): QueueItem[] {
    this.#items ??= this.kit.sql
      .exec<{ item: string }>('SELECT item FROM stream_queue ORDER BY pos')
      .toArray()
      .map((r) => JSON.parse(r.item) as QueueItem);
    return this.#items;
  }

  add(tx: Tx, by: PublicUser, req: QueueAdd, now = Date.now()) {
    const items = this.items;
    if (items.length >= QUEUE_MAX_TRACKS) {
      throw new ChannelError(
        ErrorCode.queueFull,
        `the queue holds at most ${QUEUE_MAX_TRACKS} tracks`,
        409,
      );
    }
    const position = req.position ?? items.length;
    if (position > items.length) throw invalidPosition(position, items.length);
    const item: QueueItem = {
      id: crypto.randomUUID(),
      trackName: req.trackName,
      artistName: req.artistName ?? null,
      trackId: req.trackId ?? null,
      durationSeconds: req.durationSeconds ?? null,
      addedBy: by.id,
      addedAt: now,
    };
    const next = [...items];
    next.splice(position, 0, item);
    this.#save(next, item);
    const event = tx.publish({ type: 'queue.added', item, position });
    return { item, position, seq: event.seq };
  }

  remove(tx: Tx, itemId: string) {
    const at = this.#indexOf(itemId);
    const next = [...this.items];
    next.splice(at, 1);
    this.kit.sql.exec('DELETE FROM stream_queue WHERE id = ?', itemId);
    this.#save(next);
    const event = tx.publish({ type: 'queue.removed', itemId });
    return { itemId, seq: event.seq };
  }

  move(tx: Tx, itemId: string, position: number) {
    const at = this.#indexOf(itemId);
    const items = this.items;
    if (position >= items.length) throw invalidPosition(position, items.length - 1);
    const next = [...items];
    const [item] = next.splice(at, 1);
    if (item) next.splice(position, 0, item);
    this.#save(next);
    const event = tx.publish({ type: 'queue.moved', itemId, position });
    return { itemId, position, seq: event.seq };
  }

  clear(tx: Tx) {
    const removed = this.items.length;
    this.kit.sql.exec('DELETE FROM stream_queue');
    this.#items = [];
    const event = tx.publish({ type: 'queue.cleared' });
    return { removed, seq: event.seq };
  }

  /** Takes the head off the queue (the caller publishes the now-playing change that says so). */
  takeHead(): QueueItem {
    const [head, ...rest] = this.items;
    if (!head) throw new ChannelError(ErrorCode.queueEmpty, 'the queue is empty', 409);
    this.kit.sql.exec('DELETE FROM stream_queue WHERE id = ?', head.id);
    this.#save(rest);
    return head;
  }

  /** Re-reads from storage (after a rolled-back commit). */
  reload(): void {
    this.#items = null;
  }

  #indexOf(itemId: string): number {
    const at = this.items.findIndex((i) => i.id === itemId);
    if (at < 0) {
      throw new ChannelError(ErrorCode.queueItemNotFound, 'no such track in the queue', 404);
    }
    return at;
  }

  /** Writes the order (and a new item); positions are rewritten, which is cheap at ≤ 200. */
  #save(items: QueueItem[], added?: QueueItem): void {
    if (added) {
      this.kit.sql.exec(
        'INSERT INTO stream_queue (id, pos, item) VALUES (?, ?, ?)',
        added.id,
        items.indexOf(added),
        JSON.stringify(added),
      );
    }
    items.forEach((item, pos) => {
      this.kit.sql.exec(
        'UPDATE stream_queue SET pos = ? WHERE id = ? AND pos != ?',
        pos,
        item.id,
        pos,
      );
    });
    this.#items = items;
  }
}

function invalidPosition(position: number, max: number): ChannelError {
  return new ChannelError(
    ErrorCode.invalidPosition,
    `position ${position} is outside the queue: use 0 to ${Math.max(0, max)}`,
    422,
  );
}
