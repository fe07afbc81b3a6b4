import type { DataSource } from 'typeorm';
import { type AuditKeyring, type Client, prepareEvent } from '@steward/audit';
import { newId } from '@steward/common';
import { inOrg, queryReturning } from '@steward/db';
import type { Level } from '@steward/policy';

/**
 * Redeeming an approval: a claim that waited (`awaiting_approval`) comes back through the gate —
 * the task resumed — and the gate has decided again on the policy as it is now. In ONE
 * transaction, under the approval's row lock, with the kill switch and the membership read:
 *
 * - still pending (quorum not reached, not expired) → `pending`: nothing runs;
 * - rejected / expired / already used / voided → refused, the claim is closed (`refused`);
 * - the fresh decision is Forbidden → refused (an approval satisfies Watched, nothing stricter);
 * - the arguments' digest, the tool definition's hash, the credential or the principal differ
 *   from what was approved, or the policy now routes this Watched action to approvers the
 *   approval did not have (another group, a larger quorum) → refused (`approval_mismatch`), the
 *   approval voided;
 * - else the approval is marked used and the claim moves to `executing`, with its audit event —
 *   the caller executes it, once: a second redeem finds the approval used.
 */
export type RedeemResult = 'executing' | 'pending' | 'paused' | 'suspended' | 'rejected' | 'expired' | 'approval_used' | 'approval_mismatch' | 'forbidden';

export interface RedeemRequest {
  orgId: string;
  userId: string;
  actionId: string;
  taskId: string | null;
  connector: string;
  tool: string;
  actionType: string;
  argsDigest: string;
  toolHash: string | null;
  credentialId: string | null;
  /** The fresh decision's level and policy version. */
  level: Level;
  /** Where the fresh decision routes a Watched action (its approver group, its quorum). */
  routing?: { approverGroup: string | null; quorum: number } | null;
  policyVersion: number | null;
  client: Client;
  now: Date;
  /** A worker's task lease: the approval is redeemed only while the task still runs under it (else 'fenced', nothing changed). */
  fence?: { epoch: number; holder: string } | null;
}

export async function redeemApproval(ds: DataSource, keyring: AuditKeyring, r: RedeemRequest): Promise<RedeemResult | 'fenced'> {
  return inOrg(ds, { orgId: r.orgId, userId: r.userId }, async (em) => {
    // A worker that lost its task's lease redeems nothing: the task's new holder does, once.
    if (r.fence && r.taskId) {
      const [{ ok }]: { ok: boolean }[] = await em.query(`SELECT steward_task_fence($1, $2, $3, $4, $5) AS ok`, [r.orgId, r.userId, r.taskId, r.fence.epoch, r.fence.holder]);
      if (!ok) return 'fenced';
    }
    const [org]: { paused: boolean; status: string | null }[] = await em.query(
      `SELECT o.agents_paused_at IS NOT NULL AS paused, m.status FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1`,
      [r.orgId, r.userId],
    );
    if (!org || org.paused) return 'paused';
    if (org.status !== 'active') return 'suspended';
    const [a]: { id: string; state: string; expired: boolean; args_digest: string; tool_hash: string | null; credential_id: string | null; requested_by: string; approver_group: string | null; quorum: number }[] = await em.query(
      `SELECT id, state, expires_at <= now() AS expired, args_digest, tool_hash, credential_id, requested_by, approver_group, quorum FROM approvals
        WHERE org_id = $1 AND action_id = $2 AND kind = 'action' FOR UPDATE`,
      [r.orgId, r.actionId],
    );
    if (!a) return 'pending';
    if (a.state === 'pending' && !a.expired) return 'pending';
    const result: RedeemResult =
      a.state === 'used' ? 'approval_used'
      : a.state === 'rejected' ? 'rejected'
      : a.state === 'expired' || a.expired ? 'expired'
      : a.state !== 'approved' ? 'approval_mismatch'
      : r.level === 'forbidden' ? 'forbidden'
      : a.args_digest !== r.argsDigest || a.tool_hash !== r.toolHash || a.credential_id !== r.credentialId || a.requested_by !== r.userId ? 'approval_mismatch'
      : r.level === 'watched' && r.routing && (r.routing.quorum > a.quorum || (r.routing.approverGroup !== null && r.routing.approverGroup !== a.approver_group)) ? 'approval_mismatch'
      : 'executing';
    if (result === 'executing') {
      await em.query(`UPDATE approvals SET state = 'used', used_at = now() WHERE org_id = $1 AND id = $2`, [r.orgId, a.id]);
      const moved = await queryReturning(em, `UPDATE task_actions SET state = 'executing' WHERE org_id = $1 AND id = $2 AND state = 'awaiting_approval' RETURNING id`, [r.orgId, r.actionId]);
      if (!moved.length) return 'approval_used';
    } else {
      const next = result === 'expired' ? 'expired' : result === 'forbidden' || result === 'approval_mismatch' ? 'void' : a.state;
      if (next !== a.state) await em.query(`UPDATE approvals SET state = $3 WHERE org_id = $1 AND id = $2`, [r.orgId, a.id, next]);
      await em.query(`UPDATE task_actions SET state = 'refused', refusal = $3, finished_at = now() WHERE org_id = $1 AND id = $2 AND state = 'awaiting_approval'`, [r.orgId, r.actionId, result]);
    }
    const event = await prepareEvent(em, keyring, {
      id: newId(),
      orgId: r.orgId,
      occurredAt: r.now,
      actor: { type: 'agent_task', id: r.taskId },
      action: r.actionType,
      target: { type: 'Tool', id: null },
      level: r.level,
      decision: result === 'executing' ? 'approved' : `denied_${result}`,
      outcome: result === 'executing' ? 'success' : 'denied',
      policyVersion: r.policyVersion,
      task: r.taskId,
      connector: r.connector,
      client: r.client,
      approval: a.id,
      payload: { actionId: r.actionId, approvalId: a.id, tool: r.tool, argsDigest: r.argsDigest, redeemed: result },
    });
    await em.query(`INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES ($1, $2, $3, $4)`, [event.id, event.orgId, event.occurredAt, event.canonical]);
    return result;
  });
}
