// Presence shards (docs/presence.md): each user's online status lives in one of
// PRESENCE_SHARDS objects, chosen by a hash of the user id. No object holds the whole platform's
// presence: a watch or a batch read asks only the shards of the ids it names, and the platform
// count is the sum of each shard's count.
import type { PresenceStatuses } from '../../protocol/presence';
import type { PresenceShard } from './PresenceShard';

export const DEFAULT_PRESENCE_SHARDS = 64;

export function shardCount(env: Env): number {
  const n = Number(env.PRESENCE_SHARDS || DEFAULT_PRESENCE_SHARDS);
  return Number.isInteger(n) && n >= 1 && n <= 4096 ? n : DEFAULT_PRESENCE_SHARDS;
}

/** FNV-1a of the id: stable across deploys, spread evenly. */
export function shardOf(env: Env, userId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shardCount(env);
}

export function shardStub(env: Env, index: number): DurableObjectStub<PresenceShard> {
  return env.PRESENCE_SHARD.get(env.PRESENCE_SHARD.idFromName(`presence:${index}`));
}

/** Ids grouped by the shard that holds them. */
export function byShard(env: Env, ids: readonly string[]): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const id of new Set(ids)) {
    const shard = shardOf(env, id);
    const list = groups.get(shard);
    if (list) list.push(id);
    else groups.set(shard, [id]);
  }
  return groups;
}

/** The current status of each id (one call per shard involved, in parallel). */
export async function statusesOf(env: Env, ids: readonly string[]): Promise<PresenceStatuses> {
  const parts = await Promise.all(
    [...byShard(env, ids)].map(([shard, list]) => shardStub(env, shard).statuses(list)),
  );
  return Object.assign({}, ...parts) as PresenceStatuses;
}

/** Users online on the whole platform: each shard's count, summed. */
export async function onlineCount(env: Env): Promise<{ online: number; shards: number }> {
  const n = shardCount(env);
  const counts = await Promise.all(
    Array.from({ length: n }, (_, i) => shardStub(env, i).onlineCount()),
  );
  return { online: counts.reduce((a, b) => a + b, 0), shards: n };
}

/**
 * The shard's input, called by the user's channel (one object per user, so one writer): the
 * user's device count went 0→1 (`online: true`) or 1→0 (`online: false`, also when the last
 * device vanished and the heartbeat sweep closed it). `version` grows with every report of this
 * user, so a late delivery never undoes a newer one.
 */
export function reportPresence(
  env: Env,
  userId: string,
  online: boolean,
  version: number,
  at = Date.now(),
): Promise<void> {
  return shardStub(env, shardOf(env, userId)).report(userId, online, version, at);
}
