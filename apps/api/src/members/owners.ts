import type { EntityManager } from '@steward/db';

/**
 * Serialises the changes that could leave an org without an active owner (a role removed, a
 * suspension, a deprovisioning, a strike), each of which counts the owners left before it acts:
 * two at once would each count the other owner and both go ahead. Held to the transaction's end.
 */
export async function lockOwners(em: EntityManager, orgId: string): Promise<void> {
  await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('steward:owners:' || $1, 0))`, [orgId]);
}
