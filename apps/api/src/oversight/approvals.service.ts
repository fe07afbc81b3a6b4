import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { type CanonicalEvent, canonical, readSealed } from '@steward/audit';
import { AppError, type Config, UUID_PATTERN } from '@steward/common';
import type { EntityManager } from '@steward/db';
import { lockTaskOfApproval, resumeWaitingTask, transcriptAad } from '@steward/jobs';
import { subjectOf } from '@steward/policy';
import { ConfigKeyProvider, openSecret } from '@steward/vault';
import type { z } from 'zod';
import { AccessService } from '../access/access.service';
import { AuditService } from '../audit/audit.service';
import type { Principal } from '../auth/principal';
import { Db } from '../core/db.service';
import { CONFIG } from '../core/tokens';
import type { ApprovalDetail, ApprovalView, DecideApprovalBody, ListApprovalsQuery, RejectApprovalBody, SettleApprovalBody } from './oversight.schemas';

interface ApprovalRow {
  id: string;
  kind: 'action' | 'outcome_unknown';
  state: z.infer<typeof ApprovalView>['state'];
  action_id: string;
  task_id: string | null;
  step: number | null;
  requested_by: string;
  connector: string;
  tool: string;
  action_type: string;
  args_digest: string;
  tool_hash: string | null;
  credential_id: string | null;
  policy_version: number | null;
  reason: string;
  tainted: boolean;
  labels: string[];
  approver_group: string | null;
  quorum: number;
  expires_at: Date | string;
  created_at: Date;
  decided_at: Date | null;
  used_at: Date | null;
  expired: boolean;
  approvals: number;
  voted: boolean;
  in_group: boolean;
}

const SELECT = `SELECT a.*, a.expires_at <= now() AS expired,
         (SELECT count(*)::int FROM approval_votes v WHERE v.org_id = a.org_id AND v.approval_id = a.id AND v.vote = 'approve') AS approvals,
         EXISTS (SELECT 1 FROM approval_votes v WHERE v.org_id = a.org_id AND v.approval_id = a.id AND v.user_id = $2) AS voted,
         (a.approver_group IS NULL OR EXISTS (SELECT 1 FROM group_members gm WHERE gm.org_id = a.org_id AND gm.group_id = a.approver_group AND gm.user_id = $2)) AS in_group
    FROM approvals a`;

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

/**
 * Approval requests (Watched actions) and outcome-unknown actions, decided by people.
 * Rules: never the requester; only the approvers the routing names (its group, else anyone whose
 * roles may decide); one vote per person, the quorum counted over distinct approvers; a fresh
 * second factor where the org requires step-up; nothing decided while agents are paused (the
 * kill switch freezes approvals) or after the expiry. The decision re-enqueues the task (outbox
 * row in the same transaction); the worker's gate decides again and redeems the approval once.
 */
@Injectable()
export class ApprovalsService {
  private readonly keys: ConfigKeyProvider;

  constructor(
    private readonly db: Db,
    private readonly access: AccessService,
    private readonly audit: AuditService,
    @Inject(CONFIG) config: Config,
  ) {
    this.keys = new ConfigKeyProvider(config.STEWARD_MASTER_KEY);
  }

  private eligible(p: Principal, r: ApprovalRow): boolean {
    return (
      r.state === 'pending' && !r.expired && !r.voted && r.requested_by !== p.userId && r.in_group &&
      p.ability.can('decide', subjectOf('Approval', { userId: r.requested_by }))
    );
  }

  private view(p: Principal, r: ApprovalRow): z.infer<typeof ApprovalView> {
    return {
      id: r.id,
      kind: r.kind,
      state: r.state,
      taskId: r.task_id,
      step: r.step,
      actionId: r.action_id,
      requestedBy: r.requested_by,
      connector: r.connector,
      tool: r.tool,
      actionType: r.action_type,
      reason: r.reason,
      tainted: r.tainted,
      labels: r.labels,
      argsDigest: r.args_digest,
      toolHash: r.tool_hash,
      credentialId: r.credential_id,
      policyVersion: r.policy_version,
      approverGroup: r.approver_group,
      quorum: r.quorum,
      approvals: r.approvals,
      canDecide: this.eligible(p, r),
      expiresAt: Number.isFinite(new Date(r.expires_at).getTime()) ? iso(r.expires_at) : null,
      createdAt: iso(r.created_at)!,
      decidedAt: iso(r.decided_at),
      usedAt: iso(r.used_at),
    };
  }

  private async load(em: EntityManager, p: Principal, id: string, lock = false): Promise<ApprovalRow> {
    const [row]: ApprovalRow[] = UUID_PATTERN.test(id) ? await em.query(`${SELECT} WHERE a.org_id = $1 AND a.id = $3${lock ? ' FOR UPDATE OF a' : ''}`, [p.orgId, p.userId, id]) : [];
    if (!row || !p.ability.can('read', subjectOf('Approval', { userId: row.requested_by }))) throw AppError.notFound('approval');
    return row;
  }

  async list(p: Principal, q: z.infer<typeof ListApprovalsQuery>) {
    const reach = this.access.reach(p, 'read', 'Approval');
    if (reach === 'none') await this.access.authorize(p, 'read', 'Approval');
    const params: unknown[] = [p.orgId, p.userId];
    const where = ['a.org_id = $1'];
    if (reach === 'own') where.push('a.requested_by = $2');
    if (q.state) where.push(`a.state = $${params.push(q.state)}`);
    if (q.cursor) where.push(`a.id < $${params.push(q.cursor)}`);
    return this.db.inOrg(p, async (em) => {
      let rows: ApprovalRow[] = await em.query(`${SELECT} WHERE ${where.join(' AND ')} ORDER BY a.id DESC LIMIT $${params.push(q.limit + 1)}`, params);
      const more = rows.length > q.limit;
      rows = rows.slice(0, q.limit);
      const items = rows.map((r) => this.view(p, r)).filter((v) => q.actionable !== 'true' || v.canDecide);
      return { items, nextCursor: more ? rows[rows.length - 1].id : null };
    });
  }

  async get(p: Principal, id: string): Promise<z.infer<typeof ApprovalDetail>> {
    await this.access.authorize(p, 'read', 'Approval', { id, userId: p.userId });
    return this.db.inOrg(p, (em) => this.detail(em, p, id, true));
  }

  /**
   * One approval with its votes and, for those who need them, the action's arguments: the requester,
   * the approvers it is routed to, and readers of sensitive audit data (anyone else gets null). A
   * look at them by anyone but the requester is audited (`audit: true`, a GET).
   */
  private async detail(em: EntityManager, p: Principal, id: string, audit = false): Promise<z.infer<typeof ApprovalDetail>> {
    {
      const r = await this.load(em, p, id);
      const routedHere = r.in_group && p.ability.can('decide', subjectOf('Approval', { userId: r.requested_by }));
      const own = r.requested_by === p.userId;
      const mayRead = own || routedHere || p.ability.can('read_sensitive', 'AuditEvent');
      const votes: { user_id: string; vote: 'approve' | 'reject' | 'done' | 'not_done'; reason: string | null; created_at: Date }[] = await em.query(
        `SELECT user_id, vote, reason, created_at FROM approval_votes WHERE org_id = $1 AND approval_id = $2 ORDER BY created_at`,
        [p.orgId, r.id],
      );
      const args = mayRead ? await this.argumentsOf(em, p.orgId, r) : null;
      if (audit && args !== null && !own) await this.audit.record(em, p, { action: 'approval.view_arguments', targetType: 'Approval', targetId: r.id, payload: { taskId: r.task_id, actionId: r.action_id } });
      return {
        ...this.view(p, r),
        arguments: args,
        argumentsMatch: args === null ? null : createHash('sha256').update(canonical(args)).digest('hex') === r.args_digest,
        votes: votes.map((v) => ({ userId: v.user_id, vote: v.vote, reason: v.reason, at: iso(v.created_at)! })),
      };
    }
  }

  /**
   * The arguments of the step, from the task's sealed transcript (the tool_use the step was fixed
   * for); for an MCP gateway call (no task), from its decision event, where they are sealed under
   * the member's key (null once that key is shredded, or when they were too long to keep whole).
   */
  private async argumentsOf(em: EntityManager, orgId: string, r: ApprovalRow): Promise<Record<string, unknown> | null> {
    if (!r.task_id) return this.gatewayArguments(em, orgId, r);
    if (r.step === null) return null;
    const [task]: { transcript_sealed: Buffer | null; transcript_key: string | null }[] = await em.query(`SELECT transcript_sealed, transcript_key FROM tasks WHERE org_id = $1 AND id = $2`, [orgId, r.task_id]);
    if (!task?.transcript_sealed || !task.transcript_key) return null;
    const t = JSON.parse((await openSecret(this.keys, { sealed: task.transcript_sealed, wrappedKey: task.transcript_key }, transcriptAad(orgId, r.task_id))).toString('utf8')) as {
      messages: { role: string; content: unknown }[];
      steps: Record<string, number>;
    };
    const useId = Object.entries(t.steps).find(([, s]) => s === r.step)?.[0];
    for (const m of t.messages) {
      if (m.role !== 'assistant' || !Array.isArray(m.content)) continue;
      const b = (m.content as { type: string; id?: string; input?: Record<string, unknown> }[]).find((x) => x.type === 'tool_use' && x.id === useId);
      if (b) return b.input ?? {};
    }
    return null;
  }

  private async gatewayArguments(em: EntityManager, orgId: string, r: ApprovalRow): Promise<Record<string, unknown> | null> {
    // The decision event was written in the claim's commit, with the approval (found by its action and time).
    const [e]: { canonical: string }[] = await em.query(
      `SELECT canonical FROM audit_events
        WHERE org_id = $1 AND action = $2 AND occurred_at BETWEEN $3::timestamptz - interval '10 minutes' AND $3::timestamptz + interval '1 minute'
          AND decision = 'watched_pending' AND canonical::jsonb->'payload'->>'actionId' = $4
        LIMIT 1`,
      [orgId, r.action_type, r.created_at, r.action_id],
    );
    if (!e) return null;
    const sealed = await readSealed(em, this.audit.keyring, orgId, JSON.parse(e.canonical) as CanonicalEvent).catch(() => null);
    const text = typeof sealed?.arguments === 'string' ? sealed.arguments : null;
    if (text === null) return null;
    try {
      const args = JSON.parse(text) as unknown;
      return args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : null;
    } catch {
      return null; // cut at its recorded length: not shown as if whole
    }
  }

  /** The checks every decision shares; returns the locked row. */
  private async decidable(em: EntityManager, p: Principal, id: string, kind: 'action' | 'outcome_unknown'): Promise<ApprovalRow> {
    // The task's row first (the order the worker takes them in): a worker ending the turn that asked
    // waits for this decision's commit, or this decision for its — either way one of the two sees
    // the other and the task is resumed; without it both could miss each other and the task wait for ever.
    await lockTaskOfApproval(em, p.orgId, id);
    const r = await this.load(em, p, id, true);
    await this.access.authorize(p, 'decide', 'Approval', { id, userId: r.requested_by });
    if (r.kind !== kind) throw AppError.conflict(kind === 'action' ? 'This is an outcome-unknown action: settle it (done / not done).' : 'This approval is for a Watched action: approve or reject it.');
    const [org]: { paused: boolean }[] = await em.query(`SELECT agents_paused_at IS NOT NULL AS paused FROM orgs WHERE id = $1`, [p.orgId]);
    if (org?.paused) throw AppError.conflict('Agents are paused in this org (kill switch): pending approvals are frozen until they are resumed.');
    if (r.state !== 'pending') throw AppError.conflict(`The approval is ${r.state}; it cannot be decided again.`);
    if (r.expired) throw AppError.conflict('The approval expired; the action was refused.');
    if (r.requested_by === p.userId) await this.access.deny(p, 'decide', 'Approval', r.id, 'own_action', kind === 'action' ? 'Nobody approves their own agent action.' : 'Nobody settles the outcome of their own agent action: another approver checks it.');
    if (!r.in_group) await this.access.deny(p, 'decide', 'Approval', r.id, 'not_routed', 'The policy routes this approval to a group you are not in.');
    if (r.voted) throw AppError.conflict('You already decided this approval.');
    await this.access.requireStepUp(em, p);
    return r;
  }

  async approve(p: Principal, id: string, body: z.infer<typeof DecideApprovalBody>) {
    return this.db.inOrg(p, async (em) => {
      const r = await this.decidable(em, p, id, 'action');
      // What the approver was shown must be what runs: arguments on record that do not hash to the bound digest are refused (reject instead).
      const args = await this.argumentsOf(em, p.orgId, r);
      if (args !== null && createHash('sha256').update(canonical(args)).digest('hex') !== r.args_digest) {
        throw AppError.conflict('The arguments on record are not the ones this approval is bound to: what is shown is not what would run. Reject it.');
      }
      await em.query(`INSERT INTO approval_votes (org_id, approval_id, user_id, vote, reason) VALUES ($1, $2, $3, 'approve', $4)`, [p.orgId, r.id, p.userId, body.reason ?? null]);
      // Counted again in a statement of its own: it sees the votes of approvers who held the row's lock
      // before us and committed (the locking read above counted on a snapshot taken before it waited).
      const [{ approvals }]: { approvals: number }[] = await em.query(`SELECT count(*)::int AS approvals FROM approval_votes WHERE org_id = $1 AND approval_id = $2 AND vote = 'approve'`, [p.orgId, r.id]);
      const reached = approvals >= r.quorum;
      if (reached) {
        // Approved with little time left, it still has an hour to be used (the task's next run, the client's call made again), so a late queue does not turn a yes into "expired".
        await em.query(`UPDATE approvals SET state = 'approved', decided_at = now(), expires_at = greatest(expires_at, now() + interval '1 hour') WHERE org_id = $1 AND id = $2`, [p.orgId, r.id]);
        if (r.task_id) await resumeWaitingTask(em, this.keys, p.orgId, r.task_id, 'approved');
      }
      await this.audit.record(em, p, { action: 'approval.approve', targetType: 'Approval', targetId: r.id, payload: { actionId: r.action_id, taskId: r.task_id, approvals, quorum: r.quorum, approved: reached, argsDigest: r.args_digest } });
      return this.detail(em, p, r.id);
    });
  }

  async reject(p: Principal, id: string, body: z.infer<typeof RejectApprovalBody>) {
    return this.db.inOrg(p, async (em) => {
      const r = await this.decidable(em, p, id, 'action');
      await em.query(`INSERT INTO approval_votes (org_id, approval_id, user_id, vote, reason) VALUES ($1, $2, $3, 'reject', $4)`, [p.orgId, r.id, p.userId, body.reason]);
      await em.query(`UPDATE approvals SET state = 'rejected', decided_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, r.id]);
      // The task resumes: the gate refuses the claim and the model is told a person said no.
      if (r.task_id) await resumeWaitingTask(em, this.keys, p.orgId, r.task_id, 'rejected');
      await this.audit.record(em, p, { action: 'approval.reject', targetType: 'Approval', targetId: r.id, payload: { actionId: r.action_id, taskId: r.task_id, reasonBytes: Buffer.byteLength(body.reason) } });
      return this.detail(em, p, r.id);
    });
  }

  /** An action whose outcome nobody knows: a person checked the target and says whether it happened. */
  async settle(p: Principal, id: string, body: z.infer<typeof SettleApprovalBody>) {
    return this.db.inOrg(p, async (em) => {
      const r = await this.decidable(em, p, id, 'outcome_unknown');
      await em.query(`INSERT INTO approval_votes (org_id, approval_id, user_id, vote, reason) VALUES ($1, $2, $3, $4, $5)`, [p.orgId, r.id, p.userId, body.done ? 'done' : 'not_done', body.reason ?? null]);
      await em.query(`UPDATE approvals SET state = 'settled', decided_at = now() WHERE org_id = $1 AND id = $2`, [p.orgId, r.id]);
      await em.query(`UPDATE task_actions SET state = $3, finished_at = now() WHERE org_id = $1 AND id = $2 AND state = 'outcome_unknown'`, [p.orgId, r.action_id, body.done ? 'settled_done' : 'settled_not_done']);
      if (r.task_id) await resumeWaitingTask(em, this.keys, p.orgId, r.task_id, 'outcome_settled');
      await this.audit.record(em, p, { action: 'approval.settle', targetType: 'Approval', targetId: r.id, payload: { actionId: r.action_id, taskId: r.task_id, done: body.done } });
      return this.detail(em, p, r.id);
    });
  }
}
