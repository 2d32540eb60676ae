// The message lane: authored messages (comments, station chat) that are stored, sequenced,
// broadcast, soft-deleted by their author or a manager, and paged for history — one path for
// REST and sockets. The object keeps the newest messages in its own SQLite, so the welcome and
// the first pages are current without D1; every change reaches D1 through the outbox, and
// older pages come from D1. docs/architecture.md ("The message lane").
import { ErrorCode, type PublicUser } from '../protocol/core';
import { ChannelError } from './errors';
import type { ChannelKit, Tx } from './room';

export interface LaneMessage {
  id: string;
  user: PublicUser;
  body: string;
  createdAt: number;
}

export interface StoredAuthor {
  userId: string;
  deletedAt: number | null;
}

export interface LanePage<Msg> {
  messages: Msg[];
  nextCursor: string | null;
}

/** A kind's D1 side of a lane (the SQL lives in worker/db/). Writers must be idempotent. */
export interface LaneStore<Msg extends LaneMessage> {
  /** The message carries no channel id (the channel is known); `channelId` names it for D1. */
  insert(d1: D1Database, channelId: string, message: Msg): D1PreparedStatement[];
  remove(d1: D1Database, deletion: { id: string; by: string; at: number }): D1PreparedStatement[];
  /** The author and deletion state of a message older than the object keeps. */
  find(d1: D1Database, channelId: string, id: string): Promise<StoredAuthor | null>;
  /** A page of live messages, newest first, strictly older than `before` (`<createdAt>.<id>`). */
  page(d1: D1Database, channelId: string, limit: number, before?: string): Promise<LanePage<Msg>>;
}

export interface LaneSpec<Msg extends LaneMessage, Created, Deleted> {
  /** Unique within the object; names the outbox ops too (`<name>.insert`, `<name>.delete`). */
  name: string;
  channelId: string;
  /** How many messages the welcome shows (and the object keeps at least). */
  pageSize: number;
  store: LaneStore<Msg>;
  created(message: Msg): Created;
  deleted(id: string, by: string): Deleted;
}

/** How many messages the object keeps beyond the welcome's page before D1 serves them alone. */
const KEEP_FACTOR = 4;

export class MessageLane<
  Msg extends LaneMessage,
  Created extends { type: string },
  Deleted extends { type: string },
> {
  readonly #keep: number;

  constructor(
    private readonly kit: ChannelKit,
    private readonly spec: LaneSpec<Msg, Created, Deleted>,
  ) {
    this.#keep = spec.pageSize * KEEP_FACTOR;
    kit.sql.exec(`CREATE TABLE IF NOT EXISTS lane_messages (lane TEXT NOT NULL, id TEXT NOT NULL,
      created_at INTEGER NOT NULL, user_id TEXT NOT NULL, message TEXT,
      deleted_at INTEGER, deleted_by TEXT, PRIMARY KEY (lane, id))`);
    kit.sql.exec(
      'CREATE INDEX IF NOT EXISTS lane_messages_order ON lane_messages (lane, created_at, id)',
    );
    kit.outbox.register<{ channelId: string; message: Msg }>(`${spec.name}.insert`, (d1, row) =>
      spec.store.insert(d1, row.channelId, row.message),
    );
    kit.outbox.register<{ id: string; by: string; at: number }>(`${spec.name}.delete`, (d1, d) =>
      spec.store.remove(d1, d),
    );
  }

  /**
   * Brings history written before this object kept its own (or by an older version) into the
   * object once; afterwards the lane never reads D1 for its welcome.
   */
  async seed(): Promise<void> {
    if (this.#meta('seeded') === '1') return;
    const page = await this.spec.store.page(this.kit.env.DB, this.spec.channelId, this.#keep);
    this.kit.transaction(() => {
      for (const m of page.messages) {
        this.kit.sql.exec(
          `INSERT OR IGNORE INTO lane_messages (lane, id, created_at, user_id, message)
           VALUES (?, ?, ?, ?, ?)`,
          this.spec.name,
          m.id,
          m.createdAt,
          m.user.id,
          JSON.stringify(m),
        );
      }
      // Everything D1 has fits in the object: pages never need D1 until the lane is trimmed.
      this.#setMeta('complete', page.nextCursor === null ? '1' : '0');
      this.#setMeta('seeded', '1');
    });
  }

  /** The newest messages, oldest first (the welcome's list). */
  recent(): Msg[] {
    return this.#rows(this.spec.pageSize, undefined).reverse();
  }

  /** Stores, sequences and broadcasts a message in the caller's commit; D1 follows. */
  post(tx: Tx, message: Msg): { seq: number } {
    this.kit.sql.exec(
      `INSERT INTO lane_messages (lane, id, created_at, user_id, message) VALUES (?, ?, ?, ?, ?)`,
      this.spec.name,
      message.id,
      message.createdAt,
      message.user.id,
      JSON.stringify(message),
    );
    const event = tx.publish(this.spec.created(message));
    tx.outbox(`${this.spec.name}.insert`, { channelId: this.spec.channelId, message });
    this.#trim();
    return { seq: event.seq };
  }

  /**
   * Who wrote a message, from the object if it keeps it, else from D1. Null when there is no
   * such live message. Read before `remove`, which checks again inside its commit.
   */
  async author(id: string): Promise<string | null> {
    const local = this.#local(id);
    if (local) return local.deleted_at === null ? local.user_id : null;
    const stored = await this.spec.store.find(this.kit.env.DB, this.spec.channelId, id);
    return stored && stored.deletedAt === null ? stored.userId : null;
  }

  /** Soft-deletes a message in the caller's commit (refuses one that is gone meanwhile). */
  remove(tx: Tx, id: string, authorId: string, by: string, at = Date.now()): { seq: number } {
    const local = this.#local(id);
    if (local && local.deleted_at !== null) {
      throw new ChannelError(ErrorCode.notFound, 'no such message', 404);
    }
    if (local) {
      this.kit.sql.exec(
        'UPDATE lane_messages SET deleted_at = ?, deleted_by = ? WHERE lane = ? AND id = ?',
        at,
        by,
        this.spec.name,
        id,
      );
    } else {
      // Older than what the object keeps: a tombstone, so a second delete is refused and pages
      // from a lagging D1 skip it.
      this.kit.sql.exec(
        `INSERT INTO lane_messages (lane, id, created_at, user_id, message, deleted_at, deleted_by)
         VALUES (?, ?, 0, ?, NULL, ?, ?)`,
        this.spec.name,
        id,
        authorId,
        at,
        by,
      );
    }
    const event = tx.publish(this.spec.deleted(id, by));
    tx.outbox(`${this.spec.name}.delete`, { id, by, at });
    return { seq: event.seq };
  }

  /** A page of live messages, newest first: from the object, then from D1 for older ones. */
  async page(limit: number, before?: string): Promise<LanePage<Msg>> {
    const local = this.#rows(limit + 1, before);
    if (local.length > limit || this.#meta('complete') === '1') {
      return pageOf(local, limit);
    }
    const last = local.at(-1);
    const cursor = last ? `${last.createdAt}.${last.id}` : before;
    const older = await this.spec.store.page(
      this.kit.env.DB,
      this.spec.channelId,
      limit + 1 - local.length,
      cursor,
    );
    const gone = this.#tombstones();
    const merged = [...local, ...older.messages.filter((m) => !gone.has(m.id))];
    if (older.nextCursor !== null && merged.length <= limit) {
      const tail = merged.at(-1);
      return { messages: merged, nextCursor: tail ? `${tail.createdAt}.${tail.id}` : null };
    }
    return pageOf(merged, limit);
  }

  #rows(limit: number, before: string | undefined): Msg[] {
    const [at, id] = before ? (before.split('.') as [string, string]) : [null, null];
    const rows = this.kit.sql
      .exec<{ message: string }>(
        `SELECT message FROM lane_messages
         WHERE lane = ? AND deleted_at IS NULL AND message IS NOT NULL
           AND (? IS NULL OR created_at < ? OR (created_at = ? AND id < ?))
         ORDER BY created_at DESC, id DESC LIMIT ?`,
        this.spec.name,
        at,
        Number(at),
        Number(at),
        id,
        limit,
      )
      .toArray();
    return rows.map((r) => JSON.parse(r.message) as Msg);
  }

  #local(id: string) {
    return this.kit.sql
      .exec<{ user_id: string; deleted_at: number | null }>(
        'SELECT user_id, deleted_at FROM lane_messages WHERE lane = ? AND id = ?',
        this.spec.name,
        id,
      )
      .toArray()[0];
  }

  #tombstones(): Set<string> {
    return new Set(
      this.kit.sql
        .exec<{ id: string }>(
          'SELECT id FROM lane_messages WHERE lane = ? AND deleted_at IS NOT NULL',
          this.spec.name,
        )
        .toArray()
        .map((r) => r.id),
    );
  }

  /** Keeps the newest messages (D1 has the rest once the outbox is written). */
  #trim(): void {
    const cut = this.kit.sql
      .exec<{ created_at: number }>(
        `SELECT created_at FROM lane_messages WHERE lane = ? AND message IS NOT NULL
         ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?`,
        this.spec.name,
        this.#keep,
      )
      .toArray()[0];
    if (!cut) return;
    this.kit.sql.exec(
      'DELETE FROM lane_messages WHERE lane = ? AND message IS NOT NULL AND created_at <= ?',
      this.spec.name,
      cut.created_at,
    );
    if (this.#meta('complete') !== '0') this.#setMeta('complete', '0');
  }

  #meta(key: string): string | undefined {
    return this.kit.log.getMeta(`lane:${this.spec.name}:${key}`);
  }

  #setMeta(key: string, value: string): void {
    this.kit.log.setMeta(`lane:${this.spec.name}:${key}`, value);
  }
}

function pageOf<Msg extends LaneMessage>(rows: Msg[], limit: number): LanePage<Msg> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    messages: page,
    nextCursor: rows.length > limit && last ? `${last.createdAt}.${last.id}` : null,
  };
}
