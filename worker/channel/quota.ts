// The platform-wide cap on one user's open sockets, across every channel. One small object per
// user holds a lease per open socket: a channel takes one before it accepts a signed-in socket
// and gives it back when the socket leaves. A lease whose release was lost (an object that
// stopped mid-close) is found out when the cap is reached: the quota asks the channels holding
// the leases which sockets they still have, and drops the rest before refusing anyone.
//
// It also carries "log out everywhere" to the user's sockets: `revoke(at)` remembers the moment
// (a socket whose token was issued before it gets no lease) and asks every channel holding a
// lease to close the user's sockets with 4401 at once; a channel it cannot reach is asked again
// by the quota's alarm, so no socket outlives a revocation by more than a minute.
import { DurableObject } from 'cloudflare:workers';
import { CloseCode } from '../protocol/core';

export const DEFAULT_USER_CONNECTIONS = 50;

/** How a quota reaches the channel object holding a lease (its binding and name). */
export interface LeaseHolder {
  binding: string;
  channel: string;
}

type Lease = { cid: string; binding: string; channel: string; at: number };

/** How soon a channel that could not be reached during a revocation is asked again. */
const REVOKE_RETRY_MS = 15_000;

interface ChannelStub {
  holding(cids: string[]): Promise<string[]>;
  disconnectUser(userId: string, code: number, reason: string): Promise<number>;
}

export class ConnectionQuota extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS leases (cid TEXT PRIMARY KEY,
      binding TEXT NOT NULL, channel TEXT NOT NULL, at INTEGER NOT NULL)`);
    ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS quota_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)',
    );
  }

  /**
   * Takes a lease for a socket about to be accepted: true, false when the user is at the cap, or
   * `revoked` when the socket's token was issued before the user logged out everywhere.
   */
  async acquire(
    cid: string,
    holder: LeaseHolder,
    limit: number,
    issuedAt: number | null = null,
  ): Promise<boolean | 'revoked'> {
    const revokedAt = this.#revokedAt();
    if (revokedAt !== null && (issuedAt === null || issuedAt < revokedAt)) return 'revoked';
    if (this.#count() >= limit) await this.#dropStale();
    if (this.#count() >= limit) return false;
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO leases (cid, binding, channel, at) VALUES (?, ?, ?, ?)',
      cid,
      holder.binding,
      holder.channel,
      Date.now(),
    );
    return true;
  }

  release(cid: string): void {
    this.ctx.storage.sql.exec('DELETE FROM leases WHERE cid = ?', cid);
  }

  count(): number {
    return this.#count();
  }

  /**
   * Logs the user out of every channel: remembers `at` (later sockets with older tokens get no
   * lease) and closes the user's sockets wherever a lease says they are. Returns how many closed.
   */
  async revoke(at: number): Promise<number> {
    const before = this.#revokedAt();
    if (before === null || at > before) {
      this.ctx.storage.sql.exec(
        "INSERT OR REPLACE INTO quota_meta (key, value) VALUES ('revokedAt', ?)",
        at,
      );
    }
    return this.#closeLeased();
  }

  override async alarm(): Promise<void> {
    await this.#closeLeased();
  }

  #revokedAt(): number | null {
    const row = this.ctx.storage.sql
      .exec<{ value: number }>("SELECT value FROM quota_meta WHERE key = 'revokedAt'")
      .toArray()[0];
    return row?.value ?? null;
  }

  /** Closes the user's sockets on every channel holding a lease taken before the revocation. */
  async #closeLeased(): Promise<number> {
    const revokedAt = this.#revokedAt();
    if (revokedAt === null) return 0;
    const userId = (this.ctx.id.name ?? '').replace(/^quota:/, '');
    const leases = this.ctx.storage.sql
      .exec<Lease>('SELECT cid, binding, channel, at FROM leases WHERE at <= ?', revokedAt)
      .toArray();
    let closed = 0;
    let failed = false;
    for (const group of groupByChannel(leases)) {
      const first = group[0];
      const stub = first && this.#stub(first);
      if (!first || !stub) continue;
      try {
        closed += await stub.disconnectUser(userId, CloseCode.unauthenticated, 'session revoked');
        for (const lease of group) this.release(lease.cid);
      } catch (err) {
        failed = true;
        console.error(`ConnectionQuota: could not close sockets on ${first.channel}`, err);
      }
    }
    if (failed) await this.ctx.storage.setAlarm(Date.now() + REVOKE_RETRY_MS);
    return closed;
  }

  #stub(lease: Lease): ChannelStub | null {
    const namespace = (this.env as unknown as Record<string, DurableObjectNamespace>)[
      lease.binding
    ];
    if (!namespace) return null;
    return namespace.get(namespace.idFromName(lease.channel)) as unknown as ChannelStub;
  }

  #count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM leases').one().n;
  }

  /** Asks each channel holding leases which of its sockets are still open. */
  async #dropStale(): Promise<void> {
    const leases = this.ctx.storage.sql
      .exec<Lease>('SELECT cid, binding, channel, at FROM leases')
      .toArray();
    for (const group of groupByChannel(leases)) {
      const first = group[0];
      const stub = first && this.#stub(first);
      if (!first || !stub) continue;
      try {
        const held = new Set(await stub.holding(group.map((l) => l.cid)));
        for (const lease of group) {
          if (!held.has(lease.cid)) this.release(lease.cid);
        }
      } catch (err) {
        console.error(`ConnectionQuota: could not check ${first.channel}`, err);
      }
    }
  }
}

function groupByChannel(leases: Lease[]): Lease[][] {
  const byChannel = new Map<string, Lease[]>();
  for (const lease of leases) {
    const key = `${lease.binding}\n${lease.channel}`;
    byChannel.set(key, [...(byChannel.get(key) ?? []), lease]);
  }
  return [...byChannel.values()];
}

export function quotaOf(env: Env, userId: string) {
  return env.CONNECTION_QUOTA.get(env.CONNECTION_QUOTA.idFromName(`quota:${userId}`));
}
