// A relay's market values: the latest value per key it heard from the root, and which of them its
// sockets have not had yet. Sent coalesced (`market.values`, at most MARKET_UPDATES_PER_SECOND a
// second per client); a welcome carries the values already sent, so no client gets one version
// twice, and a version never goes out after a higher one of the same key.
import type { MarketValue } from '../../protocol/broadcast';

export class RelayMarket {
  #sent: Map<string, MarketValue> | null = null;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS relay_market (key TEXT PRIMARY KEY,
      version INTEGER NOT NULL, sent TEXT, pending TEXT)`);
  }

  /** Notes a value; false when the relay already has this version or a newer one. */
  offer(value: MarketValue): boolean {
    const row = this.sql
      .exec<{ version: number }>('SELECT version FROM relay_market WHERE key = ?', value.key)
      .toArray()[0];
    if (row && row.version >= value.version) return false;
    this.sql.exec(
      `INSERT INTO relay_market (key, version, sent, pending) VALUES (?, ?, NULL, ?)
       ON CONFLICT (key) DO UPDATE SET version = excluded.version, pending = excluded.pending`,
      value.key,
      value.version,
      JSON.stringify(value),
    );
    return true;
  }

  /** What every socket here has had (the welcome's `market`). */
  sent(): MarketValue[] {
    if (!this.#sent) {
      this.#sent = new Map();
      for (const row of this.sql.exec<{ sent: string }>(
        'SELECT sent FROM relay_market WHERE sent IS NOT NULL',
      )) {
        const value = JSON.parse(row.sent) as MarketValue;
        this.#sent.set(value.key, value);
      }
    }
    return [...this.#sent.values()];
  }

  /** The values not sent yet, now marked sent. Runs inside the caller's transaction. */
  take(): MarketValue[] {
    const rows = this.sql
      .exec<{ pending: string }>('SELECT pending FROM relay_market WHERE pending IS NOT NULL')
      .toArray();
    if (rows.length === 0) return [];
    this.sql.exec(
      'UPDATE relay_market SET sent = pending, pending = NULL WHERE pending IS NOT NULL',
    );
    const values = rows.map((r) => JSON.parse(r.pending) as MarketValue);
    this.sent();
    for (const v of values) this.#sent?.set(v.key, v);
    return values;
  }

  /** Drops the cached copy (a rolled-back transaction). */
  reload(): void {
    this.#sent = null;
  }
}
