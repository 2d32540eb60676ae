// Acknowledged request ids, so a retried request is answered again but applied once.
// Kept in the DO's SQLite for a TTL; concurrent repeats wait for the first attempt.
export interface Once<T> {
  json: string;
  value: T;
  duplicate: boolean;
}

export class RequestLedger {
  readonly #inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly ttlMs: number,
  ) {
    sql.exec(
      'CREATE TABLE IF NOT EXISTS channel_requests (key TEXT PRIMARY KEY, at INTEGER NOT NULL, response TEXT NOT NULL)',
    );
  }

  /** Runs `apply` once per key. Only successes are stored, so a refused request can be retried. */
  async once<T>(key: string, apply: () => Promise<T>): Promise<Once<T>> {
    const stored = this.sql
      .exec<{ response: string }>('SELECT response FROM channel_requests WHERE key = ?', key)
      .toArray()[0];
    if (stored) return parsed(stored.response, true);
    const running = this.#inflight.get(key);
    if (running) return parsed(await running, true);
    const task = apply().then((value) => {
      const json = JSON.stringify(value);
      this.sql.exec(
        'INSERT OR REPLACE INTO channel_requests (key, at, response) VALUES (?, ?, ?)',
        key,
        Date.now(),
        json,
      );
      return json;
    });
    this.#inflight.set(key, task);
    try {
      return parsed(await task, false);
    } finally {
      this.#inflight.delete(key);
    }
  }

  prune(now: number): void {
    this.sql.exec('DELETE FROM channel_requests WHERE at < ?', now - this.ttlMs);
  }
}

function parsed<T>(json: string, duplicate: boolean): Once<T> {
  return { json, value: JSON.parse(json) as T, duplicate };
}
