// Accounts in D1: users and what other aggregates need to know about them.
import { eq } from 'drizzle-orm';
import type { PublicUser } from '../protocol/core';
import { db, schema } from './client';

/** A user as the rest of the platform shows them, or null when there is no such account. */
export async function findPublicUser(d1: D1Database, id: string): Promise<PublicUser | null> {
  const row = await db(d1)
    .select({ id: schema.users.id, name: schema.users.displayName, role: schema.users.role })
    .from(schema.users)
    .where(eq(schema.users.id, id))
    .get();
  return row ?? null;
}
