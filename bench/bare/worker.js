// The baseline for bench/rooms.mjs: one Durable Object per room that accepts hibernatable
// sockets and sends every text frame it receives to every socket of the room, as is. No auth,
// no validation, no storage: the least a broadcasting room can do on this runtime. Heartbeats
// (`{"type":"ping"}`) are answered by the runtime, as in Wavecast.
import { DurableObject } from 'cloudflare:workers';

export class BareRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    // The same heartbeat as Wavecast's, answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'),
    );
  }

  async fetch() {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async webSocketMessage(_ws, message) {
    if (typeof message !== 'string') return;
    for (const socket of this.ctx.getWebSockets()) {
      try {
        socket.send(message);
      } catch {
        // closing; its close event follows
      }
    }
  }

  async webSocketClose(ws, code, reason) {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/health') return Response.json({ ok: true, service: 'bench-bare' });
    const room = /^\/ws\/rooms\/([\w-]{1,64})$/.exec(pathname)?.[1];
    if (!room || request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('not found', { status: 404 });
    }
    return env.ROOM.get(env.ROOM.idFromName(room)).fetch(request);
  },
};
