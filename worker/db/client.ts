import { drizzle } from 'drizzle-orm/d1';
import * as schema from './schema';

function build(d1: D1Database) {
  return drizzle(d1, { schema });
}

export type Db = ReturnType<typeof build>;

// One drizzle client per binding, built once per isolate rather than on every query.
const clients = new WeakMap<D1Database, Db>();

export function db(d1: D1Database): Db {
  let client = clients.get(d1);
  if (!client) {
    client = build(d1);
    clients.set(d1, client);
  }
  return client;
}
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
