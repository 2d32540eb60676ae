// The channel core on its own, through the test-only probe kind (test/kinds/probe): the one
// commit point (log, dedupe answer and outbox in one transaction; D1 after, retried until it
// takes), request ids with one meaning, idle rooms that close their ghosts, door caps and
// bounded presence.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { forwardToChannel } from '../../worker/channel/identity';
import { TokenBucket } from '../../worker/channel/rate-limit';
import type { AckFrame, ErrorFrame, WelcomeFrame } from '../../worker/protocol/core';
import { probe } from '../kinds/probe/kind';
import type { ProbeRoom, ProbeSnapshot } from '../kinds/probe/ProbeRoom';
import { FrameQueue } from '../support/frames';
import { BASE, env, register, type TestUser, unique } from './helpers';

beforeAll(async () => {
  await env.DB.exec(
    'CREATE TABLE IF NOT EXISTS probe_notes (id TEXT PRIMARY KEY, room TEXT NOT NULL, user_id TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER, deleted_by TEXT)',
  );
});

const stub = (id: string) => probe.stub(env, id) as DurableObjectStub<ProbeRoom>;

function open(id: string, user: TestUser | null = null, query: Record<string, string> = {}) {
  const url = new URL(`${BASE}/ws/probe/${id}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const request = new Request(url, { headers: { upgrade: 'websocket' } });
  const who = user ? { id: user.id, name: user.name, role: user.role } : null;
  return stub(id).fetch(forwardToChannel(request, who));
}

async function join(id: string, user: TestUser | null = null, query: Record<string, string> = {}) {
  const res = await open(id, user, query);
  if (res.status !== 101 || !res.webSocket) throw new Error(`refused: ${res.status}`);
  res.webSocket.accept();
  const socket = new FrameQueue(res.webSocket);
  const welcome = await socket.next<WelcomeFrame<ProbeSnapshot>>('welcome');
  return { socket, welcome };
}

/** Ages every socket's attachment as if it connected and last spoke two minutes ago, and makes
 * the ghost sweep due, so the next alarm runs it on a freshly woken instance. */
async function silentForTwoMinutes(id: string): Promise<void> {
  await runInDurableObject(stub(id), (_room: ProbeRoom, state) => {
    for (const ws of state.getWebSockets()) {
      const att = ws.deserializeAttachment() as { connectedAt: number; seenAt: number };
      const past = Date.now() - 120_000;
      ws.serializeAttachment({ ...att, connectedAt: past, seenAt: past });
    }
    state.storage.sql.exec("UPDATE channel_tasks SET at = 0 WHERE name = 'sweep'");
  });
}

async function notesInD1(room: string) {
  const { results } = await env.DB.prepare(
    'SELECT id, body, deleted_at FROM probe_notes WHERE room = ? ORDER BY created_at',
  )
    .bind(room)
    .all<{ id: string; body: string; deleted_at: number | null }>();
  return results;
}

describe('the one commit point', () => {
  it('acknowledges a note once it is in the object, and writes it to D1 after, exactly once', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'note.post', id: 'n1', body: 'first' });
    const ack = await socket.next<AckFrame<{ note: { id: string } }>>('ack');
    expect(ack).toMatchObject({ id: 'n1', seq: 1 });
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.flushOutbox());
    expect(await notesInD1(id)).toEqual([
      { id: ack.result?.note.id, body: 'first', deleted_at: null },
    ]);
    expect((await stub(id).stats()).outboxPending).toBe(0);
    socket.close();
  });

  it('keeps an acknowledged note while D1 is down and writes it when the alarm retries', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.setD1Failing(true));
    socket.send({ type: 'note.post', id: 'n1', body: 'while down' });
    await socket.next('ack');
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.flushOutbox());
    expect(await notesInD1(id)).toEqual([]);
    expect((await stub(id).stats()).outboxPending).toBe(1);
    // The history is current from the object meanwhile.
    const late = await join(id);
    expect(late.welcome.snapshot.notes.map((n) => n.body)).toEqual(['while down']);
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.setD1Failing(false));
    // The retry is the object's own alarm, a second or so later.
    await expect
      .poll(async () => (await notesInD1(id)).map((n) => n.body), { timeout: 5000 })
      .toEqual(['while down']);
    expect((await stub(id).stats()).outboxPending).toBe(0);
    socket.close();
    late.socket.close();
  });

  it('writes an unwritten note when the object starts again after an eviction', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.setD1Failing(true));
    socket.send({ type: 'note.post', id: 'n1', body: 'survives' });
    await socket.next('ack');
    await evictDurableObject(stub(id));
    // A fresh instance finds the outbox row and writes it (its D1 works again).
    await stub(id).stats();
    await expect.poll(async () => (await notesInD1(id)).map((n) => n.body)).toEqual(['survives']);
  });

  it('leaves no event, answer or outbox row behind when a commit fails halfway', async () => {
    const id = unique('probe');
    const result = await runInDurableObject(stub(id), (room: ProbeRoom) => room.failingCommit());
    expect(result).toEqual({ seq: 0, outbox: 0 });
  });

  it('applies a re-sent outbox row once (D1 writes are idempotent)', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'note.post', id: 'n1', body: 'once' });
    await socket.next('ack');
    // Replay the row as if the object stopped between D1's commit and the outbox delete.
    await runInDurableObject(stub(id), async (room: ProbeRoom, state) => {
      await room.flushOutbox();
      const sql = state.storage.sql;
      const note = sql.exec<{ message: string }>('SELECT message FROM lane_messages').one().message;
      sql.exec(
        'INSERT INTO channel_outbox (op, payload, at) VALUES (?, ?, ?)',
        'notes.insert',
        note,
        Date.now(),
      );
      await room.flushOutbox();
    });
    expect(await notesInD1(id)).toHaveLength(1);
    socket.close();
  });
});

describe('request ids', () => {
  it('answers a repeated id with the first ack, stores nothing twice, also after an eviction', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'note.post', id: 'same', body: 'hello' });
    const first = await socket.next<AckFrame>('ack');
    await evictDurableObject(stub(id));
    socket.close();
    const again = await join(id, user);
    again.socket.send({ type: 'note.post', id: 'same', body: 'hello' });
    const second = await again.socket.next<AckFrame>('ack');
    expect(second).toEqual({ ...first, duplicate: true });
    expect(again.welcome.seq).toBe(1);
    await runInDurableObject(stub(id), (room: ProbeRoom) => room.flushOutbox());
    expect(await notesInD1(id)).toHaveLength(1);
    again.socket.close();
  });

  it('refuses a repeated id carrying a different request with idempotency_key_reused', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'note.post', id: 'k', body: 'one' });
    await socket.next('ack');
    socket.send({ type: 'note.post', id: 'k', body: 'two' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'k',
      code: 'idempotency_key_reused',
    });
    expect((await join(id)).welcome.snapshot.notes.map((n) => n.body)).toEqual(['one']);
    socket.close();
  });

  it('keeps answers for 24 hours: a day-old id still replays, an older one is new again', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'note.post', id: 'old', body: 'aged' });
    await socket.next('ack');
    const age = (ms: number) =>
      runInDurableObject(stub(id), (_room: ProbeRoom, state) => {
        state.storage.sql.exec('UPDATE channel_requests SET at = ?', Date.now() - ms);
      });
    await age(23 * 3600_000);
    socket.send({ type: 'note.post', id: 'old', body: 'aged' });
    expect(await socket.next<AckFrame>('ack')).toMatchObject({ seq: 1, duplicate: true });
    await age(25 * 3600_000);
    socket.send({ type: 'note.post', id: 'old', body: 'aged' });
    expect(await socket.next<AckFrame>('ack')).toMatchObject({ seq: 2 });
    socket.close();
  });

  it('answers refusals without storing them, so the same id can be retried', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'refuse', id: 'r' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ id: 'r', code: 'refused' });
    socket.send({ type: 'refuse', id: 'r' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({ id: 'r', code: 'refused' });
    socket.close();
  });

  it('answers ping in the core for every kind, with or without an id', async () => {
    const { socket } = await join(unique('probe'));
    socket.send({ type: 'ping', id: 'p' });
    expect(await socket.next('pong')).toEqual({ type: 'pong', id: 'p' });
    socket.close();
  });

  it('lets anonymous sockets read but not write', async () => {
    const { socket } = await join(unique('probe'));
    socket.send({ type: 'note.post', id: 'a', body: 'hi' });
    expect(await socket.next<ErrorFrame>('error')).toMatchObject({
      id: 'a',
      code: 'auth_required',
    });
    socket.close();
  });
});

describe('idle rooms', () => {
  it('closes a socket that stayed silent across a wake-up (the sweep after hibernation)', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    await silentForTwoMinutes(id);
    await evictDurableObject(stub(id));
    // The sweep alarm wakes a fresh instance; the wake itself must not count as a sign of life.
    expect(await runDurableObjectAlarm(stub(id))).toBe(true);
    expect((await socket.closed()).code).toBe(4408);
    expect((await stub(id).stats()).connections).toBe(0);
  });

  it('keeps a socket that only sends heartbeats', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    await silentForTwoMinutes(id);
    socket.send('{"type":"ping"}'); // answered by the runtime, not the object
    await socket.next('pong');
    await evictDurableObject(stub(id));
    expect(await runDurableObjectAlarm(stub(id))).toBe(true);
    expect((await stub(id).stats()).connections).toBe(1);
    socket.close();
  });
});

describe('door caps', () => {
  it('refuses one user an 11th socket on one channel with 429 too_many_connections', async () => {
    const user = await register();
    const id = unique('probe');
    const open10 = [];
    for (let i = 0; i < 10; i++) open10.push(await join(id, user));
    const refused = await open(id, user);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: 'too_many_connections' } });
    open10[0]?.socket.close();
    await open10[0]?.socket.closed();
    const again = await join(id, user);
    for (const s of [...open10.slice(1), again]) s.socket.close();
  });

  it('refuses sockets past the per-address cap on one channel', async () => {
    const id = unique('probe');
    const sockets = [];
    for (let i = 0; i < 40; i++) sockets.push(await join(id));
    const refused = await open(id);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: { code: 'too_many_connections' } });
    for (const s of sockets) s.socket.close();
  });

  it('caps one user across the platform, and frees a lease when a socket leaves', async () => {
    const user = await register();
    const sockets = [];
    // MAX_CONNECTIONS_PER_USER is 20 in the tests: 10 on each of two channels.
    for (const id of [unique('probe'), unique('probe')]) {
      for (let i = 0; i < 10; i++) sockets.push(await join(id, user));
    }
    const third = unique('probe');
    const refused = await open(third, user);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({
      error: {
        code: 'too_many_connections',
        message: expect.stringMatching(/across the platform/),
      },
    });
    sockets[0]?.socket.close();
    await sockets[0]?.socket.closed();
    await expect.poll(async () => (await open(third, user)).status).toBe(101);
    for (const s of sockets.slice(1)) s.socket.close();
  });
});

describe('bounded presence', () => {
  it('announces each join up to the member limit, then only coalesced counts', async () => {
    const id = unique('probe');
    const users = await Promise.all([register(), register(), register(), register(), register()]);
    const first = await join(id, users[0]);
    const joined = [];
    for (const u of users.slice(1, 3)) joined.push(await join(id, u));
    await first.socket.next((f) => f.type === 'presence.joined' && f.users === 3);
    // The fourth and fifth users take the room past its limit of three members.
    joined.push(await join(id, users[3]));
    joined.push(await join(id, users[4]));
    const counts = await first.socket.next((f) => f.type === 'presence.counts' && f.users === 5);
    expect(counts).toMatchObject({ users: 5, connections: 5 });
    expect(
      first.socket.all((f) => f.type === 'presence.joined' && (f.users as number) > 3),
    ).toEqual([]);
    const late = await join(id);
    expect(late.welcome.snapshot.presence).toMatchObject({ users: 5, membersTruncated: true });
    expect(late.welcome.snapshot.presence.members).toHaveLength(3);
    for (const s of [first, ...joined, late]) s.socket.close();
  });
});

describe('coalesced values', () => {
  it('sends the first change at once and folds a burst into one frame with the last value', async () => {
    const user = await register();
    const id = unique('probe');
    const { socket } = await join(id, user);
    socket.send({ type: 'value.set', value: 1 });
    expect(await socket.next('value')).toEqual({ type: 'value', value: 1 });
    for (let v = 2; v <= 10; v++) socket.send({ type: 'value.set', value: v });
    await socket.next((f) => f.type === 'value' && f.value === 10, 3000);
    expect(socket.all('value').length).toBeLessThanOrEqual(3);
    socket.close();
  });
});

describe('batches under load', () => {
  it('sends each event alone at low rates', async () => {
    const user = await register();
    const id = unique('probe');
    const watcher = await join(id);
    const { socket } = await join(id, user);
    for (let i = 0; i < 4; i++) {
      socket.send({ type: 'note.post', id: `slow-${i}`, body: `slow ${i}` });
      await socket.next((f) => f.type === 'ack' && f.id === `slow-${i}`);
      await new Promise((r) => setTimeout(r, 80));
    }
    await watcher.socket.next((f) => f.type === 'note.posted' && f.seq === 4);
    expect(watcher.socket.batches).toBe(0);
    watcher.socket.close();
    socket.close();
  });

  it('sends a burst as batches carrying every event once, in seq order, acks after their events', async () => {
    const users = await Promise.all([register(), register(), register()]);
    const id = unique('probe');
    const watcher = await join(id);
    const writers = [];
    for (const u of users) writers.push(await join(id, u));
    writers.forEach((w, n) => {
      for (let i = 0; i < 10; i++)
        w.socket.send({ type: 'note.post', id: `b${i}`, body: `${n}-${i}` });
    });
    await watcher.socket.next((f) => f.type === 'note.posted' && f.seq === 30, 10_000);
    const seqs = watcher.socket.all('note.posted').map((f) => f.seq);
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(watcher.socket.batches).toBeGreaterThan(0);
    for (const w of writers) {
      await w.socket.next((f) => f.type === 'ack' && f.id === 'b9', 10_000);
      // Every ack comes after the event it answers.
      const order = w.socket.received;
      for (const ack of order.filter((f) => f.type === 'ack')) {
        const eventAt = order.findIndex((f) => f.type === 'note.posted' && f.seq === ack.seq);
        expect(eventAt).toBeGreaterThanOrEqual(0);
        expect(eventAt).toBeLessThan(order.indexOf(ack));
      }
    }
    for (const s of [watcher, ...writers]) s.socket.close();
  });
});

describe('rate limits judge the client, not the room', () => {
  const options = { capacity: 20, refillPerSecond: 10, maxWarnings: 5 };

  it('never refuses a client at 8 frames/s whose frames the busy room handled late and bunched', () => {
    const bucket = new TokenBucket(options, 0);
    // The client sent 8 frames a second for 10 s; the room was busy from t = 0 and handled
    // all 80 only at t = 10 s, back to back.
    const results = Array.from({ length: 80 }, () => bucket.take(10_000, 10_000));
    expect(results.filter((r) => r !== 'ok')).toEqual([]);
  });

  it('still warns and then closes a flood, however busy the room is', () => {
    // Connected at t = 5 s into a busy spell and sending a frame every millisecond.
    const bucket = new TokenBucket(options, 5000);
    const results = Array.from({ length: 60 }, (_, i) => bucket.take(5000 + i, 5000 + i));
    expect(results.slice(0, 20).every((r) => r === 'ok')).toBe(true);
    expect(results).toContain('close');
  });
});
