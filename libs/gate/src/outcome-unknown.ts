import { type AuditKeyring, recordEvent } from '@steward/audit';
import { newId } from '@steward/common';
import type { EntityManager } from 'typeorm';

const REASONS = {
  worker: 'Outcome unknown: the worker stopped after this action was claimed and before its outcome was written. Was it carried out?',
  mcp: 'Outcome unknown: this action was claimed through the MCP gateway, and its outcome was never written (the API process stopped, or could not record it). Was it carried out?',
  ambiguous: 'Outcome unknown: the connector call ended without a clear answer (no answer in time, the connection lost, or a server error) after it may have acted. Was it carried out?',
};

/**
 * A claim left `executing` with no outcome: its call may or may not have happened. Marked
 * `outcome_unknown`, with an approval of that kind for a person to settle (done / not done),
 * announced where approval requests are, and audited. The action is never run again. Nothing
 * happens (false) when the claim is no longer `executing` (its outcome came in meanwhile).
 */
export async function openOutcomeUnknown(
  em: EntityManager,
  keyring: AuditKeyring,
  o: { orgId: string; actionId: string; taskId: string | null; client: 'worker' | 'mcp'; /** The call ended without a clear answer (else: its process stopped). */ ambiguous?: boolean },
): Promise<boolean> {
  const { orgId, actionId, taskId } = o;
  const [a]: { step: number | null; user_id: string; connector: string; tool: string; action_type: string; args_digest: string; policy_id: string | null; policy_version: number | null; tainted: boolean; labels: string[]; level: string }[] = await em.query(
    `WITH u AS (UPDATE task_actions SET state = 'outcome_unknown' WHERE org_id = $1 AND id = $2 AND state = 'executing'
                RETURNING step, user_id, connector, tool, action_type, args_digest, policy_id, policy_version, tainted, labels, level) SELECT * FROM u`,
    [orgId, actionId],
  );
  if (!a) return false;
  const approvalId = newId();
  await em.query(
    `INSERT INTO approvals (org_id, id, kind, action_id, task_id, step, requested_by, connector, tool, action_type, args_digest, policy_id, policy_version, reason, tainted, labels, quorum, expires_at)
     VALUES ($1, $2, 'outcome_unknown', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1, 'infinity')`,
    [orgId, approvalId, actionId, taskId, a.step, a.user_id, a.connector, a.tool, a.action_type, a.args_digest, a.policy_id, a.policy_version, REASONS[o.ambiguous ? 'ambiguous' : o.client], a.tainted, a.labels],
  );
  // Announced where approval requests are: e-mail to the approvers, the org's webhook and Slack (its connector or its webhook) where they are set.
  await em.query(
    `INSERT INTO notifications (org_id, id, channel, kind, subject_id, payload)
     SELECT $1, gen_random_uuid(), c.channel, 'approval.outcome_unknown', $2, $3
       FROM (VALUES ('email'), ('webhook'), ('slack')) AS c(channel)
      WHERE c.channel = 'email'
         OR (c.channel = 'webhook' AND EXISTS (SELECT 1 FROM orgs o WHERE o.id = $1 AND o.notify_webhook_url IS NOT NULL))
         OR (c.channel = 'slack' AND (EXISTS (SELECT 1 FROM incident_secrets s WHERE s.org_id = $1 AND s.name = 'slack_webhook_url')
                                      OR EXISTS (SELECT 1 FROM incident_settings st WHERE st.org_id = $1 AND st.slack_channel IS NOT NULL)))`,
    [orgId, approvalId, JSON.stringify({ approvalId, taskId, tool: a.tool, actionType: a.action_type, requestedBy: a.user_id })],
  );
  await recordEvent(em, keyring, {
    id: newId(),
    orgId,
    occurredAt: new Date(),
    actor: { type: 'agent_task', id: taskId },
    action: a.action_type,
    target: { type: 'Tool', id: null },
    level: a.level,
    decision: 'outcome_unknown',
    outcome: 'failure',
    approval: approvalId,
    policyVersion: a.policy_version,
    task: taskId,
    connector: a.connector,
    client: o.client,
    payload: { actionId, approvalId, tool: a.tool, argsDigest: a.args_digest, ...(o.ambiguous ? { why: 'ambiguous' } : {}) },
  });
  return true;
}
