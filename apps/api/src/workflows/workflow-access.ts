import { AppError } from '@steward/common';
import type { EntityManager } from '@steward/db';

/**
 * A task or schedule may name a workflow of the org that the member may run tasks under (its
 * groups, or every member): 422 for an unknown key, 403 for one not open to them. The worker and
 * the gate check it again for every model call and action (steward_workflow_permitted).
 */
export async function assertWorkflowUsable(em: EntityManager, orgId: string, userId: string, key: string): Promise<void> {
  const [wf]: { permitted: boolean }[] = await em.query(`SELECT steward_workflow_permitted($1, $2, key) AS permitted FROM workflows WHERE org_id = $1 AND key = $3`, [orgId, userId, key]);
  if (!wf) throw AppError.validation([{ path: 'workflow', message: 'no workflow with this key in the org' }]);
  if (!wf.permitted) throw AppError.forbidden(`You may not run tasks under the workflow "${key}": it is open to members of its groups only.`);
}

/** A group is going: the workflows open to it are open to it no more (one open to it alone: to nobody). Their keys, sorted. */
export async function closeWorkflowsOf(em: EntityManager, orgId: string, groupId: string): Promise<string[]> {
  const rows: { key: string }[] = await em.query(
    `WITH u AS (UPDATE workflows SET allowed_groups = array_remove(allowed_groups, $2::uuid), updated_at = now() WHERE org_id = $1 AND $2::uuid = ANY (allowed_groups) RETURNING key) SELECT key FROM u ORDER BY key`,
    [orgId, groupId],
  );
  return rows.map((r) => r.key);
}
