import { drizzle } from 'drizzle-orm/d1';
import * as schema from './schema';

export function db(d1: D1Database) {
  return drizzle(d1, { schema });
}

export type Db = ReturnType<typeof db>;
export { schema };

/** The author columns of every "message with its author" query (comments, chat). */
export const authorColumns = {
  userId: schema.users.id,
  userName: schema.users.displayName,
  userRole: schema.users.role,
};

/** The public user those columns describe. */
export function authorOf(row: { userId: string; userName: string; userRole: string }) {
  return { id: row.userId, name: row.userName, role: row.userRole };
}
