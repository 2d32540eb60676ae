// Accounts in D1: users, their credentials, and what other aggregates need to know about them.
import { eq } from 'drizzle-orm';
import type { PublicUser } from '../protocol/core';
import { db, schema } from './client';

export type UserRow = typeof schema.users.$inferSelect;

/** A user as the rest of the platform shows them, or null when there is no such account. */
export async function findPublicUser(d1: D1Database, id: string): Promise<PublicUser | null> {
  const row = await db(d1)
    .select({ id: schema.users.id, name: schema.users.displayName, role: schema.users.role })
    .from(schema.users)
    .where(eq(schema.users.id, id))
    .get();
  return row ?? null;
}

/** Creates the account; false when the e-mail is taken (nothing written). */
export async function insertUser(d1: D1Database, row: UserRow): Promise<boolean> {
  const inserted = await db(d1)
    .insert(schema.users)
    .values(row)
    .onConflictDoNothing({ target: schema.users.email })
    .returning({ id: schema.users.id });
  return inserted.length > 0;
}

export function findUserByEmail(d1: D1Database, email: string): Promise<UserRow | undefined> {
  return db(d1).query.users.findFirst({ where: eq(schema.users.email, email) });
}

export function findUserById(d1: D1Database, id: string): Promise<UserRow | undefined> {
  return db(d1).query.users.findFirst({ where: eq(schema.users.id, id) });
}
