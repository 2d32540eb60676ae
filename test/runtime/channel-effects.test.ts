// Outbox effects (worker/channel/outbox.ts), through the probe kind: a row that calls something
// other than D1 (another object, a queue) runs after the commit, after the D1 rows before it,
// is retried until it succeeds, and never runs for a commit that rolled back. The notification
// sources are built on it (docs/notifications.md).
import { runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { probe } from '../kinds/probe/kind';
import { effectFailures, effectLog, type ProbeRoom } from '../kinds/probe/ProbeRoom';
import { env, unique } from './helpers';

beforeAll(async () => {
  await env.DB.exec(
    'CREATE TABLE IF NOT EXISTS probe_notes (id TEXT PRIMARY KEY, room TEXT NOT NULL, user_id TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER, deleted_by TEXT)',
  );
});

const stub = (id: string) => probe.stub(env, id) as DurableObjectStub<ProbeRoom>;
const calls = (label: string) => effectLog.filter((e) => e.label === label);

async function flushed(id: string): Promise<number> {
  return runInDurableObject(stub(id), async (room: ProbeRoom) => {
    await room.flushOutbox();
    return (await room.stats()).outboxPending;
  });
}

describe('outbox effects', () => {
  it('run once after the commit, after the D1 rows committed before them', async () => {
    const id = unique('effects');
    const label = unique('after-d1');
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.commitWithEffect(label, true));
    expect(await flushed(id)).toBe(0);
    expect(calls(label)).toEqual([{ label, noteInD1: true }]);
  });

  it('are retried until they succeed, and the rows after them wait', async () => {
    const id = unique('effects');
    const label = unique('flaky');
    effectFailures.set(label, 2);
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.commitWithEffect(label, false));
    const later = unique('later');
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.commitWithEffect(later, false));
    // Each flush retries from the failing row (the alarm would do it with backoff).
    let pending = 1;
    for (let i = 0; i < 5 && pending > 0; i++) pending = await flushed(id);
    expect(pending).toBe(0);
    expect(calls(label)).toHaveLength(3);
    // A failing effect stops its batch, so the row after it ran once, after the last attempt.
    expect(calls(later)).toHaveLength(1);
    const order = effectLog.map((e) => e.label).filter((l) => l === label || l === later);
    expect(order.at(-1)).toBe(later);
  });

  it('never run for a commit that rolled back', async () => {
    const id = unique('effects');
    const label = unique('rolled-back');
    const { outbox } = await runInDurableObject(stub(id), (room: ProbeRoom) =>
      room.commitWithEffect(label, true, true),
    );
    expect(outbox).toBe(0);
    expect(await flushed(id)).toBe(0);
    expect(calls(label)).toEqual([]);
  });
});
