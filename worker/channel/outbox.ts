// The outbox: how D1 learns what a channel committed. A change is committed once, in the
// object's own SQLite, together with an outbox row naming a D1 write (`op`) and its data; the
// ack goes out after that commit. The outbox is then written to D1 in batches, off the request
// path, by writers that are idempotent (re-applying a row changes nothing), and retried with
// backoff until D1 takes it. docs/architecture.md ("One commit point").

/** Turns one outbox row into the D1 statements that apply it. Must be idempotent. */
export type OutboxWriter = (d1: D1Database, payload: never) => D1PreparedStatement[];

/**
 * An outbox row that is not a D1 write but a call to something else (another channel object, a
 * queue): run after the D1 statements of the rows before it, retried like them until it
 * succeeds, so it must be idempotent too (the callee dedupes by a key in the payload). Effects
 * are defined once per isolate, by the module that adds their rows (so importing it is enough).
 */
export type OutboxEffect = (env: Env, payload: never) => Promise<void>;
const effects = new Map<string, OutboxEffect>();

export function defineOutboxEffect<P>(op: string, effect: (env: Env, payload: P) => Promise<void>) {
  effects.set(op, effect as OutboxEffect);
}

const BATCH_ROWS = 50;
/** Attempts before a row that keeps failing on its own is set aside (and logged). */
const MAX_ATTEMPTS = 5;
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 60_000;

export interface OutboxHost {
  readonly label: string;
  readonly d1: D1Database;
  /** What effects (rows that call other objects or queues) are given. */
  readonly env: Env;
  /** Asks for a flush at `at` (the room's alarm), in case nothing else wakes the object. */
  scheduleFlush(at: number): Promise<void>;
}

export class Outbox {
  readonly #writers = new Map<string, OutboxWriter>();
  #flushing: Promise<void> | null = null;
  #failures = 0;
  #again = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly host: OutboxHost,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS channel_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,
      op TEXT NOT NULL, payload TEXT NOT NULL, at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS channel_outbox_dead (id INTEGER PRIMARY KEY,
      op TEXT NOT NULL, payload TEXT NOT NULL, at INTEGER NOT NULL, error TEXT NOT NULL)`);
  }

  register<P>(op: string, writer: (d1: D1Database, payload: P) => D1PreparedStatement[]): void {
    if (this.#writers.has(op)) throw new Error(`outbox op ${op} registered twice`);
    this.#writers.set(op, writer as OutboxWriter);
  }

  /** Adds a row. Call inside the transaction that commits the change it describes. */
  add(op: string, payload: unknown, now = Date.now()): void {
    if (!this.#writers.has(op) && !effects.has(op)) {
      throw new Error(`no outbox writer for ${op}`);
    }
    this.sql.exec(
      'INSERT INTO channel_outbox (op, payload, at) VALUES (?, ?, ?)',
      op,
      JSON.stringify(payload),
      now,
    );
  }

  pending(): number {
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM channel_outbox').one().n;
  }

  /** Oldest unwritten row's age in ms (0 when empty): how far D1 is behind this channel. */
  lagMs(now = Date.now()): number {
    const oldest = this.sql
      .exec<{ at: number | null }>('SELECT MIN(at) AS at FROM channel_outbox')
      .one().at;
    return oldest === null ? 0 : now - oldest;
  }

  /**
   * Writes everything pending to D1. A call while a flush runs shares it and makes it drain once
   * more, so a row committed during the flush's last pass is not left for the backstop alarm.
   */
  flush(): Promise<void> {
    if (this.#flushing) {
      this.#again = true;
      return this.#flushing;
    }
    this.#flushing = (async () => {
      do {
        this.#again = false;
        await this.#drain();
      } while (this.#again && this.#failures === 0);
    })().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    for (;;) {
      const rows = this.sql
        .exec<{ id: number; op: string; payload: string; at: number; attempts: number }>(
          'SELECT id, op, payload, at, attempts FROM channel_outbox ORDER BY id LIMIT ?',
          BATCH_ROWS,
        )
        .toArray();
      if (rows.length === 0) {
        this.#failures = 0;
        return;
      }
      try {
        await this.#apply(rows);
        this.sql.exec('DELETE FROM channel_outbox WHERE id <= ?', rows.at(-1)?.id ?? 0);
        this.#failures = 0;
      } catch (err) {
        console.error(`${this.host.label}: outbox batch of ${rows.length} failed`, err);
        this.sql.exec(
          'UPDATE channel_outbox SET attempts = attempts + 1 WHERE id <= ?',
          rows.at(-1)?.id ?? 0,
        );
        // A batch that keeps failing may hold one bad row: apply rows one by one, setting aside
        // a row that fails on its own too often, so one poison row cannot stall the channel.
        if (rows.some((r) => r.attempts + 1 >= 3) && (await this.#oneByOne(rows))) continue;
        this.#failures += 1;
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (this.#failures - 1));
        await this.host.scheduleFlush(Date.now() + delay);
        return;
      }
    }
  }

  /** True when it made progress (wrote or set aside at least one row). */
  async #oneByOne(
    rows: { id: number; op: string; payload: string; at: number; attempts: number }[],
  ) {
    let progressed = false;
    for (const row of rows) {
      try {
        await this.#apply([row]);
        this.sql.exec('DELETE FROM channel_outbox WHERE id = ?', row.id);
        progressed = true;
      } catch (err) {
        if (row.attempts + 1 < MAX_ATTEMPTS) return progressed;
        console.error(`${this.host.label}: outbox row ${row.id} (${row.op}) set aside`, err);
        this.sql.exec(
          'INSERT OR REPLACE INTO channel_outbox_dead (id, op, payload, at, error) VALUES (?, ?, ?, ?, ?)',
          row.id,
          row.op,
          row.payload,
          row.at,
          String(err),
        );
        this.sql.exec('DELETE FROM channel_outbox WHERE id = ?', row.id);
        progressed = true;
      }
    }
    return progressed;
  }

  /**
   * Applies rows in order: D1 statements in one batch per run of writer rows, each effect after
   * everything before it (so a fan-out that reads D1 sees the rows committed before it).
   */
  async #apply(rows: { op: string; payload: string }[]): Promise<void> {
    let statements: D1PreparedStatement[] = [];
    for (const row of rows) {
      const effect = effects.get(row.op);
      if (!effect) {
        statements.push(...this.#statements(row.op, row.payload));
        continue;
      }
      if (statements.length > 0) await this.host.d1.batch(statements);
      statements = [];
      await effect(this.host.env, JSON.parse(row.payload) as never);
    }
    if (statements.length > 0) await this.host.d1.batch(statements);
  }

  #statements(op: string, payload: string): D1PreparedStatement[] {
    const writer = this.#writers.get(op);
    if (!writer) throw new Error(`no outbox writer for ${op}`);
    return writer(this.host.d1, JSON.parse(payload) as never);
  }
}
