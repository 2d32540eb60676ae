// /health for load balancers: healthy while D1 and the metrics hub answer and failures stay under
// the threshold; degraded (503, with reasons) when failures pass it, and healthy again once they
// leave the window; a D1 or hub that does not answer is a reason too.
import { runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import { metricsHub } from '../../worker/channel/metrics';
import { checkHealth } from '../../worker/routes/health';
import { probe } from '../kinds/probe/kind';
import type { ProbeRoom } from '../kinds/probe/ProbeRoom';
import { FrameQueue } from '../support/frames';
import { api, BASE, env, register, unique } from './helpers';

const stub = (id: string) => probe.stub(env, id) as DurableObjectStub<ProbeRoom>;

beforeAll(async () => {
  await env.DB.exec(
    'CREATE TABLE IF NOT EXISTS probe_notes (id TEXT PRIMARY KEY, room TEXT NOT NULL, user_id TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER, deleted_by TEXT)',
  );
});

async function join(id: string) {
  const user = await register();
  const request = new Request(`${BASE}/ws/probe/${id}`, { headers: { upgrade: 'websocket' } });
  const res = await stub(id).fetch(forwardToChannel(request, user));
  if (!res.webSocket) throw new Error(`refused: ${res.status}`);
  res.webSocket.accept();
  const socket = new FrameQueue(res.webSocket);
  await socket.next('welcome');
  return socket;
}

async function health() {
  const res = await api('/health');
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('health', () => {
  it('answers 200 healthy while everything answers and nothing fails', async () => {
    expect(await health()).toEqual({ status: 200, body: { status: 'healthy' } });
  });

  it('stays healthy when a few frames fail among many', async () => {
    const id = unique('health');
    const sockets = [await join(id), await join(id), await join(id)];
    for (const [i, s] of sockets.entries()) {
      for (let n = 0; n < 15; n++) s.send({ type: 'note.post', id: `n${i}-${n}`, body: 'fine' });
    }
    sockets[0]?.send({ type: 'crash', id: 'c1' });
    await expect.poll(() => sockets[0]?.all('error').length).toBe(1);
    for (const s of sockets) await expect.poll(() => s.all('ack').length).toBe(15);
    await stub(id).flushMetrics();
    expect((await health()).status).toBe(200);
    for (const s of sockets) s.close();
  });

  it('turns degraded when failures pass the threshold, and recovers when they leave the window', async () => {
    const id = unique('health');
    const socket = await join(id);
    for (let i = 0; i < 10; i++) socket.send({ type: 'crash', id: `c${i}` });
    await expect.poll(() => socket.all('error').length).toBe(10);
    await stub(id).flushMetrics();
    const degraded = await health();
    expect(degraded.status).toBe(503);
    expect(degraded.body).toMatchObject({
      status: 'degraded',
      reasons: [{ check: 'failures', message: expect.stringContaining('over the last 5 minutes') }],
    });
    // Five minutes later (the hub's minute buckets moved back) the failures are out of the window.
    await runInDurableObject(metricsHub(env), (_hub, state) => {
      state.storage.sql.exec('UPDATE hub_minutes SET minute = minute - 5');
    });
    expect(await health()).toEqual({ status: 200, body: { status: 'healthy' } });
    socket.close();
  });

  it('names D1 when it fails, and the metrics hub when it does not answer', async () => {
    const brokenDb = {
      prepare() {
        throw new Error('D1 is down (test)');
      },
    } as unknown as D1Database;
    const silentHub = {
      idFromName: (name: string) => env.METRICS_HUB.idFromName(name),
      get: () => ({ health: () => new Promise(() => {}), reportRequests: async () => {} }),
    } as unknown as Env['METRICS_HUB'];
    const reasons = await checkHealth({ ...env, DB: brokenDb, METRICS_HUB: silentHub });
    expect(reasons.map((r) => r.check).sort()).toEqual(['d1', 'metrics']);
    expect(reasons.find((r) => r.check === 'metrics')?.message).toContain('did not answer within');
    expect(reasons.find((r) => r.check === 'd1')?.message).not.toContain('D1 is down (test)');
  });
});
