// Keyset paging shared by every list: an opaque cursor `<sortKey>.<id>` from the previous page,
// and rows strictly past it in (sortKey, id) order. Stable under inserts, unlike offsets.
import { and, eq, gt, lt, or, type SQL } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import { z } from 'zod';

export const cursorParam = z
  .string()
  .regex(/^\d{1,16}\.[A-Za-z0-9_-]{1,64}$/, 'must be a cursor from a previous page')
  .optional();

/** The rows after `cursor`; `desc` pages newest first, `asc` oldest first. */
export function pastCursor(
  sortKey: SQLiteColumn,
  id: SQLiteColumn,
  cursor: string | undefined,
  direction: 'asc' | 'desc',
): SQL | undefined {
  if (!cursor) return undefined;
  const [key, rowId] = cursor.split('.') as [string, string];
  const beyond = direction === 'desc' ? lt : gt;
  return or(beyond(sortKey, Number(key)), and(eq(sortKey, Number(key)), beyond(id, rowId)));
}

/** Cuts the `limit + 1` rows a query fetched into a page and the next page's cursor. */
export function pageOf<R>(
  rows: R[],
  limit: number,
  keyOf: (row: R) => [number, string],
): { page: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last ? keyOf(last).join('.') : null };
}
