// The cheapest question D1 can answer, for /health.
export async function pingDatabase(d1: D1Database): Promise<void> {
  await d1.prepare('SELECT 1 AS ok').first();
}
