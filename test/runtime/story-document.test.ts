// A story's live document: co-authors' edits converge and reach every watcher; readers only
// watch; bad updates are refused and change nothing; the document survives eviction; the sync
// handshake; compaction; awareness is ephemeral; the body reaches D1 after edits settle.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import type { ErrorFrame } from '../../worker/protocol/core';
import {
  type DocUpdateEvent,
  type LiveDocument,
  MAX_DOCUMENT_BYTES,
  MAX_UPDATE_BYTES,
  type StoryChangedEvent,
  type StoryWelcome,
  toBase64,
} from '../../worker/protocol/stories';
import type { StoryRoom } from '../../worker/rooms/story/StoryRoom';
import { api, connect, drained, env, register } from './helpers';
import {
  addCoauthor,
  createStory,
  publish,
  Replica,
  sendUpdate,
  storyRoom,
} from './story-fixtures';

async function live(storyId: string, token: string): Promise<LiveDocument> {
  const res = await api(`/api/stories/${storyId}/live`, { token });
  expect(res.status).toBe(200);
  return (await res.json()) as LiveDocument;
}

/** A story with an owner and a co-author, published so readers may watch. */
async function setup(body = '') {
  const [owner, coauthor, reader] = await Promise.all([register(), register(), register()]);
  const story = await createStory(owner, { body });
  await addCoauthor(owner, story.id, coauthor.id);
  await publish(owner, story.id);
  return { owner, coauthor, reader, story };
}

/** Connects and brings a replica up to date with the sync handshake. */
async function joined(storyId: string, token: string | undefined, replica = new Replica()) {
  const socket = await connect(`/ws/stories/${storyId}`, token ? { token } : {});
  const welcome = await socket.next<StoryWelcome>('welcome');
  if (token) {
    socket.send({ type: 'doc.sync', stateVector: replica.stateVector() });
    replica.apply((await socket.next<{ update: string }>('doc.synced')).update);
  } else if (welcome.snapshot.document) {
    replica.apply(welcome.snapshot.document);
  }
  return { socket, welcome, replica };
}

describe('the live document', () => {
  it('starts from the body the story was created with', async () => {
    const { owner, story } = await setup('Once upon a time');
    const { welcome, replica, socket } = await joined(story.id, owner.token);
    expect(replica.text).toBe('Once upon a time');
    expect(welcome.snapshot).toMatchObject({ canEdit: true, story: { storyId: story.id } });
    socket.close();
  });

  it('converges when two co-authors type in the same sentence at the same moment', async () => {
    const { owner, coauthor, reader, story } = await setup('The cat sat.');
    const a = await joined(story.id, owner.token);
    const b = await joined(story.id, coauthor.token);
    const r = await joined(story.id, reader.token);
    const ua = a.replica.edit((t) => t.insert(7, ' black'));
    const ub = b.replica.edit((t) => t.insert(7, ' fat'));
    const [acka, ackb] = await Promise.all([
      sendUpdate(a.socket, 'a1', ua),
      sendUpdate(b.socket, 'b1', ub),
    ]);
    expect(acka).toMatchObject({ type: 'ack', result: { applied: true } });
    expect(ackb).toMatchObject({ type: 'ack', result: { applied: true } });
    for (const peer of [a, b, r]) {
      for (const e of peer.socket.all<DocUpdateEvent>('doc.update')) peer.replica.apply(e.update);
    }
    // Each peer hears the other's update (and its own, which changes nothing).
    await r.socket.next('doc.update');
    await r.socket.next('doc.update');
    for (const peer of [a, b, r]) {
      for (const e of peer.socket.all<DocUpdateEvent>('doc.update')) peer.replica.apply(e.update);
    }
    const server = await live(story.id, owner.token);
    expect(a.replica.text).toBe(server.body);
    expect(b.replica.text).toBe(server.body);
    expect(r.replica.text).toBe(server.body);
    expect(server.body).toMatch(/^The cat( black| fat){2} sat\.$/);
    for (const peer of [a, b, r]) peer.socket.close();
  });

  it('lets readers watch but never edit, anonymous readers included', async () => {
    const { owner, reader, story } = await setup('Hello');
    const w = await joined(story.id, reader.token);
    expect(w.welcome.snapshot.canEdit).toBe(false);
    const attempt = w.replica.edit((t) => t.insert(0, 'X'));
    const refused = await sendUpdate(w.socket, 'r1', attempt);
    expect(refused).toMatchObject({ type: 'error', code: 'forbidden' });
    w.socket.send({
      type: 'doc.awareness',
      id: 'aw',
      update: toBase64(new Uint8Array([1, 1, 1, 2, 123, 125])),
    });
    expect(await w.socket.next<ErrorFrame>((f) => f.id === 'aw')).toMatchObject({
      code: 'forbidden',
    });
    const anonymous = await joined(story.id, undefined);
    expect(anonymous.replica.text).toBe('Hello');
    anonymous.socket.send({ type: 'doc.update', id: 'x', update: attempt });
    expect(await anonymous.socket.next<ErrorFrame>((f) => f.id === 'x')).toMatchObject({
      code: 'auth_required',
    });
    // The owner's edit reaches both watchers.
    const o = await joined(story.id, owner.token);
    await sendUpdate(
      o.socket,
      'o1',
      o.replica.edit((t) => t.insert(5, '!')),
    );
    anonymous.replica.apply((await anonymous.socket.next<DocUpdateEvent>('doc.update')).update);
    expect(anonymous.replica.text).toBe('Hello!');
    expect((await live(story.id, owner.token)).body).toBe('Hello!');
    for (const s of [w.socket, anonymous.socket, o.socket]) s.close();
  });

  it('refuses bad updates with an error and changes nothing', async () => {
    const { owner, story } = await setup('Fixed');
    const o = await joined(story.id, owner.token);
    const before = await live(story.id, owner.token);
    const cases: [string, unknown, string][] = [
      ['not base64', 'not base64!', 'invalid_frame'],
      [
        'not a Yjs update',
        toBase64(new Uint8Array([255, 255, 255, 255, 1, 2, 3])),
        'invalid_update',
      ],
      ['too large', toBase64(new Uint8Array(MAX_UPDATE_BYTES + 10)), 'update_too_large'],
      ['wrong type', 42, 'invalid_frame'],
    ];
    for (const [name, update, code] of cases) {
      o.socket.send({ type: 'doc.update', id: name.replaceAll(' ', '-'), update });
      const answer = await o.socket.next<ErrorFrame>((f) => f.id === name.replaceAll(' ', '-'));
      expect(answer, name).toMatchObject({ type: 'error', code });
    }
    // An update over the limit inside a frame under 64 KiB: `update_too_large`.
    const big = new Replica();
    const large = big.edit((t) => t.insert(0, 'x'.repeat(MAX_UPDATE_BYTES + 100)));
    expect(large.length).toBeGreaterThan(MAX_UPDATE_BYTES);
    o.socket.send({ type: 'doc.update', id: 'large', update: large.slice(0, 4 * 15_000) });
    expect((await o.socket.next<ErrorFrame>((f) => f.id === 'large')).code).toBe('invalid_update');
    const after = await live(story.id, owner.token);
    expect(after).toEqual(before);
    expect(o.socket.closeEvent).toBeNull();
    expect(o.socket.all('doc.update')).toHaveLength(0);
    o.socket.close();
  });

  it('refuses an update that would grow the document past its limit, and keeps the rest', async () => {
    const { owner, story } = await setup();
    const o = await joined(story.id, owner.token);
    const chunk = 'x'.repeat(40_000);
    let accepted = 0;
    for (let i = 0; i < 20; i++) {
      const answer = await sendUpdate(
        o.socket,
        `big${i}`,
        o.replica.edit((t) => t.insert(0, chunk)),
      );
      if (answer.type === 'error') {
        expect(answer.code).toBe('document_too_large');
        break;
      }
      accepted += 1;
    }
    expect(accepted * chunk.length).toBeLessThanOrEqual(MAX_DOCUMENT_BYTES);
    expect(accepted).toBeGreaterThan(10);
    expect((await live(story.id, owner.token)).body.length).toBe(accepted * chunk.length);
    o.socket.close();
  });

  it('acknowledges a repeated update without storing or sending it again', async () => {
    const { owner, story } = await setup();
    const o = await joined(story.id, owner.token);
    const update = o.replica.edit((t) => t.insert(0, 'once'));
    const seq = o.welcome.seq + 1;
    const first = await sendUpdate(o.socket, 'u1', update);
    expect(first).toMatchObject({ seq, result: { applied: true } });
    const same = await sendUpdate(o.socket, 'u1', update);
    expect(same).toMatchObject({ seq, duplicate: true });
    const again = await sendUpdate(o.socket, 'u2', update);
    expect(again).toMatchObject({ type: 'ack', result: { applied: false } });
    expect(again.seq).toBeUndefined();
    expect((await live(story.id, owner.token)).seq).toBe(seq);
    o.socket.close();
  });

  it('keeps every edit across eviction, and a reconnecting client resumes with exactly what it missed', async () => {
    const { owner, coauthor, story } = await setup('Start.');
    const a = await joined(story.id, owner.token);
    const b = await joined(story.id, coauthor.token);
    await sendUpdate(
      a.socket,
      'a1',
      a.replica.edit((t) => t.insert(6, ' One.')),
    );
    const first = await b.socket.next<DocUpdateEvent>('doc.update');
    b.replica.apply(first.update);
    b.socket.close();
    await sendUpdate(
      a.socket,
      'a2',
      a.replica.edit((t) => t.insert(11, ' Two.')),
    );
    await sendUpdate(
      a.socket,
      'a3',
      a.replica.edit((t) => t.insert(16, ' Three.')),
    );
    await evictDurableObject(storyRoom(story.id));
    expect((await live(story.id, owner.token)).body).toBe('Start. One. Two. Three.');
    const back = await connect(`/ws/stories/${story.id}`, {
      token: coauthor.token,
      query: { since: first.seq, epoch: b.welcome.epoch },
    });
    const welcome = await back.next<StoryWelcome>('welcome');
    expect(welcome.recovery).toEqual({ requested: true, recovered: true, missed: 2 });
    const missed = [
      await back.next<DocUpdateEvent>('doc.update'),
      await back.next<DocUpdateEvent>('doc.update'),
    ];
    expect(missed.map((e) => e.seq)).toEqual([first.seq + 1, first.seq + 2]);
    for (const e of missed) b.replica.apply(e.update);
    expect(b.replica.text).toBe('Start. One. Two. Three.');
    back.close();
    a.socket.close();
  });

  it('brings a client offline past the log back with the sync handshake, and takes its own offline edits', async () => {
    const { owner, coauthor, story } = await setup('Base.');
    const a = await joined(story.id, owner.token);
    const b = await joined(story.id, coauthor.token);
    b.socket.close();
    // While b is away: a edits; b edits its own copy offline.
    await sendUpdate(
      a.socket,
      'a1',
      a.replica.edit((t) => t.insert(5, ' From A.')),
    );
    b.replica.edit((t) => t.insert(0, 'From B. '));
    // b comes back without resuming: sync step 1 gets it A's edit; then it pushes what the
    // server's state vector lacks (its offline edit).
    const back = await joined(story.id, coauthor.token, b.replica);
    const sv = Uint8Array.from(atob(back.welcome.snapshot.stateVector), (c) => c.charCodeAt(0));
    const mine = toBase64(Y.encodeStateAsUpdate(b.replica.doc, sv));
    await sendUpdate(back.socket, 'push', mine);
    a.replica.apply(
      (await a.socket.next<DocUpdateEvent>((f) => f.type === 'doc.update' && f.by === coauthor.id))
        .update,
    );
    const server = await live(story.id, owner.token);
    expect(server.body).toBe('From B. Base. From A.');
    expect(a.replica.text).toBe(server.body);
    expect(b.replica.text).toBe(server.body);
    a.socket.close();
    back.socket.close();
  });

  it('compacts its stored updates into one state without changing the document', async () => {
    const { owner, story } = await setup();
    const o = await joined(story.id, owner.token);
    for (let i = 0; i < 30; i++) {
      await sendUpdate(
        o.socket,
        `u${i}`,
        o.replica.edit((t) => t.insert(t.length, `${i} `)),
      );
    }
    const stub = storyRoom(story.id);
    const before = await runInDurableObject(stub, (room: StoryRoom) => room.storage());
    expect(before.updates).toBe(30);
    const text = (await live(story.id, owner.token)).body;
    await runInDurableObject(stub, (room: StoryRoom) => room.saveBody());
    const after = await runInDurableObject(stub, (room: StoryRoom) => room.storage());
    expect(after.updates).toBe(0);
    await evictDurableObject(stub);
    expect((await live(story.id, owner.token)).body).toBe(text);
    // A client resumes across the compaction from the log, which compaction leaves alone.
    const back = await connect(`/ws/stories/${story.id}`, {
      token: owner.token,
      query: { since: o.welcome.seq + 25, epoch: o.welcome.epoch },
    });
    expect((await back.next<StoryWelcome>('welcome')).recovery).toMatchObject({
      recovered: true,
      missed: 5,
    });
    back.close();
    o.socket.close();
  });

  it('saves the body to D1 once edits settle, on the alarm', async () => {
    const { owner, story } = await setup('v0');
    const o = await joined(story.id, owner.token);
    await sendUpdate(
      o.socket,
      'u1',
      o.replica.edit((t) => t.insert(2, ' v1')),
    );
    await sendUpdate(
      o.socket,
      'u2',
      o.replica.edit((t) => t.insert(5, ' v2')),
    );
    const row = () =>
      env.DB.prepare('SELECT body, body_seq FROM stories WHERE id = ?')
        .bind(story.id)
        .first<{ body: string; body_seq: number }>();
    expect((await row())?.body).toBe('v0');
    const tasks = await runInDurableObject(storyRoom(story.id), (_: StoryRoom, state) =>
      state.storage.sql
        .exec<{ name: string }>('SELECT name FROM channel_tasks')
        .toArray()
        .map((r) => r.name),
    );
    expect(tasks).toContain('body-save');
    const deadline = Date.now() + 8000;
    while ((await row())?.body !== 'v0 v1 v2') {
      if (Date.now() > deadline) throw new Error(`D1 body still ${(await row())?.body}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await row())?.body_seq).toBe(o.welcome.seq + 2);
    o.socket.close();
  });

  it('passes cursors on to the others, never stores them, and removes them when their author leaves', async () => {
    const { owner, coauthor, story } = await setup();
    const a = await joined(story.id, owner.token);
    const b = await joined(story.id, coauthor.token);
    const cursor = awarenessUpdate(4242, 1, { user: { name: 'Ann' }, cursor: 3 });
    a.socket.send({ type: 'doc.awareness', update: cursor });
    expect((await b.socket.next<{ update: string }>('doc.awareness')).update).toBe(cursor);
    expect(a.socket.all('doc.awareness')).toHaveLength(0);
    // Another connection may not speak for a's client id.
    b.socket.send({
      type: 'doc.awareness',
      id: 'spoof',
      update: awarenessUpdate(4242, 9, { x: 1 }),
    });
    expect((await b.socket.next<ErrorFrame>((f) => f.id === 'spoof')).code).toBe('invalid_update');
    b.socket.send({ type: 'doc.awareness', id: 'junk', update: toBase64(new Uint8Array([9, 9])) });
    expect((await b.socket.next<ErrorFrame>((f) => f.id === 'junk')).code).toBe('invalid_update');
    // A late joiner finds it in the welcome; nothing went into the log.
    const c = await joined(story.id, coauthor.token);
    expect(c.welcome.snapshot.awareness).not.toBeNull();
    expect(c.welcome.seq).toBe(a.welcome.seq);
    a.socket.close();
    const removal = await b.socket.next<{ update: string }>('doc.awareness');
    const bytes = Uint8Array.from(atob(removal.update), (ch) => ch.charCodeAt(0));
    expect(new TextDecoder().decode(bytes)).toContain('null');
    b.socket.close();
    c.socket.close();
  });

  it('stops a removed co-author from editing at once, while they may still watch a published story', async () => {
    const { owner, coauthor, story } = await setup('Shared');
    const c = await joined(story.id, coauthor.token);
    await sendUpdate(
      c.socket,
      'before',
      c.replica.edit((t) => t.insert(0, '+')),
    );
    await api(`/api/stories/${story.id}/coauthors/${coauthor.id}`, {
      method: 'DELETE',
      token: owner.token,
    });
    const changed = await c.socket.next<StoryChangedEvent>('story.changed');
    expect(changed.story.coauthorIds).toEqual([]);
    const refused = await sendUpdate(
      c.socket,
      'after',
      c.replica.edit((t) => t.insert(0, '-')),
    );
    expect(refused).toMatchObject({ type: 'error', code: 'forbidden' });
    expect((await live(story.id, owner.token)).body).toBe('+Shared');
    expect(c.socket.closeEvent).toBeNull();
    c.socket.close();
  });

  it('tells watchers when the record changes and closes readers of a story that was unpublished', async () => {
    const { owner, reader, story } = await setup();
    const o = await joined(story.id, owner.token);
    const r = await joined(story.id, reader.token);
    await api(`/api/stories/${story.id}`, {
      method: 'PATCH',
      token: owner.token,
      json: { title: 'New' },
    });
    expect((await o.socket.next<StoryChangedEvent>('story.changed')).story.title).toBe('New');
    await api(`/api/stories/${story.id}/unpublish`, { method: 'POST', token: owner.token });
    expect((await r.socket.closed()).code).toBe(4403);
    const refused = await api(`/ws/stories/${story.id}`, {
      token: reader.token,
      headers: { upgrade: 'websocket' },
    });
    expect(refused.status).toBe(404);
    await drained(storyRoom(story.id));
    o.socket.close();
  });
});

/** A y-protocols awareness update for one client. */
function awarenessUpdate(clientId: number, clock: number, state: object): string {
  const json = new TextEncoder().encode(JSON.stringify(state));
  const bytes = [1, ...varUint(clientId), ...varUint(clock), ...varUint(json.length), ...json];
  return toBase64(new Uint8Array(bytes));
}

function varUint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
