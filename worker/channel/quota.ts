// The platform-wide cap on one user's open sockets, across every channel. One small object per
// user holds a lease per open socket: a channel takes one before it accepts a signed-in socket
// and gives it back when the socket leaves. A lease whose release was lost (an object that
// stopped mid-close) is found out when the cap is reached: the quota asks the channels holding
// the leases which sockets they still have, and drops the rest before refusing anyone.
import { DurableObject } from 'cloudflare:workers';

export const DEFAULT_USER_CONNECTIONS = 50;

/** How a quota reaches the channel object holding a lease (its binding and name). */
export interface LeaseHolder {
  binding: string;
  channel: string;
}

type Lease = { cid: string; binding: string; channel: string; at: number };

export class ConnectionQuota extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS leases (cid TEXT PRIMARY KEY,
      binding TEXT NOT NULL, channel TEXT NOT NULL, at INTEGER NOT NULL)`);
  }

  /** Takes a lease for a socket about to be accepted; false when the user is at the cap. */
  async acquire(cid: string, holder: LeaseHolder, limit: number): Promise<boolean> {
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

  #count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM leases').one().n;
  }

  /** Asks each channel holding leases which of its sockets are still open. */
  async #dropStale(): Promise<void> {
    const leases = this.ctx.storage.sql
      .exec<Lease>('SELECT cid, binding, channel, at FROM leases')
      .toArray();
    const byChannel = new Map<string, Lease[]>();
    for (const lease of leases) {
      const key = `${lease.binding}\n${lease.channel}`;
      byChannel.set(key, [...(byChannel.get(key) ?? []), lease]);
    }
    for (const group of byChannel.values()) {
      const first = group[0];
      if (!first) continue;
      const namespace = (this.env as unknown as Record<string, DurableObjectNamespace>)[
        first.binding
      ];
      if (!namespace) continue;
      try {
        const stub = namespace.get(namespace.idFromName(first.channel)) as unknown as {
          holding(cids: string[]): Promise<string[]>;
        };
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

export function quotaOf(env: Env, userId: string) {
  return env.CONNECTION_QUOTA.get(env.CONNECTION_QUOTA.idFromName(`quota:${userId}`));
}
