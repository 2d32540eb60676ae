// Calls from one object to many (a broadcast root to its relays, a presence shard to the relays
// that watch): one call in flight per target, items that arrive meanwhile go together in the next
// call, so order per target is kept and a burst costs a few calls, not one per item. A failed call
// is retried a few times with a pause, then reported to `failed` (the caller decides how the
// target catches up).
const RETRIES = 3;

export class Pusher<T> {
  readonly #queued = new Map<string, T[]>();
  readonly #running = new Set<string>();

  constructor(
    private readonly label: string,
    private readonly send: (target: string, items: T[]) => Promise<unknown>,
    private readonly keepAlive: (p: Promise<unknown>) => void,
    private readonly failed: (target: string) => void = () => {},
  ) {}

  push(target: string, ...items: T[]): void {
    const list = this.#queued.get(target);
    if (list) list.push(...items);
    else this.#queued.set(target, [...items]);
    if (!this.#running.has(target)) this.keepAlive(this.#drain(target));
  }

  /** Resolves once nothing is queued or in flight (tests). */
  get idle(): boolean {
    return this.#running.size === 0 && this.#queued.size === 0;
  }

  async #drain(target: string): Promise<void> {
    this.#running.add(target);
    try {
      for (;;) {
        const items = this.#queued.get(target);
        if (!items) return;
        this.#queued.delete(target);
        for (let attempt = 1; ; attempt++) {
          try {
            await this.send(target, items);
            break;
          } catch (err) {
            if (attempt >= RETRIES) {
              console.error(`${this.label}: push to ${target} failed`, err);
              this.failed(target);
              break;
            }
            await new Promise((r) => setTimeout(r, 100 * attempt));
          }
        }
      }
    } finally {
      this.#running.delete(target);
    }
  }
}
