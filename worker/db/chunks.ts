// D1 binds at most 100 parameters a statement: a query over a list runs once per chunk.
const CHUNK = 90;

export async function inChunks<T, R>(
  items: readonly T[],
  run: (chunk: T[]) => Promise<R[]>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(...(await run(items.slice(i, i + CHUNK))));
  return out;
}
