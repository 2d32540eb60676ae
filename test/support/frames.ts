// Waiting for frames without sleeping: shared by the in-runtime and the end-to-end tests.
export interface Frame {
  type: string;
  [key: string]: unknown;
}

/** The part of a WebSocket (workerd's, the `ws` library's, partysocket's) this needs. */
export interface SocketLike {
  /** 2 = CLOSING: the close handshake has started (the `ws` library and browsers expose it). */
  readonly readyState?: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(
    type: 'close',
    listener: (event: { code: number; reason: string }) => void,
  ): void;
}

type Match = string | ((frame: Frame) => boolean);

export class FrameQueue {
  readonly received: Frame[] = [];
  /** How many `batch` frames arrived (their frames are in `received`, in order). */
  batches = 0;
  closeEvent: { code: number; reason: string } | null = null;
  #consumed = new Set<number>();
  #waiters: (() => void)[] = [];

  constructor(readonly socket: SocketLike) {
    socket.addEventListener('message', (event) => {
      const text = typeof event.data === 'string' ? event.data : String(event.data);
      const frame = JSON.parse(text) as Frame;
      // A batch (docs/protocol.md, "Batches") is unpacked like the SDK does; `batches` counts them.
      if (frame.type === 'batch' && Array.isArray(frame.frames)) {
        this.batches += 1;
        for (const one of frame.frames as Frame[]) this.received.push(one);
      } else {
        this.received.push(frame);
      }
      this.#wake();
    });
    socket.addEventListener('close', (event) => {
      this.closeEvent = { code: event.code, reason: event.reason };
      this.#wake();
    });
  }

  send(frame: object | string): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(code = 1000, reason = 'done'): void {
    this.socket.close(code, reason);
  }

  /**
   * The first frame not yet taken that matches; waits for it up to `timeoutMs` (generous: on a
   * 2-core machine running the whole suite a frame can take seconds; a wait never passes a test).
   */
  async next<T = Frame>(match: Match, timeoutMs = 15_000): Promise<T & Frame> {
    const test = typeof match === 'string' ? (f: Frame) => f.type === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.received.length; i++) {
        const frame = this.received[i] as Frame;
        if (!this.#consumed.has(i) && test(frame)) {
          this.#consumed.add(i);
          return frame as T & Frame;
        }
      }
      if (this.closeEvent) {
        throw new Error(
          `socket closed (${this.closeEvent.code}) before a frame matched ${String(match)}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.received.map((f) => f.type).join(', ');
        throw new Error(`timed out waiting for ${String(match)}; saw: ${seen}`);
      }
      await this.#wait(left);
    }
  }

  /** All frames received so far that match, whether taken or not. */
  all<T = Frame>(match: Match): (T & Frame)[] {
    const test = typeof match === 'string' ? (f: Frame) => f.type === match : match;
    return this.received.filter(test) as (T & Frame)[];
  }

  /**
   * Waits until the close handshake has started (a close frame arrived, or the socket closed):
   * the moment the server closed it, before the client library's TCP teardown.
   */
  async closing(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closeEvent && (this.socket.readyState ?? 1) < 2) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the close handshake');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async closed(timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closeEvent) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for close');
      await this.#wait(left);
    }
    return this.closeEvent;
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const waiter = () => done();
      this.#waiters.push(waiter);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
