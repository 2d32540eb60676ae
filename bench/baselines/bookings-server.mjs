#!/usr/bin/env node
// The bookings baseline: seed 002's event-booking server (shared/seeds/002) as a plain Node
// process — `node:http`, the built-in `node:sqlite` (a WAL file, synchronous=FULL: an answered
// booking is on disk), and `ws` for the watchers. `POST /api/bookings` takes an
// `Idempotency-Key` (a retry gets the first status and body, a different body 422) and commits
// the guarded seat update, the booking, its tickets and the key's answer in one transaction;
// then every socket on `/ws/events/:id` gets seed 002's `booking_created { eventId,
// availableSeats }`. One process, one thread: requests are serialised by the event loop.
// Started by bench/bookings.mjs with `--port` and `--state`.
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';
import { BENCH_SECRET } from '../lib/common.mjs';
import { verifyToken } from '../lib/jwt.mjs';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, state: { type: 'string' } },
});

const db = new DatabaseSync(join(args.state, 'bookings.sqlite'));
db.exec(`
  PRAGMA journal_mode = WAL;
  PRAGMA synchronous = FULL;
  CREATE TABLE events (
    id TEXT PRIMARY KEY, organiser_id TEXT NOT NULL, title TEXT NOT NULL,
    capacity INTEGER NOT NULL, booked_seats INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
  );
  CREATE TABLE bookings (
    id TEXT PRIMARY KEY, event_id TEXT NOT NULL REFERENCES events (id), user_id TEXT NOT NULL,
    quantity INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL
  );
  CREATE TABLE tickets (
    id TEXT PRIMARY KEY, booking_id TEXT NOT NULL REFERENCES bookings (id), holder_id TEXT NOT NULL
  );
  CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
    status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
  );
`);
const q = {
  insertEvent: db.prepare(
    'INSERT INTO events (id, organiser_id, title, capacity, created_at) VALUES (?, ?, ?, ?, ?)',
  ),
  event: db.prepare('SELECT capacity, booked_seats FROM events WHERE id = ?'),
  // The oversell guard: the counter only moves if the seats fit.
  take: db.prepare(
    'UPDATE events SET booked_seats = booked_seats + ? WHERE id = ? AND booked_seats + ? <= capacity RETURNING capacity, booked_seats',
  ),
  insertBooking: db.prepare(
    "INSERT INTO bookings (id, event_id, user_id, quantity, status, created_at) VALUES (?, ?, ?, ?, 'confirmed', ?)",
  ),
  insertTicket: db.prepare('INSERT INTO tickets (id, booking_id, holder_id) VALUES (?, ?, ?)'),
  key: db.prepare(
    'SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = ? AND key = ?',
  ),
  insertKey: db.prepare(
    'INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  ),
};

/** eventId → sockets watching it (seed 002's subscriptions map). */
const watchers = new Map();

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

const fail = (res, status, code, message) => send(res, status, { error: { code, message } });

function userOf(req) {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return match ? verifyToken(match[1], BENCH_SECRET) : null;
}

async function readJson(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text);
}

function createEvent(user, body) {
  const capacity = Number(body?.capacity);
  if (!Number.isInteger(capacity) || capacity < 1)
    return [400, { error: { code: 'invalid_body' } }];
  const event = {
    id: randomUUID(),
    title: String(body.title ?? 'event'),
    capacity,
    bookedSeats: 0,
  };
  q.insertEvent.run(event.id, user.id, event.title, capacity, Date.now());
  return [201, { event }];
}

/** The whole booking in one transaction; returns [status, body, replayed, event frame or null]. */
function book(user, body, key) {
  const eventId = typeof body?.eventId === 'string' ? body.eventId : null;
  const quantity = body?.quantity ?? 1;
  if (!eventId || !Number.isInteger(quantity) || quantity < 1 || quantity > 10) {
    return [400, JSON.stringify({ error: { code: 'invalid_body' } }), false, null];
  }
  const hash = createHash('sha256').update(JSON.stringify({ eventId, quantity })).digest('hex');
  db.exec('BEGIN IMMEDIATE');
  try {
    if (key) {
      const previous = q.key.get(user.id, key);
      if (previous) {
        db.exec('ROLLBACK');
        if (previous.request_hash !== hash) {
          return [422, JSON.stringify({ error: { code: 'idempotency_key_reused' } }), false, null];
        }
        return [previous.status, previous.body, true, null];
      }
    }
    const event = q.event.get(eventId);
    if (!event) {
      db.exec('ROLLBACK');
      return [404, JSON.stringify({ error: { code: 'event_not_found' } }), false, null];
    }
    const taken = q.take.get(quantity, eventId, quantity);
    let status;
    let answer;
    let frame = null;
    if (!taken) {
      const availableSeats = event.capacity - event.booked_seats;
      status = 409;
      answer = JSON.stringify({
        error: { code: availableSeats === 0 ? 'sold_out' : 'insufficient_seats', availableSeats },
      });
    } else {
      const now = Date.now();
      const booking = { id: randomUUID(), eventId, userId: user.id, quantity, status: 'confirmed' };
      q.insertBooking.run(booking.id, eventId, user.id, quantity, now);
      for (let i = 0; i < quantity; i++) q.insertTicket.run(randomUUID(), booking.id, user.id);
      const availableSeats = taken.capacity - taken.booked_seats;
      status = 201;
      answer = JSON.stringify({ booking, availableSeats });
      frame = JSON.stringify({ type: 'booking_created', eventId, availableSeats });
    }
    if (key) q.insertKey.run(user.id, key, hash, status, answer, Date.now());
    db.exec('COMMIT');
    return [status, answer, false, frame];
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

const http = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/health') return send(res, 200, { ok: true, service: 'bench-bookings' });
    if (req.method !== 'POST') return fail(res, 404, 'not_found', 'no such route');
    const user = userOf(req);
    if (!user) return fail(res, 401, 'auth_required', 'sign in first');
    let body;
    try {
      body = await readJson(req);
    } catch {
      return fail(res, 400, 'invalid_json', 'body is not JSON');
    }
    if (url.pathname === '/api/events') {
      if (user.role !== 'organiser') return fail(res, 403, 'forbidden', 'organisers only');
      const [status, answer] = createEvent(user, body);
      return send(res, status, answer);
    }
    if (url.pathname === '/api/bookings') {
      const key = req.headers['idempotency-key'];
      if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
        return fail(res, 400, 'invalid_idempotency_key', 'bad Idempotency-Key');
      }
      const [status, answer, replayed, frame] = book(user, body, key);
      send(res, status, answer, replayed ? { 'idempotent-replayed': 'true' } : {});
      if (frame) {
        for (const ws of watchers.get(body.eventId) ?? []) ws.send(frame);
      }
      return;
    }
    fail(res, 404, 'not_found', 'no such route');
  } catch (err) {
    console.error(err);
    if (!res.headersSent) fail(res, 500, 'internal', 'internal error');
  }
});

const sockets = new WebSocketServer({ noServer: true });
http.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const eventId = /^\/ws\/events\/([\w-]{1,64})$/.exec(url.pathname)?.[1];
  const user = verifyToken(url.searchParams.get('token'), BENCH_SECRET);
  if (!eventId || !user) {
    socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
    return;
  }
  sockets.handleUpgrade(req, socket, head, (ws) => {
    const set = watchers.get(eventId) ?? new Set();
    watchers.set(eventId, set);
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.on('error', () => {});
    ws.on('message', (data) => {
      if (data.toString() === '{"type":"ping"}') ws.send('{"type":"pong"}');
    });
    ws.send(JSON.stringify({ type: 'connection_established', clientId: `ws_${randomUUID()}` }));
  });
});

http.listen(Number(args.port), '127.0.0.1');
const stop = () => {
  for (const ws of sockets.clients) ws.terminate();
  http.close(() => {
    db.close();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
