// The servers a channel benchmark measures, behind one interface, so every scenario drives
// Wavecast and its baselines with the same load:
//
// - wavecast — this repository's worker in `wrangler dev`: a station's chat (`--kind stream`,
//   seed 001's counterpart: `chat.send` → `chat.message`) or a comment room (`--kind comments`);
// - bare — bench/bare/: a Durable Object per room that only broadcasts (the least a room can cost
//   on this runtime);
// - socketio — bench/baselines/socketio-server.mjs: seed 001's Socket.IO 4 server, driven by the
//   official client (`join-stream`, `send-message` → `new-message`).
//
// Each post's body carries `bench|<index>|`; a watcher counts every occurrence in what it
// receives, so a Wavecast `batch` frame counts as the logical deliveries it holds.
import { io } from 'socket.io-client';
import {
  BENCH_ADMIN,
  BENCH_SECRET,
  DevServer,
  groupRssByCommand,
  HEARTBEAT,
  openSocket,
  registerUsers,
  serverCpuSeconds,
} from './common.mjs';
import { signToken } from './jwt.mjs';
import { NodeServer } from './node-server.mjs';

export const TARGET_NAMES = ['wavecast', 'bare', 'socketio'];
export const TARGET_LABELS = { wavecast: 'Wavecast', bare: 'bare DO', socketio: 'Socket.IO' };

export const MARKER = 'bench|';
const MARKER_BYTES = Buffer.from(MARKER);
const FILLER = ' the quick brown fox jumps over the lazy dog, again and again';

/** A post's body: its index, then filler to a realistic chat-message length. */
export const postBody = (index) => `${MARKER}${index}|${FILLER}`;

/** Calls `onPost(index)` for every post marker in a frame; returns how many it found. */
export function scanPosts(data, onPost) {
  let found = 0;
  let at = data.indexOf(MARKER_BYTES);
  while (at >= 0) {
    let i = at + MARKER_BYTES.length;
    let value = 0;
    for (; i < data.length; i++) {
      const c = data[i];
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
    }
    onPost(value);
    found += 1;
    at = data.indexOf(MARKER_BYTES, i);
  }
  return found;
}

function postIndexOf(text) {
  const at = text.indexOf(MARKER);
  return at < 0 ? -1 : Number.parseInt(text.slice(at + MARKER.length), 10);
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const startsWith = (data, prefix) => data.subarray(0, prefix.length).toString('latin1') === prefix;

/**
 * What a Wavecast kind needs from the load: its socket path, its post frame, and how a
 * publisher may go (`burst` frames at once, `perSecond` after that, per publisher).
 */
export const KINDS = {
  stream: {
    path: (id) => `/ws/stations/${id}`,
    post: (index) => ({ type: 'chat.send', id: `p${index}`, body: postBody(index) }),
    // The per-user chat pace (docs/protocol.md, stream): 5 at once, then one every 2 s; a
    // publisher posts every 2.5 s to stay clear of it.
    burst: 5,
    perSecond: 0.4,
  },
  comments: {
    path: (id) => `/ws/comments/${id}`,
    post: (index) => ({ type: 'comment.create', id: `p${index}`, body: postBody(index) }),
    // The per-socket frame bucket (docs/protocol.md, "Limits"): 20 at once, 10 a second; half
    // the rate keeps a publisher clear of it.
    burst: 20,
    perSecond: 5,
  },
};

/** Wavecast's door caps count sockets per address; every bench socket comes from 127.0.0.1. */
const LOOPBACK_VARS = {
  JWT_SECRET: BENCH_SECRET,
  ADMIN_EMAILS: BENCH_ADMIN,
  MAX_CONNECTIONS_PER_ADDRESS_PER_CHANNEL: '100000',
};

async function apiCall(base, path, token, json) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(json),
  });
  const body = await res.json();
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** A socket closed by either side is counted per role and close code in `closes`. */
function track(ws, role, closes) {
  ws.on('close', (code) => {
    const key = `${role} ${code}`;
    closes[key] = (closes[key] ?? 0) + 1;
  });
  ws.on('error', () => {});
}

class WavecastTarget {
  constructor({ kind = 'stream', vars = {} } = {}) {
    this.name = 'wavecast';
    this.kind = KINDS[kind] ? kind : null;
    if (!this.kind) throw new Error(`--kind must be ${Object.keys(KINDS).join(' or ')}`);
    this.server = new DevServer({ name: 'bench-wavecast', vars: { ...LOOPBACK_VARS, ...vars } });
    this.closes = {};
  }

  start() {
    return this.server.start();
  }

  /** Channels and publisher identities: stations (live) or comment items, and signed-in users. */
  async setup({ channels, publishersPerChannel, users, run }) {
    const base = this.server.baseUrl;
    const identities = await registerUsers(base, users, { prefix: `pub${run}` });
    let channelIds;
    if (this.kind === 'stream') {
      // One owner per 50 stations keeps each owner under the 120 REST writes a minute.
      const owners = await registerUsers(base, Math.ceil(channels / 50), {
        prefix: `owner${run}`,
        role: 'station_owner',
      });
      channelIds = [];
      for (let c = 0; c < channels; c++) {
        const owner = owners[Math.floor(c / 50)];
        const { station } = await apiCall(base, '/api/stations', owner.token, {
          name: `Bench ${run}-${c}`,
        });
        await apiCall(base, `/api/stations/${station.id}/live`, owner.token, {
          showTitle: 'Bench show',
        });
        channelIds.push(station.id);
      }
    } else {
      channelIds = Array.from({ length: channels }, (_, c) => `bench-${process.pid}-${run}-${c}`);
    }
    const publisherOf = (c, j) => identities[(c * publishersPerChannel + j) % identities.length];
    return { channelIds, publisherOf };
  }

  /** Resolves once the welcome arrived; `onPost(index)` for every post delivered after it. */
  async openWatcher(channelId, onPost, onFrame) {
    let welcomed;
    const welcome = new Promise((ok) => {
      welcomed = ok;
    });
    const ws = await openSocket(`${this.server.wsBase}${KINDS[this.kind].path(channelId)}`, {
      onMessage: (data) => {
        if (startsWith(data, '{"type":"welcome"')) {
          welcomed();
          return;
        }
        if (scanPosts(data, onPost) > 0) onFrame();
      },
    });
    track(ws, 'watcher', this.closes);
    await withTimeout(welcome, 30_000, `no welcome on ${channelId}`);
    return { close: () => ws.terminate() };
  }

  /** An idle socket: joined like a watcher; `heartbeat()` sends the SDK's ping. */
  async openIdle(channelId, onPong) {
    let welcomed;
    const welcome = new Promise((ok) => {
      welcomed = ok;
    });
    const ws = await openSocket(`${this.server.wsBase}${this.idlePath(channelId)}`, {
      onMessage: (data) => {
        if (startsWith(data, '{"type":"pong"')) onPong();
        else if (startsWith(data, '{"type":"welcome"')) welcomed();
      },
    });
    track(ws, 'idle', this.closes);
    if (this.name === 'wavecast') await withTimeout(welcome, 30_000, `no welcome on ${channelId}`);
    return {
      heartbeat: () => {
        if (ws.readyState === ws.OPEN) ws.send(HEARTBEAT);
      },
      isOpen: () => ws.readyState === ws.OPEN,
      close: () => ws.terminate(),
    };
  }

  idlePath(channelId) {
    return KINDS[this.kind].path(channelId);
  }

  async openPublisher(channelId, identity, { onAck, onRefused }) {
    const token = encodeURIComponent(identity.token);
    const path = KINDS[this.kind].path(channelId);
    const ws = await openSocket(`${this.server.wsBase}${path}?token=${token}`, {
      onMessage: (data) => {
        if (startsWith(data, '{"type":"ack"')) onAck();
        else if (startsWith(data, '{"type":"error"')) {
          const frame = JSON.parse(data.toString());
          const id = String(frame.id ?? '');
          onRefused(frame.code ?? 'unknown', id.startsWith('p') ? Number(id.slice(1)) : -1);
        }
      },
    });
    track(ws, 'publisher', this.closes);
    const post = KINDS[this.kind].post;
    return {
      send: (index) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(post(index)));
      },
      close: () => ws.terminate(),
    };
  }

  serverCpuSeconds() {
    return serverCpuSeconds(this.server);
  }

  /** wrangler's own node process and esbuild's watcher: `wrangler dev` only, not the server. */
  toolCpuSeconds() {
    return this.server.cpuSeconds() - serverCpuSeconds(this.server);
  }

  /** Resident memory of the server's processes: workerd alone, and the whole tree. */
  rss() {
    const byCommand = groupRssByCommand(this.server.pgid);
    const tree = Object.values(byCommand).reduce((a, b) => a + b, 0);
    return { server: byCommand.workerd ?? 0, tree, byCommand };
  }

  dispose() {
    return this.server.dispose();
  }
}

class BareTarget extends WavecastTarget {
  constructor() {
    super({ kind: 'comments' });
    this.name = 'bare';
    this.server = new DevServer({
      name: 'bench-bare',
      config: 'bench/bare/wrangler.toml',
      migrate: false,
    });
  }

  async setup({ channels, run }) {
    const channelIds = Array.from(
      { length: channels },
      (_, c) => `bare-${process.pid}-${run}-${c}`,
    );
    return { channelIds, publisherOf: () => null };
  }

  /** The bare room sends no welcome: a watcher is in once its socket is open. */
  async openWatcher(channelId, onPost, onFrame) {
    const ws = await openSocket(`${this.server.wsBase}/ws/rooms/${channelId}`, {
      onMessage: (data) => {
        if (scanPosts(data, onPost) > 0) onFrame();
      },
    });
    track(ws, 'watcher', this.closes);
    return { close: () => ws.terminate() };
  }

  idlePath(channelId) {
    return `/ws/rooms/${channelId}`;
  }

  async openPublisher(channelId) {
    const ws = await openSocket(`${this.server.wsBase}/ws/rooms/${channelId}`);
    track(ws, 'publisher', this.closes);
    return {
      send: (index) => {
        if (ws.readyState === ws.OPEN) ws.send(postBody(index));
      },
      close: () => ws.terminate(),
    };
  }
}

class SocketIoTarget {
  constructor() {
    this.name = 'socketio';
    this.server = new NodeServer({
      script: 'bench/baselines/socketio-server.mjs',
      name: 'bench-socketio',
    });
    this.closes = {};
  }

  start() {
    return this.server.start();
  }

  async setup({ channels, publishersPerChannel, users, run }) {
    const channelIds = Array.from({ length: channels }, (_, c) => `sio-${process.pid}-${run}-${c}`);
    const identities = Array.from({ length: users }, (_, i) => ({
      token: signToken({ id: `u-${run}-${i}`, name: `bench ${i}`, role: 'listener' }, BENCH_SECRET),
    }));
    return {
      channelIds,
      publisherOf: (c, j) => identities[(c * publishersPerChannel + j) % identities.length],
    };
  }

  /** The official client, one connection per socket (no multiplexing), WebSocket transport. */
  #connect(token) {
    return new Promise((ok, fail) => {
      const socket = io(this.server.baseUrl, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        timeout: 30_000,
        auth: token ? { token } : {},
      });
      socket.once('connect', () => ok(socket));
      socket.once('connect_error', (err) => {
        socket.close();
        fail(err);
      });
    });
  }

  /** Joins the stream; the joiner's own `viewer-count-update` says the join was applied. */
  async #join(socket, role, channelId) {
    socket.on('disconnect', (reason) => {
      const key = `${role} ${reason}`;
      this.closes[key] = (this.closes[key] ?? 0) + 1;
    });
    const joined = new Promise((ok) => {
      socket.once('viewer-count-update', ok);
      socket.emit('join-stream', { streamId: channelId });
    });
    await withTimeout(joined, 30_000, `no viewer-count-update on ${channelId}`);
  }

  async openWatcher(channelId, onPost, onFrame) {
    const socket = await this.#connect(null);
    socket.on('new-message', (message) => {
      const index = postIndexOf(String(message?.message ?? ''));
      if (index >= 0) {
        onPost(index);
        onFrame();
      }
    });
    await this.#join(socket, 'watcher', channelId);
    return { close: () => socket.disconnect() };
  }

  /** Socket.IO keeps its own heartbeat: the server pings every 25 s, the client answers. */
  async openIdle(channelId, onPong) {
    const socket = await this.#connect(null);
    socket.io.engine.on('ping', onPong);
    await this.#join(socket, 'idle', channelId);
    return {
      heartbeat: () => {},
      isOpen: () => socket.connected,
      close: () => socket.disconnect(),
    };
  }

  async openPublisher(channelId, identity, { onRefused }) {
    const socket = await this.#connect(identity.token);
    socket.on('error', (err) => onRefused(String(err?.message ?? 'error'), -1));
    await this.#join(socket, 'publisher', channelId);
    return {
      send: (index) =>
        socket.emit('send-message', { streamId: channelId, message: postBody(index) }),
      close: () => socket.disconnect(),
    };
  }

  serverCpuSeconds() {
    return this.server.cpuSeconds();
  }

  toolCpuSeconds() {
    return 0;
  }

  rss() {
    const byCommand = groupRssByCommand(this.server.pgid);
    const tree = Object.values(byCommand).reduce((a, b) => a + b, 0);
    return { server: tree, tree, byCommand };
  }

  dispose() {
    return this.server.dispose();
  }
}

/** A fresh target (its own server, started by `start()`, stopped by `dispose()`). */
export function makeTarget(name, options = {}) {
  if (name === 'wavecast') return new WavecastTarget(options);
  if (name === 'bare') return new BareTarget();
  if (name === 'socketio') return new SocketIoTarget();
  throw new Error(`unknown target ${name}: one of ${TARGET_NAMES.join(', ')}`);
}

/** `--target all` or a comma-separated list, in the canonical order. */
export function targetList(flag) {
  if (flag === 'all' || flag === 'both') return [...TARGET_NAMES];
  const names = flag.split(',').map((s) => s.trim());
  for (const n of names) if (!TARGET_NAMES.includes(n)) makeTarget(n);
  return TARGET_NAMES.filter((n) => names.includes(n));
}
