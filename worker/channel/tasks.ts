// A Durable Object has one alarm; this keeps named tasks in SQLite and points the alarm at
// the earliest, so each kind can schedule its own (sweeps, coalesced counts, flushes).
export class TaskScheduler {
  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
  ) {
    sql.exec(
      'CREATE TABLE IF NOT EXISTS channel_tasks (name TEXT PRIMARY KEY, at INTEGER NOT NULL)',
    );
  }

  async schedule(name: string, at: number, opts: { ifEarlier?: boolean } = {}): Promise<void> {
    const current = this.sql
      .exec<{ at: number }>('SELECT at FROM channel_tasks WHERE name = ?', name)
      .toArray()[0];
    if (current && opts.ifEarlier && current.at <= at) return;
    this.sql.exec(
      'INSERT INTO channel_tasks (name, at) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET at = excluded.at',
      name,
      at,
    );
    const alarm = await this.storage.getAlarm();
    // Two schedule() calls of one event interleave at the await above; each one sets the alarm
    // to the earliest task known *now*, so a later, farther task never overrides a nearer one.
    const target = this.#earliest() ?? at;
    if (alarm === null || alarm > target) await this.storage.setAlarm(target);
  }

  /** Removes and returns the tasks due at `now`, earliest first. */
  takeDue(now: number): string[] {
    const due = this.sql
      .exec<{ name: string }>('SELECT name FROM channel_tasks WHERE at <= ? ORDER BY at', now)
      .toArray()
      .map((r) => r.name);
    for (const name of due) this.sql.exec('DELETE FROM channel_tasks WHERE name = ?', name);
    return due;
  }

  /** Points the alarm at the next task, if any is left. */
  async rearm(): Promise<void> {
    const next = this.#earliest();
    if (next !== null) await this.storage.setAlarm(Math.max(next, Date.now() + 10));
  }

  #earliest(): number | null {
    return this.sql.exec<{ at: number | null }>('SELECT MIN(at) AS at FROM channel_tasks').one().at;
  }
}
