// Who is connected: every socket by connection id, by user (two tabs are one person) and by
// address (for the per-address cap). Rebuilt from the sockets' tags when the object wakes;
// a socket's attachment (its user's name and role, when it was last seen) is read only when
// something needs it, so waking an idle room with many sockets does not parse them all.
import type { PresenceMember, PublicUser } from '../protocol/core';
import { type BucketOptions, TokenBucket } from './rate-limit';

export interface Attachment {
  /** Connection id, shown to the client in its welcome. */
  cid: string;
  user: PublicUser | null;
  connectedAt: number;
  /** Last frame seen from this socket, written at most every few seconds (see `noteFrame`). */
  seenAt: number;
}

const CID = 'c:';
const USER = 'u:';
const ADDRESS = 'a:';

/** Tags set at accept time; the roster is rebuilt from them without reading attachments. */
export function tagsFor(att: Attachment, address: string): string[] {
  return [
    `${CID}${att.cid}`,
    att.user ? `${USER}${att.user.id}` : 'anon',
    `${ADDRESS}${address.slice(0, 200)}`,
  ];
}

export class Connection {
  /** Last activity seen while this instance is awake (0: none since the object woke). */
  lastSeen = 0;
  /** When this connection's heartbeat round trip was last counted (in memory only). */
  rttAt = 0;
  #att: Attachment | null;
  #bucket: TokenBucket | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly cid: string,
    readonly userId: string | null,
    readonly address: string,
    private readonly rate: BucketOptions,
    att: Attachment | null = null,
  ) {
    this.#att = att;
  }

  /** The socket's attachment, read from the runtime the first time it is needed. */
  get att(): Attachment {
    this.#att ??= this.ws.deserializeAttachment() as Attachment;
    return this.#att;
  }

  get user(): PublicUser | null {
    return this.userId === null ? null : this.att.user;
  }

  get bucket(): TokenBucket {
    this.#bucket ??= new TokenBucket(this.rate);
    return this.#bucket;
  }

  /** Records a frame; persists `seenAt` at most every `persistEveryMs`, so hibernation keeps it. */
  noteFrame(now: number, persistEveryMs: number): void {
    this.lastSeen = now;
    const att = this.att;
    if (now - att.seenAt < persistEveryMs) return;
    att.seenAt = now;
    try {
      this.ws.serializeAttachment(att);
    } catch {
      // socket closing
    }
  }
}

export class Roster {
  readonly #conns = new Map<string, Connection>();
  readonly #bySocket = new WeakMap<WebSocket, Connection>();
  readonly #byUser = new Map<string, Set<string>>();
  readonly #byAddress = new Map<string, number>();

  constructor(private readonly rate: BucketOptions) {}

  /** Adds a socket known by its tags; `firstOfUser` is true when it is its user's only one. */
  add(
    ws: WebSocket,
    tags: readonly string[],
    att: Attachment | null = null,
  ): { conn: Connection; firstOfUser: boolean } | null {
    let cid: string | null = null;
    let userId: string | null = null;
    let address = '';
    for (const tag of tags) {
      if (tag.startsWith(CID)) cid = tag.slice(CID.length);
      else if (tag.startsWith(USER)) userId = tag.slice(USER.length);
      else if (tag.startsWith(ADDRESS)) address = tag.slice(ADDRESS.length);
    }
    if (!cid) {
      // A socket accepted before connection ids were tags (an earlier release): its attachment
      // still names it, so it keeps being counted, swept and broadcast to after a deploy.
      const old = (att ?? ws.deserializeAttachment()) as Partial<Attachment> | null;
      if (!old?.cid) return null;
      cid = old.cid;
      userId = old.user?.id ?? null;
      att = {
        cid,
        user: old.user ?? null,
        connectedAt: old.connectedAt ?? Date.now(),
        seenAt: old.seenAt ?? old.connectedAt ?? Date.now(),
      };
    }
    const conn = new Connection(ws, cid, userId, address, this.rate, att);
    this.#conns.set(cid, conn);
    this.#bySocket.set(ws, conn);
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
    let firstOfUser = false;
    if (userId) {
      const set = this.#byUser.get(userId) ?? new Set<string>();
      set.add(cid);
      this.#byUser.set(userId, set);
      firstOfUser = set.size === 1;
    }
    return { conn, firstOfUser };
  }

  /** The connection behind a socket, if this room accepted it and it is still on the roster. */
  find(ws: WebSocket): Connection | undefined {
    return this.#bySocket.get(ws);
  }

  /** Removes a connection once; null when it was already gone. */
  remove(conn: Connection): { lastOfUser: boolean } | null {
    if (!this.#conns.delete(conn.cid)) return null;
    this.#bySocket.delete(conn.ws);
    const left = (this.#byAddress.get(conn.address) ?? 1) - 1;
    if (left > 0) this.#byAddress.set(conn.address, left);
    else this.#byAddress.delete(conn.address);
    if (!conn.userId) return { lastOfUser: false };
    const set = this.#byUser.get(conn.userId);
    set?.delete(conn.cid);
    if (set && set.size === 0) {
      this.#byUser.delete(conn.userId);
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

  connectionsOfUser(userId: string): number {
    return this.#byUser.get(userId)?.size ?? 0;
  }

  connectionsFrom(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  counts(): { users: number; connections: number } {
    return { users: this.#byUser.size, connections: this.#conns.size };
  }

  /** Up to `limit` members (one entry per user, with their number of connections). */
  members(limit: number): PresenceMember[] {
    const members: PresenceMember[] = [];
    for (const cids of this.#byUser.values()) {
      if (members.length >= limit) break;
      const first = this.#conns.get(cids.values().next().value as string);
      const user = first?.user;
      if (user) members.push({ user, connections: cids.size });
    }
    return members;
  }
}
