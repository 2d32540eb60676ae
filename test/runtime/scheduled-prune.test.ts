// The cron trigger (wrangler.toml `[triggers]`) prunes Idempotency-Key answers past 24 h, in
// every scope, through the worker's `scheduled` handler.
import { createScheduledController } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../worker/index';
import { env, unique } from './helpers';

const HOUR = 60 * 60 * 1000;

async function storeAnswer(scope: string, key: string, createdAt: number) {
  await env.DB.prepare(
    `INSERT INTO idempotency_keys
       (user_id, scope, key, request_hash, response_status, response_body, created_at)
     VALUES (?, ?, ?, 'h', 201, '{}', ?)`,
  )
    .bind('user-prune', scope, key, createdAt)
    .run();
}

async function keysLeft(keys: string[]): Promise<string[]> {
  const { results } = await env.DB.prepare(
    `SELECT key FROM idempotency_keys WHERE key IN (${keys.map(() => '?').join(', ')})`,
  )
    .bind(...keys)
    .all<{ key: string }>();
  return results.map((r) => r.key).sort();
}

describe('the scheduled handler', () => {
  it('deletes answers older than 24 hours in every scope and keeps younger ones', async () => {
    const now = Date.now();
    const old = [unique('old-booking'), unique('old-route'), unique('old-claim')];
    const young = [unique('young-booking'), unique('young-route')];
    await storeAnswer('booking', old[0] as string, now - 25 * HOUR);
    await storeAnswer('route:POST /api/stations', old[1] as string, now - 24 * HOUR - 1);
    await storeAnswer('route:PUT /api/stations/:stationId/favourite', old[2] as string, 0);
    await storeAnswer('booking', young[0] as string, now - 23 * HOUR);
    await storeAnswer('route:POST /api/stations', young[1] as string, now);

    await worker.scheduled(
      createScheduledController({ scheduledTime: now, cron: '17 * * * *' }),
      env,
    );

    expect(await keysLeft([...old, ...young])).toEqual([...young].sort());
  });
});
