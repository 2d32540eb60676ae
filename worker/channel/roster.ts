// Who is connected: every socket by connection id, and by user, so two tabs are one person.
// Rebuilt from the hibernated sockets' attachments whenever the object starts.
import type { PresenceMember, PublicUser } from '../protocol/core';
import { type BucketOptions, TokenBucket } from './rate-limit';

export interface Attachment {
  /** Connection id, shown to the client in its welcome. */
  cid: string;
  user: PublicUser | null;
  connectedAt: number;
}

export interface Connection {
  readonly ws: WebSocket;
  readonly att: Attachment;
  lastSeen: number;
  bucket: TokenBucket;
}

export class Roster {
  readonly #conns = new Map<string, Connection>();
  readonly #bySocket = new WeakMap<WebSocket, Connection>();
  readonly #byUser = new Map<string, Set<string>>();

  constructor(private readonly rate: BucketOptions) {}

  /** Adds a socket; `firstOfUser` is true when it is its user's only connection. */
  add(ws: WebSocket, att: Attachment, now: number): { conn: Connection; firstOfUser: boolean } {
    const conn: Connection = { ws, att, lastSeen: now, bucket: new TokenBucket(this.rate, now) };
    this.#conns.set(att.cid, conn);
    this.#bySocket.set(ws, conn);
    let firstOfUser = false;
    if (att.user) {
      const set = this.#byUser.get(att.user.id) ?? new Set<string>();
      set.add(att.cid);
      this.#byUser.set(att.user.id, set);
      firstOfUser = set.size === 1;
    }
    return { conn, firstOfUser };
  }

  /** The connection behind a socket, if this room accepted it and it is still on the roster. */
  find(ws: WebSocket): Connection | undefined {
    const known = this.#bySocket.get(ws);
    if (known) return known;
    const att = ws.deserializeAttachment() as Attachment | null;
    const conn = att?.cid ? this.#conns.get(att.cid) : undefined;
    if (conn) this.#bySocket.set(ws, conn);
    return conn;
  }

  /** Removes a connection once; null when it was already gone. */
  remove(conn: Connection): { lastOfUser: boolean } | null {
    if (!this.#conns.delete(conn.att.cid)) return null;
    const user = conn.att.user;
    if (!user) return { lastOfUser: false };
    const set = this.#byUser.get(user.id);
    set?.delete(conn.att.cid);
    if (set && set.size === 0) {
      this.#byUser.delete(user.id);
      return { lastOfUser: true };
    }
    return { lastOfUser: false };
  }

  all(): IterableIterator<Connection> {
    return this.#conns.values();
  }

  ofUser(userId: string): Connection[] {
    return [...(this.#byUser.get(userId) ?? [])].flatMap((cid) => this.#conns.get(cid) ?? []);
  }

  counts(): { users: number; connections: number } {
    return { users: this.#byUser.size, connections: this.#conns.size };
  }

  members(): PresenceMember[] {
    const members: PresenceMember[] = [];
    for (const cids of this.#byUser.values()) {
      const first = this.#conns.get(cids.values().next().value as string);
      if (first?.att.user) members.push({ user: first.att.user, connections: cids.size });
    }
    return members;
  }
}
