import type { EntityManager } from '@steward/db';

/**
 * An open suspension or disciplinary review of the sanctions ladder: only an owner lifts it —
 * never the identity provider (SCIM), a single sign-on that would make a new membership, or an
 * invitation accepted anew.
 */
export async function heldBySanction(em: EntityManager, orgId: string, userId: string): Promise<boolean> {
  const rows: unknown[] = await em.query(`SELECT 1 FROM sanctions WHERE org_id = $1 AND user_id = $2 AND state = 'open' AND kind IN ('suspension', 'disciplinary_review') LIMIT 1`, [orgId, userId]);
  return rows.length > 0;
}
