// Every class of bad client input gets a clear answer and never breaks the channel.
import { describe, expect, it } from 'vitest';
import type { ErrorFrame } from '../../worker/protocol/core';
import { connect, register, unique } from './helpers';

async function room() {
  const user = await register();
  const socket = await connect(`/ws/comments/${unique('frames')}`, { token: user.token });
  await socket.next('welcome');
  return { user, socket };
}

describe('frame validation', () => {
  it('answers malformed JSON with an error frame and keeps the socket open', async () => {
    const { socket } = await room();
    socket.send('{"type": "comment.create", ');
    const err = await socket.next<ErrorFrame>('error');
    expect(err.code).toBe('malformed_json');
    socket.send({ type: 'ping', id: 'still-open' });
    expect(await socket.next('pong')).toEqual({ type: 'pong', id: 'still-open' });
    socket.close();
  });

  it('answers an unknown type with unknown_type, echoing the request id', async () => {
    const { socket } = await room();
    socket.send({ type: 'comment.explode', id: 'r1' });
    const err = await socket.next<ErrorFrame>('error');
    expect(err).toMatchObject({ code: 'unknown_type', id: 'r1' });
    socket.close();
  });

  it.each([
    ['a frame without a type', { body: 'hi' }, 'type'],
    ['a non-object frame', [1, 2, 3], 'type'],
    ['a wrongly typed field', { type: 'comment.create', body: 42 }, 'body'],
    ['an empty comment', { type: 'comment.create', body: '   ' }, 'body'],
    ['an over-long comment', { type: 'comment.create', body: 'x'.repeat(2001) }, 'body'],
    ['an unexpected field', { type: 'typing', isTyping: true, userId: 'someone-else' }, ''],
  ])('answers %s with invalid_frame naming the field', async (_, frame, path) => {
    const { socket } = await room();
    socket.send(frame);
    const err = await socket.next<ErrorFrame>('error');
    expect(err.code).toBe('invalid_frame');
    if (path) expect(err.issues?.[0]?.path).toBe(path);
    socket.send({ type: 'ping' });
    await socket.next('pong');
    socket.close();
  });

  it('refuses binary frames with binary_not_supported', async () => {
    const { socket } = await room();
    (socket.socket as unknown as WebSocket).send(new Uint8Array([1, 2, 3]));
    expect((await socket.next<ErrorFrame>('error')).code).toBe('binary_not_supported');
    socket.close();
  });

  it('closes the socket with 1009 when a frame is over 64 KiB', async () => {
    const { socket } = await room();
    socket.send({ type: 'comment.create', body: 'x'.repeat(70 * 1024) });
    const closed = await socket.closed();
    expect(closed.code).toBe(1009);
  });

  it('accepts a frame of just under 64 KiB (and rejects it on content, not size)', async () => {
    const { socket } = await room();
    const padding = 'x'.repeat(60 * 1024);
    socket.send({ type: 'comment.create', body: padding });
    expect((await socket.next<ErrorFrame>('error')).code).toBe('invalid_frame');
    socket.close();
  });

  it('warns a flooding socket with rate_limited and then closes it with 4429', async () => {
    const { socket } = await room();
    for (let i = 0; i < 60; i++) socket.send({ type: 'ping', id: `p${i}` });
    const closed = await socket.closed();
    expect(closed.code).toBe(4429);
    const warnings = socket.all<ErrorFrame>('error').filter((e) => e.code === 'rate_limited');
    expect(warnings.length).toBe(5);
    // The first burst went through before the bucket ran dry.
    expect(socket.all('pong').length).toBeGreaterThanOrEqual(20);
  });

  it('lets heartbeats through without counting them against the rate limit', async () => {
    const { socket } = await room();
    for (let i = 0; i < 60; i++) socket.send('{"type":"ping"}');
    for (let i = 0; i < 60; i++) await socket.next('pong');
    socket.send({ type: 'ping', id: 'after' });
    expect(await socket.next('pong')).toEqual({ type: 'pong', id: 'after' });
    expect(socket.all('error')).toEqual([]);
    socket.close();
  });

  it('keeps serving other sockets after one was closed for flooding', async () => {
    const itemId = unique('flood');
    const user = await register();
    const flooder = await connect(`/ws/comments/${itemId}`, { token: user.token });
    const calm = await connect(`/ws/comments/${itemId}`, { token: user.token });
    await flooder.next('welcome');
    await calm.next('welcome');
    // With an id, so the runtime's heartbeat auto-response does not answer them for the room.
    for (let i = 0; i < 60; i++) flooder.send({ type: 'ping', id: `p${i}` });
    expect((await flooder.closed()).code).toBe(4429);
    calm.send({ type: 'comment.create', id: 'c1', body: 'still here' });
    expect(await calm.next('ack')).toMatchObject({ id: 'c1', seq: 1 });
    calm.close();
  });
});
