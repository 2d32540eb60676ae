#!/usr/bin/env node
// The Socket.IO baseline: seed 001's live-stream chat server (shared/seeds/001), as written there.
// A room per stream; `join-stream` / `leave-stream` track viewers in an in-memory Set per
// stream and broadcast `viewer-count-update` to the room on every change; `send-message` needs a
// JWT from the handshake and broadcasts `new-message` to the room. Nothing is stored (the seed
// persists only peak counts); no rate limits (the seed has none). Started by the benchmarks with
// `--port`; `/health` answers when it listens.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';
import { BENCH_SECRET } from '../lib/common.mjs';
import { verifyToken } from '../lib/jwt.mjs';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, state: { type: 'string' } },
});

const http = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true,"service":"bench-socketio"}');
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(http, { serveClient: false, cors: { origin: '*' } });

/** streamId → socket ids watching it (the seed's "in-memory Set-based tracking per stream"). */
const viewers = new Map();
const roomOf = (streamId) => `stream:${streamId}`;

function countChanged(streamId) {
  const viewerCount = viewers.get(streamId)?.size ?? 0;
  io.to(roomOf(streamId)).emit('viewer-count-update', { streamId, viewerCount });
}

function leave(socket, streamId) {
  const set = viewers.get(streamId);
  if (!set?.delete(socket.id)) return;
  if (set.size === 0) viewers.delete(streamId);
  socket.leave(roomOf(streamId));
  countChanged(streamId);
}

// The seed's handshake auth: a token makes the socket a user; none leaves it anonymous (view only).
io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (token) {
    const user = verifyToken(token, BENCH_SECRET);
    if (!user) return next(new Error('invalid token'));
    socket.data.user = user;
  }
  next();
});

io.on('connection', (socket) => {
  socket.data.streams = new Set();

  socket.on('join-stream', (payload) => {
    const streamId = typeof payload?.streamId === 'string' ? payload.streamId : null;
    if (!streamId) return;
    socket.join(roomOf(streamId));
    socket.data.streams.add(streamId);
    const set = viewers.get(streamId) ?? new Set();
    viewers.set(streamId, set);
    set.add(socket.id);
    countChanged(streamId);
  });

  socket.on('send-message', (payload) => {
    const user = socket.data.user;
    if (!user) {
      socket.emit('error', { message: 'Authentication required to send messages' });
      return;
    }
    const streamId = typeof payload?.streamId === 'string' ? payload.streamId : null;
    const message = typeof payload?.message === 'string' ? payload.message.trim() : '';
    if (!streamId || !message || message.length > 500) return;
    io.to(roomOf(streamId)).emit('new-message', {
      id: randomUUID(),
      streamId,
      userId: user.id,
      username: user.name,
      message,
      createdAt: new Date().toISOString(),
    });
  });

  socket.on('leave-stream', (payload) => {
    if (typeof payload?.streamId === 'string') {
      socket.data.streams.delete(payload.streamId);
      leave(socket, payload.streamId);
    }
  });

  socket.on('disconnect', () => {
    for (const streamId of socket.data.streams) leave(socket, streamId);
  });
});

http.listen(Number(args.port), '127.0.0.1');
const stop = () => io.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
